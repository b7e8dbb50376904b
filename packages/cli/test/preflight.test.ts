import assert from "node:assert/strict";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fingerprint } from "@daon/api";
import { deploymentPaths } from "../src/deployment.js";
import type { PreflightOptions } from "../src/preflight/context.js";
import { formatOutcome, formatSummary, runPreflight } from "../src/preflight/run.js";
import { collectStatus, formatStatus } from "../src/commands/status.js";
import { createDeployment, daon, preflightLines, type TestDeployment } from "./deployment-fixture.js";

/** A backup set as `daon backup` leaves it: manifest, and what verify and the off-site copy recorded. */
function backupSet(d: TestDeployment, name: string, ageHours: number, verified: boolean | undefined, offsite?: boolean) {
  const dir = join(d.stateDir, "backups", name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const time = new Date(Date.now() - ageHours * 3600_000).toISOString();
  writeFileSync(join(dir, "manifest.json"), JSON.stringify({ kind: "manual", time, chainId: d.env().CHAIN_ID }), { mode: 0o600 });
  writeFileSync(join(dir, "database.sql.gz"), Buffer.alloc(4096), { mode: 0o600 });
  if (verified !== undefined)
    writeFileSync(
      join(dir, "verify.json"),
      JSON.stringify({
        ok: verified,
        at: new Date().toISOString(),
        ...(verified ? {} : { error: "table counts differ: registrations 12 ≠ 11" }),
      }),
    );
  if (offsite !== undefined) writeFileSync(join(dir, "offsite.json"), JSON.stringify({ ok: offsite, at: new Date().toISOString() }));
  return dir;
}

for (const storage of ["pglite", "postgres"] as const) {
  const production = storage === "postgres";
  describe(`daon preflight and daon status (${storage}, ${production ? "production profile, split topology" : "embedded profile"})`, () => {
    let d: TestDeployment;
    let healthyBackup: string;
    before(async () => {
      d = await createDeployment(storage, {
        topology: production ? "split" : "single",
        settings: production ? { BACKUP_OFFSITE_COMMAND: "true" } : {},
      });
      await d.start();
      healthyBackup = backupSet(d, "manual-20260101_000000", 1, true, production ? true : undefined);
    });
    after(async () => {
      await d.stop();
      await d.destroy();
    });

    /** The checks `only` as `daon preflight` runs them (in this process: the spawn costs seconds), printed the same way. */
    async function preflight(only: string, options: PreflightOptions = {}) {
      const report = await runPreflight(deploymentPaths({ envFile: d.envFile }), { only, ...options });
      return { stdout: `${report.checks.map(formatOutcome).join("\n")}\n${formatSummary(report)}\n`, code: report.exitCode };
    }

    /** Runs some checks with `.env` changed, then puts `.env` back. */
    async function withEnv(changes: Record<string, string | undefined>, only: string, options: PreflightOptions = {}) {
      const saved = d.env();
      d.setEnv(changes);
      try {
        return await preflight(only, options);
      } finally {
        d.setEnv(Object.fromEntries([...Object.keys(changes)].map((k) => [k, saved[k]])));
      }
    }

    test("a healthy deployment passes every check that can pass on this machine, with measured values and totals", async () => {
      const run = await d.daon(["preflight", "--quick", "--smoke"]);
      const lines = preflightLines(run.stdout);
      assert.equal(lines.size, 26, run.stdout + run.stderr);
      const mustPass = [
        "config.schema",
        "api.health",
        "node.status",
        "chain.id",
        "config.node_env",
        "config.effective",
        "secrets.strength",
        "files.perms",
        "security.cors",
        "security.limits",
        "security.log_scan",
        "db.health",
        "ledger.blocks",
        "outbox.backlog",
        "webhooks.delivery",
        "backup.recent",
        "backup.restorable",
        "host.resources",
        "smoke",
        ...(production ? ["backup.offsite"] : ["tls.cert", "monitoring", "redis"]),
      ];
      for (const id of mustPass) assert.equal(lines.get(id)?.status, "PASS", `${id}: ${lines.get(id)?.reason}\n${run.stdout}`);
      // Just started (WARN by the spec), and --quick skips the audit.
      assert.match(lines.get("services.up")?.reason ?? "", /restarted within 1 h/);
      assert.equal(lines.get("deps.audit")?.status, "WARN");
      assert.match(lines.get("api.health")?.reason ?? "", /200 healthy in \d+ ms/);
      assert.match(lines.get("chain.id")?.reason ?? "", new RegExp(`${d.env().CHAIN_ID} everywhere`));
      assert.match(lines.get("smoke")?.reason ?? "", /confirmed in [\d.]+ s at block \d+; verified by the API, abci_query and tx_search/);
      if (production) {
        // What a workstation cannot have: a certificate on localhost:443, Prometheus/Grafana, a Redis without an open default user.
        assert.equal(lines.get("tls.cert")?.status, "FAIL");
        assert.match(lines.get("monitoring")?.reason ?? "", /missing: Prometheus/);
        assert.match(lines.get("redis")?.reason ?? "", /default user also answers without one/);
        assert.match(lines.get("db.health")?.reason ?? "", /connections .*pools 1×20=20, no migration pending/);
      } else {
        assert.match(lines.get("tls.cert")?.reason ?? "", /not applicable/);
      }
      const fails = [...lines.values()].filter((l) => l.status === "FAIL").length;
      const warns = [...lines.values()].filter((l) => l.status === "WARN").length;
      assert.match(run.stdout, new RegExp(`26 checks: ${26 - fails - warns} PASS, ${warns} WARN, ${fails} FAIL`));
      assert.match(run.stdout, fails === 0 ? /\nREADY\n$/ : /\nNOT READY\n$/);
      assert.equal(run.code, fails === 0 ? 0 : 1);
    });

    test("--json gives one document; --strict makes a WARN fail; --only/--skip mark the rest skipped", async () => {
      const json = await d.daon(["--json", "preflight", "--strict", "--only", "1,secrets.strength"]);
      const report = JSON.parse(json.stdout);
      assert.equal(report.command, "preflight");
      assert.equal(report.checks.length, 26);
      assert.deepEqual(report.checks[0], { number: 1, id: "config.schema", status: "PASS", reason: report.checks[0].reason });
      assert.equal(report.checks[1].reason, "skipped (--only)");
      assert.deepEqual([report.ready, report.exitCode, json.code], [false, 1, 1], "--strict: the skipped checks' WARN fail");
      const lenient = await preflight("1,secrets.strength");
      assert.equal(lenient.code, 0);
      assert.match(lenient.stdout, /26 checks: 2 PASS, 24 WARN, 0 FAIL\nREADY\n$/);
      const skipped = await preflight("1", { skip: "1" });
      assert.match(skipped.stdout, /01 WARN config.schema: skipped \(--skip\)/);
      await assert.rejects(preflight("no.such"), /unknown check "no.such"/);
    });

    test("without a readable .env it exits 2 and runs nothing", { skip: production && "the same on both paths: run once" }, async () => {
      const empty = join(d.dir, "empty");
      mkdirSync(empty, { recursive: true });
      const run = await daon(["preflight"], empty);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /cannot read .*empty\/\.env/);
      assert.equal(run.stdout, "");
    });

    test("secrets.strength: a default, a short and two equal secrets each FAIL, naming the secret and never its value", async () => {
      const cases: [Record<string, string>, RegExp][] = [
        [{ JWT_SECRET: "changeme-changeme-changeme-changeme-42" }, /08 FAIL secrets\.strength: JWT_SECRET is contains "changeme"/],
        [{ API_KEY_SECRET: "Sh0rtSecret" }, /API_KEY_SECRET is shorter than 32 characters \(11\)/],
        [{ ENCRYPTION_KEY: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }, /ENCRYPTION_KEY is under 128 bits of entropy/],
        [{ API_KEY_SECRET: d.env().JWT_SECRET }, /API_KEY_SECRET equals JWT_SECRET/],
      ];
      for (const [changes, expected] of cases) {
        const run = await withEnv(changes, "secrets.strength");
        assert.match(run.stdout, expected);
        assert.equal(run.code, 1);
        for (const value of Object.values(changes)) assert.equal(run.stdout.includes(value), false, "no secret value in the output");
      }
      if (production) {
        const missing = await withEnv({ POSTGRES_SUPERUSER_PASSWORD: undefined }, "8");
        assert.match(missing.stdout, /POSTGRES_SUPERUSER_PASSWORD is missing/);
      }
      const overlap = await withEnv({ JWT_SECRET_PREVIOUS: "Zq8vN3xL5tR2wK9mP4cY7hB1fD6gJ0sA-previous-jwt" }, "8");
      assert.match(overlap.stdout, /08 WARN secrets\.strength: .*JWT_SECRET_PREVIOUS kept with no rotation record, past the 24 h overlap/);
      assert.equal(overlap.code, 0);
    });

    test("files.perms: .env readable by others, an open secrets dir or a wallet file FAIL with the mode found", async () => {
      const secretsDir = join(d.stateDir, "secrets");
      const wallet = join(secretsDir, `api-wallet-${d.env().CHAIN_ID}.txt`);
      const cases: [string, number, number, RegExp][] = [
        [d.envFile, 0o644, 0o600, /\.env is 0644, want 0600 or 0400/],
        [secretsDir, 0o755, 0o700, /secrets is 0755, want 0700/],
        [wallet, 0o640, 0o600, /api-wallet-.*\.txt is 0640, want 0600/],
      ];
      for (const [path, broken, fixed, expected] of cases) {
        chmodSync(path, broken);
        const run = await preflight("files.perms");
        chmodSync(path, fixed);
        assert.match(run.stdout, /09 FAIL files\.perms/);
        assert.match(run.stdout, expected);
        assert.equal(run.code, 1);
      }
      assert.match((await preflight("9")).stdout, /09 PASS files\.perms/);
    });

    test("chain.id: .env against genesis, node and API, and --expect-chain", async () => {
      const chain = d.env().CHAIN_ID;
      const run = await withEnv({ CHAIN_ID: "daon-test-elsewhere" }, "chain.id");
      assert.match(
        run.stdout,
        new RegExp(
          `05 FAIL chain\\.id: chain IDs differ: \\.env=daon-test-elsewhere, genesis=${chain}, node=${chain}, API http://127\\.0\\.0\\.1:\\d+=${chain}`,
        ),
      );
      assert.equal(run.code, 1);
      const expected = await preflight("5", { expectChain: "daon-mainnet-1" });
      assert.match(expected.stdout, /--expect-chain=daon-mainnet-1/);
      assert.equal(expected.code, 1);
      assert.equal((await preflight("5", { expectChain: chain })).code, 0);
    });

    test("config.effective: a secret changed in .env but not loaded by the running API FAILs, naming it", async () => {
      const jwt = await withEnv({ JWT_SECRET: "Xv3tPq9LmZ2rKw8sNb5cYh7dGf4jQa1e-not-reloaded" }, "config.effective");
      assert.match(
        jwt.stdout,
        /07 FAIL config\.effective: running settings differ from \.env .*JWT_SECRET [0-9a-f]{12} ≠ \.env [0-9a-f]{12}/,
      );
      const apiKey = await withEnv({ API_KEY_SECRET: "Xv3tPq9LmZ2rKw8sNb5cYh7dGf4jQa1e-other-apikey" }, "7");
      assert.match(apiKey.stdout, /refuses the ops token of \.env's API_KEY_SECRET/);
      assert.equal(apiKey.code, 1);
      // /internal/ops/config itself: 404 without the ops token; with it, fingerprints and settings but no secret value.
      const anonymous = await fetch(`${d.apiUrl}/internal/ops/config`);
      assert.equal(anonymous.status, 404);
      assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, "NOT_FOUND");
      const config = await fetch(`${d.apiUrl}/internal/ops/config`, { headers: { authorization: `Bearer ${d.opsToken()}` } });
      const text = await config.text();
      const body = JSON.parse(text);
      assert.equal(body.fingerprints.JWT_SECRET, fingerprint(d.env().JWT_SECRET));
      assert.equal(body.settings.CHAIN_ID, d.env().CHAIN_ID);
      for (const [name, value] of Object.entries(d.env()))
        if (/SECRET|_KEY|PASSWORD|MNEMONIC/.test(name)) assert.equal(text.includes(value), false, `${name} in /internal/ops/config`);
      if (production) {
        assert.equal(body.fingerprints["REDIS_URL#password"], fingerprint(new URL(d.env().REDIS_URL).password));
      }
    });

    test("security.cors, security.limits, config.schema and config.node_env judge .env as the table says", async () => {
      const star = await withEnv({ ALLOWED_ORIGINS: "*" }, "security.cors");
      assert.match(star.stdout, /12 FAIL security\.cors: ALLOWED_ORIGINS allows every origin \(\*\)/);
      const unset = await withEnv({ ALLOWED_ORIGINS: undefined }, "12");
      assert.match(unset.stdout, /12 FAIL security\.cors: ALLOWED_ORIGINS is unset/);
      const plain = await withEnv({ ALLOWED_ORIGINS: "http://app.example.org" }, "12");
      assert.match(plain.stdout, production ? /12 FAIL .*plain http origins in production/ : /12 PASS/);

      const unknown = await withEnv({ CORS_ORIGIN: "x", SOMETHING_ELSE: "y" }, "config.schema");
      assert.match(unknown.stdout, /01 WARN config\.schema: .*legacy CORS_ORIGIN \(now ALLOWED_ORIGINS\); unknown SOMETHING_ELSE/);
      const invalid = await withEnv({ PORT: "abc", API_MNEMONIC: undefined }, "1");
      assert.match(invalid.stdout, /01 FAIL config\.schema: invalid configuration: .*missing API_MNEMONIC/);

      const debug = await withEnv({ LOG_LEVEL: "debug" }, "security.limits");
      assert.match(debug.stdout, production ? /13 WARN security\.limits: .*LOG_LEVEL=debug in production/ : /13 PASS/);
      if (production) {
        const dev = await withEnv({ NODE_ENV: "development" }, "config.node_env");
        assert.match(dev.stdout, /06 WARN config\.node_env: NODE_ENV=development on a production deployment/);
        const noRedis = await withEnv({ REDIS_URL: undefined, API_REPLICAS: "3" }, "13,25");
        assert.match(noRedis.stdout, /13 WARN security\.limits: .*3 API instances without REDIS_URL/);
        assert.match(noRedis.stdout, /25 FAIL redis: REDIS_URL is unset/);
        const open = await withEnv({ REDIS_URL: "redis://127.0.0.1:6379/3" }, "redis");
        assert.match(open.stdout, /25 FAIL redis: .*carries no password/);
        const pools = await withEnv({ DB_POOL_MAX: "100000" }, "db.health");
        assert.match(pools.stdout, /16 FAIL db\.health: .*the pools may open 100000 connections/);
        const small = await withEnv({ DB_POOL_MAX: "5" }, "16");
        assert.match(small.stdout, /16 WARN db\.health: .*DB_POOL_MAX=5 is under 10/);
      }
    });

    test("security.log_scan finds a secret, its base64 form, a bearer token and a platform key in a log, by file:line, masked", async () => {
      const logs = join(d.stateDir, "logs");
      const env = d.env();
      writeFileSync(
        join(logs, "api.log"),
        [
          '{"msg":"request completed"}',
          `{"msg":"oops","jwt":"${env.JWT_SECRET}"}`,
          `{"msg":"encoded ${Buffer.from(env.ENCRYPTION_KEY).toString("base64")}"}`,
          '{"headers":{"authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijkl"}}',
          '{"key":"DAON_BR_0123456789abcdef0123456789abcdef"}',
        ].join("\n"),
      );
      const run = await preflight("security.log_scan");
      rmSync(join(logs, "api.log"));
      assert.match(
        run.stdout,
        /14 FAIL security\.log_scan: 4 secret\(s\) in logs: .*api\.log:2 JWT_SECRET, .*api\.log:3 ENCRYPTION_KEY \(base64\), .*api\.log:4 bearer token, .*api\.log:5 platform key/,
      );
      assert.equal(run.stdout.includes(env.JWT_SECRET), false);
      assert.equal(run.code, 1);
    });

    test("backup.recent, backup.restorable and backup.offsite: stale, failed and missing sets", async () => {
      rmSync(healthyBackup, { recursive: true });
      try {
        const none = await preflight("20,21");
        assert.match(none.stdout, /20 FAIL backup\.recent: no backup in .*backups: run daon backup/);
        const stale = backupSet(d, "scheduled-20250101_000000", 30, true);
        const old = await preflight("backup.recent");
        assert.match(old.stdout, /20 FAIL backup\.recent: scheduled-20250101_000000, 30\.0 h ago, .*older than 26 h/);
        rmSync(stale, { recursive: true });
        const failed = backupSet(d, "manual-20250102_000000", 2, false, false);
        const bad = await preflight("21,22");
        assert.match(bad.stdout, /21 FAIL backup\.restorable: manual-20250102_000000 failed its verify: table counts differ/);
        assert.match(
          bad.stdout,
          production
            ? /22 FAIL backup\.offsite: the last off-site copy \(manual-20250102_000000\) failed/
            : /22 WARN backup\.offsite: no off-site target/,
        );
        rmSync(failed, { recursive: true });
        const unverified = backupSet(d, "manual-20250103_000000", 2, undefined);
        const quick = await preflight("21", { quick: true });
        assert.match(quick.stdout, /21 WARN backup\.restorable: manual-20250103_000000 not verified yet; restore test skipped \(--quick\)/);
        rmSync(unverified, { recursive: true });
      } finally {
        healthyBackup = backupSet(d, "manual-20260101_000000", 1, true, production ? true : undefined);
      }
    });

    test("daon status: one screen of the running deployment, --json, exit 0 while all is well", async () => {
      const run = await d.daon(["--json", "status"]);
      const report = JSON.parse(run.stdout);
      assert.equal(report.command, "status");
      assert.deepEqual(report.problems, []);
      assert.equal(run.code, 0, run.stdout);
      assert.equal(report.chain.chainId, d.env().CHAIN_ID);
      assert.ok(report.chain.height >= 1);
      assert.equal(report.chain.mempool, 0);
      assert.deepEqual(
        report.services.map((s: { name: string; up: boolean }) => [s.name, s.up]),
        [
          ["api", true],
          ["node", true],
        ],
      );
      assert.equal(report.database.engine, production ? "postgresql" : "pglite");
      if (production) assert.ok(report.database.connections >= 1 && report.database.maxConnections >= report.database.connections);
      assert.equal(report.redis, production ? "up" : "not used (embedded)");
      assert.equal(report.backup.name, "manual-20260101_000000");
      assert.equal(report.backup.verified, true);
      const screen = formatStatus(await collectStatus(deploymentPaths({ envFile: d.envFile })));
      assert.match(screen, /SERVICES\n {2}up {3}api/);
      assert.match(screen, /\nOK$/);
    });

    test("a stopped node: node.status and ledger.blocks FAIL, status exits 1 naming it (the last test: it stops the deployment)", async () => {
      if (production) {
        // Split topology: only the ledger node stops; the API keeps answering.
        const node = d.children[0];
        const exited = new Promise((done) => node.once("exit", done));
        node.kill("SIGTERM");
        await exited;
      } else {
        await d.stop();
      }
      const run = await preflight("2,4,17");
      assert.match(run.stdout, /04 FAIL node\.status: RPC http:\/\/127\.0\.0\.1:\d+\/status failed/);
      assert.match(run.stdout, /17 FAIL ledger\.blocks: no block information/);
      assert.match(
        run.stdout,
        production ? /02 FAIL services\.up: down: daon node #1 \(not running\)/ : /02 FAIL services\.up: down: daon up #1/,
      );
      assert.equal(run.code, 1);
      const status = await collectStatus(deploymentPaths({ envFile: d.envFile }));
      assert.equal(status.exitCode, 1);
      assert.match(formatStatus(status), /PROBLEMS: .*ledger node http:\/\/127\.0\.0\.1:\d+ unreachable/);
    });
  });
}
