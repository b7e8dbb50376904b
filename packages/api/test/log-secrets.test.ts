import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { pino } from "pino";
import { ApiService, ConfigError, loadConfig } from "../src/index.js";
import { assertError, type Creator, call, enrol, linkToken, mailFiles, nextCode } from "./accounts-journey.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

/** Every form a secret could take in a log line: as is, base64, base64url, URL-encoded. */
function forms(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  return [...new Set([secret, bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url"), encodeURIComponent(secret)])];
}

/** A short secret (a 6-digit code) counts only as a whole token, not inside a longer number. */
function occurs(line: string, form: string): boolean {
  if (form.length >= 12) return line.includes(form);
  const escaped = form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\w.])${escaped}(?![\\w.])`).test(line);
}

for (const storage of STORAGE_PATHS) {
  describe(`secrets stay out of the logs (${storage})`, () => {
    let system: TestSystem;
    const settings = {
      JWT_SECRET: randomBytes(48).toString("base64url"),
      API_KEY_SECRET: randomBytes(48).toString("base64url"),
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    };
    const domain = `${storage}.logs.example.net`;
    const seen: string[] = [];
    let mailsRead = 0;

    /** The newest mail the embedded mailer wrote, for the address. */
    const fileToken = (address: string) => async () => {
      const mails = await mailFiles(system.dir);
      assert.ok(mails.length > mailsRead, "no new mail file");
      const mail = mails.at(-1)!;
      mailsRead = mails.length;
      assert.match(mail.text, new RegExp(`^To: ${address}`, "m"));
      return linkToken(mail.text);
    };

    before(async () => {
      system = await startTestSystem(storage, { ...settings, PROTECT_REQUIRE_AUTH: "true", ADMIN_EMAILS: `root@${domain}` });
    });
    after(() => system.stop());

    test("embedded mail: without SMTP_URL the mail is a 0600 file under <state>/mail/, and the log names the file", async () => {
      const address = `first@${domain}`;
      assert.equal((await call(system, "POST", "/api/v1/auth/magic-link", { body: { email: address }, ip: "198.51.100.1" })).status, 202);
      const mails = await mailFiles(system.dir);
      assert.equal(mails.length, 1);
      mailsRead = 1;
      assert.match(mails[0].file, /\/mail\/[^/]+\.eml$/);
      assert.equal((await stat(mails[0].file)).mode & 0o777, 0o600);
      assert.match(mails[0].text, /^Subject: Your DAON sign-in link/m);
      const token = linkToken(mails[0].text);
      seen.push(token, address);
      const logged = system.logs
        .map((line) => JSON.parse(line) as { msg: string; file?: string })
        .find((l) => l.msg.startsWith("mail written"));
      assert.equal(logged?.file, mails[0].file);
    });

    test("a journey's tokens, codes, secrets, keys and addresses appear in no log line", async () => {
      const creators: Creator[] = [];
      for (const [name, ip] of [
        ["root", "198.51.100.2"],
        ["maker", "198.51.100.3"],
      ] as const) {
        const address = `${name}@${domain}`;
        creators.push(await enrol(system, address, ip, fileToken(address)));
      }
      const [root, maker] = creators;
      assert.equal(root.user.role, "admin");

      // Protect needs a sign-in here (PROTECT_REQUIRE_AUTH=true); the work goes to the other creator.
      assertError(
        await call(system, "POST", "/api/v1/protect", { body: { contentHash: randomBytes(32).toString("hex") } }),
        401,
        "UNAUTHORIZED",
      );
      const work = await call(system, "POST", "/api/v1/protect", {
        body: { content: `a work ${randomBytes(8).toString("hex")}` },
        token: root.accessToken,
      });
      assert.equal(work.status, 201, JSON.stringify(work.body));
      const code = await nextCode(root);
      const transfer = await call(system, "POST", `/api/v1/me/works/${work.body.contentHash}/transfer`, {
        body: { to: maker.user.owner_id, code },
        token: root.accessToken,
      });
      assert.equal(transfer.status, 201, JSON.stringify(transfer.body));
      seen.push(code);

      // Refusals log security events: a replayed code, a wrong backup code, a replayed refresh token.
      assertError(await call(system, "POST", "/api/v1/auth/logout-all", { body: { code }, token: root.accessToken }), 401, "INVALID_CODE");
      assertError(
        await call(system, "POST", "/api/v1/auth/logout-all", { body: { code: "ZZZZ-ZZZZ" }, token: maker.accessToken }),
        401,
        "INVALID_CODE",
      );
      const refreshed = await call(system, "POST", "/api/v1/auth/refresh", { body: { refresh_token: maker.refreshToken } });
      assert.equal(refreshed.status, 200);
      seen.push(refreshed.body.access_token, refreshed.body.refresh_token);
      assertError(
        await call(system, "POST", "/api/v1/auth/refresh", { body: { refresh_token: maker.refreshToken } }),
        401,
        "INVALID_TOKEN",
      );
      const regenerated = await call(system, "POST", "/api/v1/auth/2fa/backup-codes/regenerate", {
        body: { code: root.backupCodes[0] },
        token: root.accessToken,
      });
      assert.equal(regenerated.status, 200);
      seen.push(...regenerated.body.backup_codes);
      const reset = await call(system, "POST", "/api/v1/auth/2fa/reset", {
        body: { backup_code: regenerated.body.backup_codes[0] },
        token: root.accessToken,
      });
      assert.equal(reset.status, 200);
      seen.push(reset.body.secret, reset.body.session_id, reset.body.otpauth_url);
      // A bearer credential the API refuses is not logged either.
      const garbage = `eyJ${randomBytes(40).toString("base64url")}`;
      assertError(await call(system, "GET", "/api/v1/me", { token: garbage }), 401, "UNAUTHORIZED");
      seen.push(garbage);
      for (const creator of creators) seen.push(creator.email, ...creator.seen);

      const secrets = [...Object.values(settings), system.api.config.API_MNEMONIC, ...seen];
      // The journey was logged, addresses masked.
      assert.ok(system.logs.length > 20);
      assert.ok(system.logs.some((line) => line.includes(`"recipient":"m***@${domain}"`)));
      const leaks: string[] = [];
      for (const line of system.logs) {
        for (const secret of secrets) {
          for (const form of forms(secret)) if (occurs(line, form)) leaks.push(`${form.slice(0, 12)}… in ${line.slice(0, 200)}`);
        }
      }
      assert.deepEqual(leaks, []);
    });
  });
}

describe("secrets at start", () => {
  let dir: string;
  let mnemonic: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-secrets-"));
    mnemonic = (await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" })).mnemonic;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const settings = (env: Record<string, string>) =>
    loadConfig({
      NODE_ENV: "production",
      PORT: "0",
      CHAIN_ID: "daon-secrets-test",
      // Nothing listens here: production must refuse before it connects to anything.
      CHAIN_RPC: "http://127.0.0.1:9",
      API_MNEMONIC: mnemonic,
      DAON_STATE_DIR: dir,
      ALLOWED_ORIGINS: "https://portal.example.org",
      ...env,
    });
  const strong = () => randomBytes(48).toString("base64url");

  test("production refuses to start with missing, short, weak or equal secrets, naming each and showing no value", async () => {
    const shared = strong();
    const cases: { env: Record<string, string>; problems: RegExp[] }[] = [
      { env: {}, problems: [/JWT_SECRET is missing/, /API_KEY_SECRET is missing/, /ENCRYPTION_KEY is missing/] },
      {
        env: { JWT_SECRET: "short-secret", API_KEY_SECRET: strong(), ENCRYPTION_KEY: strong() },
        problems: [/JWT_SECRET is shorter than 32 characters/],
      },
      {
        env: { JWT_SECRET: strong(), API_KEY_SECRET: `changeme-${strong()}`, ENCRYPTION_KEY: strong() },
        problems: [/API_KEY_SECRET .*"changeme"/],
      },
      {
        env: { JWT_SECRET: strong(), API_KEY_SECRET: strong(), ENCRYPTION_KEY: "your-secret-here-your-secret-here" },
        problems: [/ENCRYPTION_KEY .*"secret"/],
      },
      { env: { JWT_SECRET: shared, API_KEY_SECRET: shared, ENCRYPTION_KEY: strong() }, problems: [/API_KEY_SECRET equals JWT_SECRET/] },
    ];
    for (const { env, problems } of cases) {
      const logs: string[] = [];
      const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(line) });
      const refused = await ApiService.start(settings(env), { logger, inMemoryDatabase: true, drainMs: 0 }).then(
        async (service) => {
          await service.stop();
          return undefined;
        },
        (error: unknown) => error,
      );
      assert.ok(refused instanceof ConfigError, `expected a ConfigError for ${Object.keys(env).join(",") || "no secrets"}: ${refused}`);
      for (const problem of problems) assert.match(refused.message, problem);
      for (const value of Object.values(env)) {
        assert.ok(!refused.message.includes(value), "the message shows no secret");
        assert.ok(!logs.some((line) => line.includes(value)), "the log shows no secret");
      }
    }
    // Refused before anything started: nothing was written under the state directory.
    assert.deepEqual(await readdir(dir), []);
  });

  test("development without secrets runs on random ones and warns, naming them", async () => {
    const logs: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logs.push(line) });
    const service = await ApiService.start(settings({ NODE_ENV: "development" }), {
      logger,
      inMemoryDatabase: true,
      drainMs: 0,
      shutdownTimeoutMs: 5000,
    });
    try {
      const warning = logs.map((line) => JSON.parse(line)).find((l) => l.missing);
      assert.deepEqual(warning?.missing, ["JWT_SECRET", "API_KEY_SECRET", "ENCRYPTION_KEY"]);
      assert.equal(warning.level, 40);
      const secrets = [service.config.JWT_SECRET, service.config.API_KEY_SECRET, service.config.ENCRYPTION_KEY];
      assert.equal(new Set(secrets).size, 3);
      for (const secret of secrets) {
        assert.ok(secret && secret.length >= 64);
        assert.ok(!logs.some((line) => line.includes(secret!)));
      }
    } finally {
      await service.stop().catch(() => {});
    }
  });
});
