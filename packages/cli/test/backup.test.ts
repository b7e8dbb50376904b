import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ApiService, loadConfig, openOpsDatabase, opsToken, reconcileWithLedger } from "@daon/api";
import { pino } from "pino";
import { createDatabase, startTestSystem } from "../../api/test/test-system.js";
import { replayPostgresDump } from "../src/backups/postgres-dump.js";
import { sha256File } from "../src/backups/manifest.js";
import { retentionPlan } from "../src/backups/retention.js";
import { createDeployment, daon, mode, register, STORAGE_PATHS, startInProcess, type TestDeployment } from "./backup-fixtures.js";

type Running = Awaited<ReturnType<typeof startInProcess>>;

/** Rewrites SHA256SUMS after a file of the set was changed on purpose (a tamperer who also fixes the sums). */
async function resealSums(dir: string): Promise<void> {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  for (const [file, record] of Object.entries(manifest.files) as [string, { bytes: number; sha256: string }][]) {
    record.bytes = statSync(join(dir, file)).size;
    record.sha256 = await sha256File(join(dir, file));
  }
  writeFileSync(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  const lines = [];
  for (const file of [...Object.keys(manifest.files), "manifest.json"].sort()) lines.push(`${await sha256File(join(dir, file))}  ${file}`);
  writeFileSync(join(dir, "SHA256SUMS"), `${lines.join("\n")}\n`);
}

for (const storage of STORAGE_PATHS) {
  describe(`daon backup and backup verify (${storage})`, () => {
    let deployment: TestDeployment;
    let running: Running;
    let good: string;
    const works: string[] = [];

    before(async () => {
      deployment = await createDeployment(storage, "backup");
      running = await startInProcess(deployment);
      for (const n of [1, 2, 3]) works.push((await register(deployment.apiUrl, `Backed-up work ${n} (${deployment.chainId})`)).contentHash);
    });
    after(async () => {
      await running?.stop();
      await deployment.destroy();
    });

    test("maintenance mode refuses writes with 503 MAINTENANCE and Retry-After, serves reads, shows in /health; ops endpoints need the token", async () => {
      const token = opsToken(deployment.env().API_KEY_SECRET);
      const ops = (method: string, body?: unknown, bearer = token) =>
        fetch(`${deployment.apiUrl}/internal/ops/maintenance`, {
          method,
          headers: { authorization: `Bearer ${bearer}`, ...(body ? { "content-type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
      assert.equal((await ops("GET", undefined, opsToken("not-the-secret"))).status, 404);
      assert.equal((await fetch(`${deployment.apiUrl}/internal/ops/snapshot`)).status, 404);
      const on = await ops("POST", { enabled: true, reason: "test" });
      assert.equal(on.status, 200);
      assert.equal((await on.json()).maintenance, true);

      const write = await fetch(`${deployment.apiUrl}/api/v1/protect`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ content: "written during maintenance" }),
      });
      assert.equal(write.status, 503);
      assert.equal(write.headers.get("retry-after"), "60");
      assert.equal((await write.json()).error.code, "MAINTENANCE");
      assert.equal((await fetch(`${deployment.apiUrl}/api/v1/verify/${works[0]}`)).status, 200);
      const health = await (await fetch(`${deployment.apiUrl}/health`)).json();
      assert.equal(health.maintenance, true);
      assert.equal(health.status, "degraded");

      if (storage === "postgres") {
        // A second instance of the same deployment sees the same switch (one row in the database).
        const second = await ApiService.start(
          loadConfig({ ...deployment.env(), PORT: "0", CHAIN_RPC: running.ledger.rpcUrl, DAON_STATE_DIR: deployment.stateDir }),
          { logger: pino({ level: "silent" }), drainMs: 0 },
        );
        try {
          const refused = await fetch(`${second.url}/api/v1/protect`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ content: "written to the second instance" }),
          });
          assert.equal(refused.status, 503);
        } finally {
          await second.stop();
        }
      }

      const off = await ops("POST", { enabled: false });
      assert.equal((await off.json()).maintenance, false);
      assert.equal((await (await fetch(`${deployment.apiUrl}/health`)).json()).maintenance, false);
    });

    test("without API_KEY_SECRET (development) the ops endpoints are off: 404", async () => {
      const system = await startTestSystem(storage);
      try {
        for (const path of ["/internal/ops/maintenance", "/internal/ops/snapshot"]) {
          const response = await fetch(`${system.apiUrl}${path}`, { headers: { authorization: `Bearer ${opsToken("")}` } });
          assert.equal(response.status, 404, path);
        }
      } finally {
        await system.stop();
      }
    });

    test("daon backup writes a private, complete set of the running system that a full verify restores: rows and app hash", async () => {
      const env = deployment.env();
      const backup = await daon(["backup", "--json"], deployment.dir);
      assert.equal(backup.code, 0, backup.stderr);
      const result = JSON.parse(backup.stdout);
      good = result.dir;
      assert.equal(result.registrations, 3);
      assert.equal(result.chainId, deployment.chainId);
      for (const secret of [env.API_MNEMONIC, env.BACKUP_KEY, env.API_KEY_SECRET]) {
        assert.equal(backup.stdout.includes(secret) || backup.stderr.includes(secret), false, "no secret in the output");
      }

      const files = readdirSync(good).sort();
      const database = storage === "postgres" ? "database.sql.gz" : "database.pglite.tar.gz";
      assert.deepEqual(
        files,
        ["SHA256SUMS", "blockchain-data.tar.gz", database, "env.enc", "manifest.json", "secrets.tar.enc", "verify.json"].sort(),
      );
      assert.equal(mode(good), 0o700);
      for (const file of files) assert.equal(mode(join(good, file)), 0o600, file);
      assert.equal(readFileSync(join(good, "env.enc")).includes(env.API_MNEMONIC), false, ".env is encrypted");
      const manifest = JSON.parse(readFileSync(join(good, "manifest.json"), "utf8"));
      assert.equal(manifest.ledger.keys, false, "keys only in pre-* sets");
      assert.equal(manifest.database.engine, storage === "postgres" ? "postgresql" : "pglite");
      assert.equal(manifest.rows.registrations, 3);
      assert.match(
        readFileSync(join(deployment.stateDir, "metrics", "daon_backup.prom"), "utf8"),
        /^daon_backup_last_success_timestamp_seconds \d+$/m,
      );
      const audit = readFileSync(join(deployment.stateDir, "logs", "ops-audit.log"), "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      assert.ok(audit.some((entry) => entry.command === "backup" && entry.result === "ok"));

      const verified = await daon(["backup", "verify", "--latest", "--json"], deployment.dir);
      assert.equal(verified.code, 0, verified.stderr);
      const report = JSON.parse(verified.stdout).report;
      assert.equal(report.mode, "full");
      assert.deepEqual(report.rows, manifest.rows);
      const ledger = report.checks.find((c: { id: string }) => c.id === "ledger.restore");
      assert.equal(ledger.ok, true);
      assert.match(ledger.detail, new RegExp(`app hash recomputed at height ${manifest.height}: ${manifest.appHash}`));
      assert.equal(JSON.parse(readFileSync(join(good, "verify.json"), "utf8")).ok, true);
    });

    test("backup verify fails (exit 1, saying why) on a truncated, an empty and a tampered set", async () => {
      assert.ok(good, "the good set exists");
      const scratch = join(deployment.dir, "damaged");
      const copy = (name: string) => {
        const dir = join(scratch, name);
        cpSync(good, dir, { recursive: true });
        return dir;
      };
      mkdirSync(scratch, { recursive: true });

      const truncated = copy("truncated");
      truncateSync(join(truncated, "blockchain-data.tar.gz"), Math.floor(statSync(join(truncated, "blockchain-data.tar.gz")).size / 2));
      const empty = join(scratch, "empty");
      mkdirSync(empty);
      const reencrypted = copy("tampered-settings");
      const sealed = readFileSync(join(reencrypted, "env.enc"));
      sealed[sealed.length - 20] ^= 0xff;
      writeFileSync(join(reencrypted, "env.enc"), sealed);
      await resealSums(reencrypted);
      const recounted = copy("tampered-counts");
      const manifest = JSON.parse(readFileSync(join(recounted, "manifest.json"), "utf8"));
      manifest.rows.registrations += 1;
      manifest.registrations += 1;
      writeFileSync(join(recounted, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
      await resealSums(recounted);

      const cases: [string, string[], RegExp][] = [
        [recounted, [], /rows differ from the manifest: registrations 3 ≠ 4/],
        // Files and archives are the same on both paths: checked once.
        ...(storage === "pglite"
          ? ([
              [truncated, ["--quick"], /blockchain-data\.tar\.gz has \d+ bytes, the manifest says \d+ \(truncated\?\)/],
              [empty, ["--quick"], /manifest\.json is missing/],
              [reencrypted, ["--quick"], /decryption: authentication failed: the file was altered or truncated/],
            ] as [string, string[], RegExp][])
          : []),
      ];
      for (const [dir, flags, reason] of cases) {
        const verified = await daon(["backup", "verify", dir, ...flags], deployment.dir);
        assert.equal(verified.code, 1, `${dir}: ${verified.stdout}`);
        assert.match(verified.stderr, reason, dir);
        assert.match(verified.stdout, /^FAILED /m);
      }
      if (storage === "pglite") {
        const missing = await daon(["backup", "verify", join(scratch, "no-such-set")], deployment.dir);
        assert.equal(missing.code, 2);
      }
    });

    test("a restored database is reconciled with a lower ledger height: confirmed above it → pending and in the outbox, cursor at most there", async () => {
      assert.ok(good, "the good set exists");
      const manifest = JSON.parse(readFileSync(join(good, "manifest.json"), "utf8"));
      const scratch = storage === "postgres" ? await createDatabase() : undefined;
      const database = scratch
        ? await (async () => {
            await replayPostgresDump(join(good, manifest.database.file), scratch.url);
            return openOpsDatabase({ url: scratch.url });
          })()
        : await openOpsDatabase({ pgliteArchive: readFileSync(join(good, manifest.database.file)) });
      try {
        const confirmed = await database.db
          .selectFrom("registrations")
          .select(["content_hash", "block_height"])
          .orderBy("block_height")
          .execute();
        assert.equal(confirmed.length, 3);
        const height = Number(confirmed[0].block_height); // the first work stays, any later one is above the restored ledger
        const above = confirmed.filter((row) => Number(row.block_height) > height).map((row) => row.content_hash);
        assert.ok(above.length > 0);
        const result = await reconcileWithLedger(database.db, height, { maintenance: false });
        assert.equal(result.requeued, above.length);
        assert.equal(result.indexedHeight, height);
        const rows = await database.db.selectFrom("registrations").select(["content_hash", "status", "block_height"]).execute();
        for (const row of rows) {
          assert.equal(row.status, above.includes(row.content_hash) ? "pending" : "confirmed", row.content_hash);
          if (above.includes(row.content_hash)) assert.equal(row.block_height, null);
        }
        const outbox = await database.db
          .selectFrom("outbox")
          .select(["content_hash", "status"])
          .where("content_hash", "in", above)
          .execute();
        assert.deepEqual(
          outbox.map((row) => row.status),
          above.map(() => "pending"),
        );
      } finally {
        await database.close();
        await scratch?.drop();
      }
    });

    if (storage === "pglite") {
      test("retention removes only old scheduled sets, and never leaves fewer than 3 good sets", async () => {
        const backups = join(deployment.stateDir, "backups");
        const manifest = JSON.parse(readFileSync(join(good, "manifest.json"), "utf8"));
        const fake = (name: string, kind: string, daysAgo: number, keep = false) => {
          mkdirSync(join(backups, name));
          const time = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
          writeFileSync(join(backups, name, "manifest.json"), JSON.stringify({ ...manifest, name, kind, keep, time }));
        };
        // 40 daily scheduled sets: the newest 7 days, 4 weeks and 6 months keep theirs; one old manual and one --keep set stay.
        for (let day = 1; day <= 40; day++) fake(`scheduled-old-${day}`, "scheduled", day);
        fake("manual-old", "manual", 300);
        fake("scheduled-kept", "scheduled", 200, true);
        const ran = await daon(["backup", "--kind", "scheduled", "--no-offsite", "--json"], deployment.dir);
        assert.equal(ran.code, 0, ran.stderr);
        const removed: string[] = JSON.parse(ran.stdout).removed;
        const left = new Set(readdirSync(backups));
        assert.ok(removed.length > 20, `removed ${removed.length}`);
        for (const name of removed) assert.match(name, /^scheduled-old-\d+$/, "only scheduled sets without --keep go");
        for (const name of removed) assert.equal(left.has(name), false);
        // The newest of each of the last 7 days stays (today's new set, then 1 to 6 days ago), as do the other kinds and --keep.
        for (const day of [1, 2, 3, 4, 5, 6]) assert.ok(left.has(`scheduled-old-${day}`), `day ${day}`);
        for (const name of ["manual-old", "scheduled-kept", JSON.parse(ran.stdout).name, good.split("/").pop()])
          assert.ok(left.has(name), `${name} kept`);

        // Sets minutes apart on one day: the rules keep only the newest scheduled one, but 3 good sets always stay.
        const set = (name: string, kind: string, minutesAgo: number) => ({
          name,
          manifest: { ...manifest, kind, keep: kind !== "scheduled", time: new Date(Date.now() - minutesAgo * 60_000).toISOString() },
        });
        assert.deepEqual(
          retentionPlan([set("a", "scheduled", 1), set("b", "scheduled", 2), set("c", "scheduled", 3), set("d", "scheduled", 4)]),
          ["d"],
        );
        assert.deepEqual(retentionPlan([set("a", "scheduled", 1), set("b", "scheduled", 2), set("c", "scheduled", 3)]), []);
        assert.deepEqual(
          retentionPlan([
            set("a", "scheduled", 1),
            set("b", "manual", 2),
            set("c", "pre-wipe", 3),
            set("d", "scheduled", 4),
            set("e", "scheduled", 5),
          ]),
          ["e", "d"],
        );
        assert.deepEqual(
          retentionPlan([set("a", "manual", 1), set("b", "pre-wipe", 2), set("c", "pre-rollback", 3), set("d", "manual", 4)]),
          [],
        );
      });

      test("daon restore: the dry run changes nothing, and a wrong chain ID aborts with exit 1", async () => {
        const envBefore = readFileSync(deployment.envFile, "utf8");
        const dry = await daon(["restore", good, "--dry-run"], deployment.dir);
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stdout, /dry run: nothing was changed/);
        const wrong = await daon(["restore", good, "--yes-restore", "--confirm-chain", "daon-test-other"], deployment.dir);
        assert.equal(wrong.code, 1);
        assert.match(wrong.stderr, /nothing changed/);
        const offTty = await daon(["restore", good], deployment.dir);
        assert.equal(offTty.code, 2);
        assert.match(offTty.stderr, /--yes-restore is required/);
        assert.equal(readFileSync(deployment.envFile, "utf8"), envBefore);
        assert.equal((await fetch(`${deployment.apiUrl}/health`)).status, 200);
      });

      test("daon node snapshot and daon backup read a stopped deployment directly", async () => {
        await running.stop();
        const height = running.ledger.node.height;
        const out = join(deployment.dir, "snapshot");
        const snapshot = await daon(
          ["node", "snapshot", "--home", join(deployment.stateDir, "node"), "--out", out, "--json"],
          deployment.dir,
        );
        assert.equal(snapshot.code, 0, snapshot.stderr);
        const result = JSON.parse(snapshot.stdout);
        assert.equal(result.height, height);
        assert.equal(result.chainId, deployment.chainId);
        assert.equal(existsSync(join(out, "config", "priv_validator_key.json")), false);
        assert.ok(existsSync(join(out, "data", "ledger.db", "CURRENT")));

        // With nothing running, a backup reads the embedded database and the ledger store directly.
        const offline = await daon(["backup", "--no-offsite", "--json"], deployment.dir);
        assert.equal(offline.code, 0, offline.stderr);
        assert.equal(JSON.parse(offline.stdout).height, height);
        assert.equal(JSON.parse(offline.stdout).registrations, 3);
      });
    }
  });
}
