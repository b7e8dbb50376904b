import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseEnv } from "node:util";
import { fingerprint } from "@daon/api";
import { QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse } from "@daon/core";
import pg from "pg";
import { codeAt, linkToken, mailFiles } from "../../api/test/accounts-journey.js";
import { sealingKey } from "../../api/src/secrets/sealing.js";
import { deploymentPaths } from "../src/deployment.js";
import { RotationFailed, rotateKeys } from "../src/rotation/rotate.js";
import { createDeployment, protect, sleep, type TestDeployment, waitConfirmed } from "./deployment-fixture.js";

async function call(d: TestDeployment, method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(`${d.apiUrl}${path}`, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, asserted field by field
  return { status: response.status, body: (await response.json()) as any };
}

/** A creator signed in with TOTP through the embedded mailer: tokens and the secret an authenticator holds. */
async function signIn(d: TestDeployment) {
  const email = `rotation-${Math.random().toString(36).slice(2, 8)}@example.org`;
  assert.equal((await call(d, "POST", "/api/v1/auth/magic-link", { email })).status, 202);
  let token = "";
  for (let i = 0; i < 50 && !token; i++) {
    const mails = await mailFiles(d.stateDir);
    const mail = mails.find((m) => m.text.includes(email));
    if (mail) token = linkToken(mail.text);
    else await sleep(100);
  }
  const verified = await call(d, "POST", "/api/v1/auth/verify", { token });
  const setup = await call(d, "POST", "/api/v1/auth/2fa/setup", { session_id: verified.body.session_id });
  const step = Math.floor(Date.now() / 30_000);
  const tokens = await call(d, "POST", "/api/v1/auth/2fa/verify-setup", {
    session_id: verified.body.session_id,
    code: codeAt(setup.body.secret, step),
  });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  return {
    secret: setup.body.secret as string,
    access: tokens.body.access_token as string,
    refresh: tokens.body.refresh_token as string,
    lastStep: step,
  };
}

/** The ledger's own record of a registration (abci_query): who signed it. */
async function ledgerCreator(d: TestDeployment, ledgerContentHash: string): Promise<string> {
  const data = Buffer.from(QueryVerifyContentRequest.encode({ contentHash: ledgerContentHash }).finish()).toString("hex");
  const answer = await fetch(`${d.rpcUrl}/abci_query?path="${QUERY_VERIFY_CONTENT}"&data=0x${data}`).then((r) => r.json());
  return QueryVerifyContentResponse.decode(Buffer.from(answer.result.response.value, "base64")).creator;
}

for (const storage of ["pglite", "postgres"] as const) {
  describe(`daon rotate-keys (${storage})`, () => {
    let d: TestDeployment;
    let creator: Awaited<ReturnType<typeof signIn>>;
    const failures: string[] = [];
    let serving = true;
    let traffic: Promise<void>;
    const paths = () => deploymentPaths({ envFile: d.envFile });
    const quiet = () => {};

    before(async () => {
      d = await createDeployment(storage, { roleDatabase: true });
      await d.start();
      creator = await signIn(d);
      // Users keep working throughout: every request of this loop must succeed.
      traffic = (async () => {
        for (let i = 0; serving; i++) {
          // Within protect's rate limit (30/min per client); /health as often as a proxy checks.
          if (i % 15 === 0) {
            const answer = await protect(d.apiUrl, `rotation traffic ${storage} ${i} ${Math.random()}`).catch((e: Error) => ({
              status: 0,
              body: { e: e.message },
            }));
            if (answer.status !== 202 && answer.status !== 201)
              failures.push(`protect ${answer.status} ${JSON.stringify(answer.body).slice(0, 120)}`);
          }
          const health = await fetch(`${d.apiUrl}/health`).catch(() => undefined);
          if (health?.status !== 200) failures.push(`health ${health?.status}`);
          await sleep(200);
        }
      })();
    });
    after(async () => {
      serving = false;
      await traffic;
      await d.stop();
      await d.destroy();
    });

    test("secrets: new JWT and API-key secrets, the old ones kept as *_PREVIOUS: signed-in users stay signed in; --finish ends the overlap", async () => {
      const before = d.env();
      const run = await d.daon(["rotate-keys", "secrets", "--yes"]);
      assert.equal(run.code, 0, run.stderr);
      const after = d.env();
      assert.notEqual(after.JWT_SECRET, before.JWT_SECRET);
      assert.equal(after.JWT_SECRET_PREVIOUS, before.JWT_SECRET);
      assert.equal(after.API_KEY_SECRET_PREVIOUS, before.API_KEY_SECRET);
      assert.match(run.stdout, new RegExp(`JWT_SECRET: ${fingerprint(before.JWT_SECRET)} → ${fingerprint(after.JWT_SECRET)}`));
      assert.match(run.stdout, /Update GitHub Secrets:\n {2}API_KEY_SECRET/);
      assert.equal(run.stdout.includes(after.JWT_SECRET), false, "values never printed");
      const vault = parseEnv(readFileSync(join(d.stateDir, "secrets", `secrets-${after.CHAIN_ID}.env`), "utf8"));
      assert.equal(vault.JWT_SECRET, after.JWT_SECRET);
      assert.equal(
        readFileSync(
          join(d.stateDir, "secrets", "rotations", run.stdout.match(/rotations\/(\S+-secrets)\.json/)![1], "env.before"),
          "utf8",
        ).includes(before.JWT_SECRET),
        true,
      );

      // No logout: the token from before the rotation still works, and refreshing gives one under the new secret.
      assert.equal((await call(d, "GET", "/api/v1/me", undefined, creator.access)).status, 200);
      const refreshed = await call(d, "POST", "/api/v1/auth/refresh", { refresh_token: creator.refresh });
      assert.equal(refreshed.status, 200);
      creator.refresh = refreshed.body.refresh_token;
      // Both ops tokens open /internal/ops during the overlap.
      for (const secret of [before.API_KEY_SECRET, after.API_KEY_SECRET]) {
        const { opsToken } = await import("@daon/api");
        const config = await fetch(`${d.apiUrl}/internal/ops/config`, { headers: { authorization: `Bearer ${opsToken(secret)}` } });
        assert.equal(config.status, 200);
      }

      const early = rotateKeys(paths(), "secrets", { finish: true, progress: quiet });
      await assert.rejects(early, /the overlap runs until/);
      await rotateKeys(paths(), "secrets", { finish: true, force: true, progress: quiet });
      assert.equal(d.env().JWT_SECRET_PREVIOUS, undefined);
      assert.equal((await call(d, "GET", "/api/v1/me", undefined, creator.access)).status, 401, "old-secret tokens end with the overlap");
      assert.equal((await call(d, "GET", "/api/v1/me", undefined, refreshed.body.access_token)).status, 200);
      creator.access = refreshed.body.access_token;
    });

    test("totp-key: stored TOTP secrets are re-sealed under the new key, the old key is removed, and TOTP codes still work", async () => {
      const before = d.env();
      const result = await rotateKeys(paths(), "totp-key", { progress: quiet });
      const after = d.env();
      assert.notEqual(after.ENCRYPTION_KEY, before.ENCRYPTION_KEY);
      assert.equal(after.ENCRYPTION_KEY_PREVIOUS, undefined, "the previous key is removed once nothing uses it");
      assert.equal(result.fingerprints.after.ENCRYPTION_KEY, fingerprint(after.ENCRYPTION_KEY));
      const config = await fetch(`${d.apiUrl}/internal/ops/config`, { headers: { authorization: `Bearer ${d.opsToken()}` } }).then((r) =>
        r.json(),
      );
      assert.equal(config.sealing.currentKeyId, sealingKey(after.ENCRYPTION_KEY).id);
      assert.equal(config.sealing.previousKeyId, null);
      assert.equal(config.sealing.remaining["accounts.totp_secret"], 0);
      if (storage === "postgres") {
        const client = new pg.Client({ connectionString: d.env().DATABASE_URL });
        await client.connect();
        const { rows } = await client.query("select totp_secret from accounts where totp_secret is not null");
        await client.end();
        assert.ok(rows.length >= 1);
        for (const row of rows) assert.match(row.totp_secret, new RegExp(`^v1\\.${sealingKey(after.ENCRYPTION_KEY).id}\\.`));
      }
      // The authenticator's next code opens the re-sealed secret.
      const step = Math.max(creator.lastStep + 1, Math.floor(Date.now() / 30_000));
      const regenerated = await call(
        d,
        "POST",
        "/api/v1/auth/2fa/backup-codes/regenerate",
        { code: codeAt(creator.secret, step) },
        creator.access,
      );
      assert.equal(regenerated.status, 200, JSON.stringify(regenerated.body));
      creator.lastStep = step;
    });

    test("wallet: the old wallet names the new one its successor, and the next registrations commit under the new address", async () => {
      const chain = d.env().CHAIN_ID;
      const oldMnemonic = d.env().API_MNEMONIC;
      const pending = await protect(d.apiUrl, `before the wallet rotation ${storage} ${Math.random()}`, "10");
      const result = await rotateKeys(paths(), "wallet", { progress: quiet });
      assert.ok(result.txHash && result.addresses);
      assert.notEqual(d.env().API_MNEMONIC, oldMnemonic);
      const walletFile = join(d.stateDir, "secrets", `api-wallet-${chain}.txt`);
      assert.match(readFileSync(walletFile, "utf8"), new RegExp(`address: ${result.addresses.new}`));
      assert.equal(existsSync(join(d.stateDir, "secrets", `api-wallet-${chain}.next.txt`)), false);
      const before = await waitConfirmed(d.apiUrl, pending.body.contentHash as string);
      assert.equal(await ledgerCreator(d, before.ledgerContentHash as string), result.addresses.old);
      const next = await protect(d.apiUrl, `after the wallet rotation ${storage} ${Math.random()}`, "10");
      const confirmed = await waitConfirmed(d.apiUrl, next.body.contentHash as string);
      assert.equal(confirmed.status, "confirmed");
      assert.equal(await ledgerCreator(d, confirmed.ledgerContentHash as string), result.addresses.new);
      const tx = await fetch(`${d.rpcUrl}/tx?hash=0x${result.txHash}`).then((r) => r.json());
      assert.ok(Number(tx.result.height) >= 1, "the successor tx is on the ledger");
    });

    test("database: ALTER ROLE with a SCRAM verifier on PostgreSQL (new connections use it); the embedded database refuses with exit 2", async () => {
      if (storage === "pglite") {
        const run = await rotateKeys(paths(), "database", { progress: quiet }).catch((error) => error);
        assert.match(run.message, /embedded PGlite database, which has no role password/);
        assert.equal(run.constructor.name, "UsageError");
        return;
      }
      const before = d.env();
      const role = decodeURIComponent(new URL(before.DATABASE_URL).username);
      const admin = new pg.Client({ connectionString: process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" });
      await admin.connect();
      const verifier = async () =>
        (await admin.query("select rolpassword from pg_authid where rolname = $1", [role])).rows[0].rolpassword as string;
      const old = await verifier();
      await rotateKeys(paths(), "database", { progress: quiet });
      const now = await verifier();
      await admin.end();
      assert.notEqual(now, old);
      assert.match(now, /^SCRAM-SHA-256\$4096:/);
      const after = d.env();
      assert.equal(new URL(after.DATABASE_URL).password, after.POSTGRES_PASSWORD);
      assert.notEqual(after.POSTGRES_PASSWORD, before.POSTGRES_PASSWORD);
      const client = new pg.Client({ connectionString: after.DATABASE_URL });
      await client.connect();
      await client.end();
    });

    test("an instance that does not report the new fingerprints in time: .env is restored and reloaded, exit 1, nothing changed", async () => {
      // A stand-in instance that answers but never reloads (its process ignores SIGHUP).
      const stale: Server = createServer((request, response) => {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(request.url === "/health" ? { status: "healthy" } : { success: true, fingerprints: {} }));
      });
      await new Promise<void>((ready) => stale.listen(0, "127.0.0.1", ready));
      const sleeper = spawn(process.execPath, ["-e", "process.on('SIGHUP', () => {}); setTimeout(() => {}, 60000)"], { stdio: "ignore" });
      const record = join(d.stateDir, "run", "instances", `api-${sleeper.pid}.json`);
      writeFileSync(
        record,
        JSON.stringify({
          kind: "api",
          pid: sleeper.pid,
          apiUrl: `http://127.0.0.1:${(stale.address() as { port: number }).port}`,
          startedAt: new Date().toISOString(),
        }),
      );
      const before = readFileSync(d.envFile, "utf8");
      try {
        const failed = rotateKeys(paths(), "secrets", { reloadTimeoutMs: 1500, progress: quiet });
        await assert.rejects(
          failed,
          (error: Error) =>
            error instanceof RotationFailed &&
            /did not report the new fingerprints within 2 s: http:\/\/127\.0\.0\.1:\d+ \(JWT_SECRET/.test(error.message) &&
            /restored and reloaded, nothing changed/.test(error.message),
        );
        assert.equal(readFileSync(d.envFile, "utf8"), before);
      } finally {
        sleeper.kill("SIGKILL");
        stale.close();
        rmSync(record, { force: true });
      }
    });

    test("users were served throughout every rotation", () => {
      assert.deepEqual(failures, []);
    });
  });
}
