import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { POSTGRES_ADMIN_URL, STORAGE_PATHS, startTestSystem, type TestSystem } from "../../api/test/test-system.js";
import { opsToken } from "@daon/api";
import { formatDuration, parseDuration } from "../src/loadtest/duration.js";
import { UsageError } from "../src/deployment.js";
import { runLoadTest, runShape } from "../src/loadtest/load-test.js";
import { evaluate, thresholdsFor } from "../src/loadtest/thresholds.js";
import { histogramQuantile, launchReport } from "../src/report/launch-report.js";

const ROOT = resolve(import.meta.dirname, "../../..");
const DAON = join(ROOT, "bin/daon.mjs");
const API_KEY_SECRET = "loadtest-suite-api-key-secret-0123456789abcdefghijklmnopqrstuvwx";
/**
 * The target keeps its default limits (anonymous protect: 30 a minute per IP): the load test's
 * requests carry a load-test key, which has its own quota instead.
 */
const SYSTEM_ENV = { API_KEY_SECRET };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function daon(args: string[], cwd: string, onStart?: (child: ChildProcess) => void): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [DAON, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
    onStart?.(child);
  });
}

function script(args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(join(ROOT, "scripts/testing/run-load-test.sh"), args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The one run directory under `root`. */
function runDir(root: string): string {
  const entries = readdirSync(root);
  assert.equal(entries.length, 1, `one run directory in ${root}: ${entries}`);
  assert.match(entries[0], /^\d{8}_\d{6}$/, "named YYYYMMDD_HHMMSS (UTC)");
  return join(root, entries[0]);
}

/** `| Label | value |` rows of REPORT.md, by label. */
function tableRows(markdown: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of markdown.split("\n")) {
    if (!line.startsWith("| ") || line.startsWith("|---")) continue;
    const cells = line
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
    rows.set(cells[0], cells.slice(1));
  }
  return rows;
}

/** Resolves once a run under `out` has started its load (console.log names the results directory). */
async function loadStarted(out: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const run = existsSync(out) ? readdirSync(out)[0] : undefined;
    const log = run ? join(out, run, "console.log") : undefined;
    if (log && existsSync(log) && readFileSync(log, "utf8").includes("results in")) return;
    await sleep(100);
  }
  throw new Error(`no load test started under ${out}`);
}

describe("load-test settings", () => {
  test("USERS, DURATION and the ramp are taken exactly as given; the ramp defaults to 20 % of DURATION, at most 5 m", () => {
    assert.deepEqual(runShape("1500", "20m"), { users: 1500, durationMs: 1_200_000, rampMs: 240_000 });
    assert.deepEqual(runShape("500", "15m"), { users: 500, durationMs: 900_000, rampMs: 180_000 });
    assert.deepEqual(runShape("20", "8s"), { users: 20, durationMs: 8000, rampMs: 1600 });
    assert.equal(runShape("10", "1h30m").rampMs, 300_000);
    assert.equal(runShape("10", "90s", "30s").rampMs, 30_000);
    assert.equal(parseDuration("1h30m", "DURATION"), 5_400_000);
    assert.equal(formatDuration(5_400_000), "1h30m");
    assert.throws(() => runShape("many", "5s"), /USERS "many" must be a whole number/);
    assert.throws(() => runShape("0", "5s"), /USERS "0"/);
    assert.throws(() => runShape("5", "5 minutes"), /DURATION "5 minutes" must be a duration such as 90s, 15m or 1h30m/);
    assert.throws(() => runShape("5", "5s", "3s"), /--ramp 3s is more than half of DURATION 5s/);
  });

  test("profiles and --threshold: gate and launch limits, overrides, and a threshold without a measurement fails", () => {
    const keys = (list: { key: string; limit: number }[]) => Object.fromEntries(list.map((t) => [t.key, t.limit]));
    assert.deepEqual(keys(thresholdsFor("gate", [])), { error_rate: 0.1, p95: 5000, confirm_p95: 30_000, confirmed: 0.99, recovered: 1 });
    assert.deepEqual(keys(thresholdsFor("launch", [])), {
      error_rate: 0.01,
      p95: 2000,
      confirm_p95: 30_000,
      confirmed: 0.99,
      recovered: 1,
    });
    const custom = keys(thresholdsFor("gate", ["error_rate=5%", "p95.protect=1500", "p99=3s", "recovered=off"]));
    assert.deepEqual(custom, { error_rate: 0.05, p95: 5000, confirm_p95: 30_000, confirmed: 0.99, "p95.protect": 1500, p99: 3000 });
    assert.throws(() => thresholdsFor("gate", ["latency=5"]), /--threshold "latency=5": use K=V/);
    assert.throws(() => thresholdsFor("gate", ["error_rate=7"]), /fraction \(0.05\) or a percentage/);
    const results = evaluate(thresholdsFor("launch", ["p95.protect=100"]), {
      errorRate: 0.02,
      percentile: (_p, endpoint) => (endpoint === "protect" ? 99 : 1500),
      confirmP95: null,
      confirmedRatio: 1,
      recovered: true,
    });
    assert.deepEqual(
      results.map((r) => [r.key, r.measured, r.pass]),
      [
        ["error_rate", "2.00%", false],
        ["p95", "1500 ms", true],
        ["confirm_p95", "n/a", false],
        ["confirmed", "100.00%", true],
        ["recovered", "yes", true],
        ["p95.protect", "99 ms", true],
      ],
    );
  });

  test("a latency histogram's p95 is interpolated inside its bucket, as Prometheus does", () => {
    const bounds = [5, 10, 25, 50];
    assert.equal(histogramQuantile(0.95, bounds, [0, 0, 0, 0, 0]), null);
    assert.equal(histogramQuantile(0.95, bounds, [100, 0, 0, 0, 0]), 4.75);
    assert.equal(histogramQuantile(0.5, bounds, [50, 0, 50, 0, 0]), 5);
    assert.equal(histogramQuantile(0.95, bounds, [0, 0, 0, 0, 10]), 50, "beyond the last bound: the last bound");
  });
});

describe("against a started system", () => {
  for (const storage of STORAGE_PATHS) {
    describe(`daon loadtest and daon report (${storage})`, () => {
      let system: TestSystem;
      let dir: string;
      let envFile: string;
      let startedAt: Date;
      let loadTestRequests = 0;
      /** Requests this test makes without a key: the live traffic the report must count, and only that. */
      let liveRequests = 0;
      const live = (path: string, init?: RequestInit) => {
        liveRequests += 1;
        return fetch(`${system.apiUrl}${path}`, init);
      };
      before(async () => {
        system = await startTestSystem(storage, SYSTEM_ENV);
        startedAt = new Date();
        dir = await mkdtemp(join(tmpdir(), "daon-loadtest-"));
        envFile = join(dir, ".env");
        await writeFile(
          envFile,
          `CHAIN_ID=${system.chainId}\nAPI_KEY_SECRET=${API_KEY_SECRET}\nCHAIN_RPC=${system.rpcUrl}\nDAON_STATE_DIR=${join(dir, "state")}\n`,
        );
      });
      after(async () => {
        await system.stop();
        await rm(dir, { recursive: true, force: true });
      });

      test("20 users for 6 s: PASS and exit 0; the four files agree; test registrations stay, tagged and findable; nothing was switched off", async () => {
        const out = storage === "postgres" ? join(dir, "elsewhere") : undefined;
        const run = await daon(
          // p95 is a timing: this limit only keeps a slow shared test machine from failing the run.
          [
            "--env-file",
            envFile,
            "--json",
            "loadtest",
            system.apiUrl,
            "20",
            "6s",
            "--yes",
            "--threshold",
            "p95=30s",
            ...(out ? ["--out", out] : []),
          ],
          dir,
        );
        assert.equal(run.code, 0, run.stderr);
        const summary = JSON.parse(run.stdout);
        assert.equal(summary.verdict, "PASS");
        assert.equal(summary.ok, true);
        // Without --out the run goes under <state>/load-tests/results/ (ops.md §4).
        const results = runDir(out ?? join(dir, "state", "load-tests", "results"));
        assert.equal(summary.dir, results);

        const json = JSON.parse(readFileSync(join(results, "results.json"), "utf8"));
        assert.equal(json.users, 20);
        assert.equal(json.durationSeconds, 6);
        loadTestRequests = json.requests.total;
        assert.equal(json.chainId, system.chainId);
        assert.equal(json.verdict, "PASS");
        assert.equal(json.tag, `loadtest:${json.runId}`);
        const endpoints = Object.values(json.endpoints) as { count: number; errors: number }[];
        assert.equal(
          json.requests.total,
          endpoints.reduce((sum, e) => sum + e.count, 0),
        );
        assert.equal(json.requests.errors, 0);
        assert.ok(json.endpoints.protect.count >= 20, "every user protected at least once");
        assert.ok(json.endpoints.verify.count >= 1);
        assert.ok(json.confirmations.polled >= 1, "iteration 0 polls until confirmed");
        assert.equal(json.confirmations.confirmed, json.confirmations.polled);
        assert.equal(json.recovery.recovered, true);
        assert.equal(json.recovery.outboxPending, 0);
        assert.deepEqual(
          json.thresholds.map((t: { key: string }) => t.key),
          ["error_rate", "p95", "confirm_p95", "confirmed", "recovered"],
        );
        assert.ok(json.thresholds.every((t: { pass: boolean }) => t.pass));
        assert.ok(json.series.length >= 1);
        assert.equal(
          json.series.reduce((sum: number, point: { requests: number }) => sum + point.requests, 0),
          json.requests.total,
          "the 10 s series adds up to the total",
        );

        const report = readFileSync(join(results, "REPORT.md"), "utf8");
        assert.match(report, /^# DAON load test: PASS/);
        const rows = tableRows(report);
        assert.deepEqual(rows.get("Target"), [system.apiUrl]);
        assert.deepEqual(rows.get("Chain ID"), [system.chainId]);
        assert.deepEqual(rows.get("Users"), ["20"]);
        assert.deepEqual(rows.get("Test tag"), [json.tag]);
        assert.deepEqual(rows.get("Total requests"), [String(json.requests.total)]);
        assert.deepEqual(rows.get("Errors"), ["0"]);
        for (const name of ["protect", "verify", "stats", "poll"]) {
          const [count, errors, p50, p95, p99] = rows.get(name)!;
          assert.equal(Number(count), json.endpoints[name].count, name);
          assert.equal(Number(errors), json.endpoints[name].errors, name);
          if (json.endpoints[name].count > 0) for (const p of [p50, p95, p99]) assert.match(p, /^\d+ ms$/);
        }
        for (const threshold of json.thresholds) assert.deepEqual(rows.get(threshold.key), [threshold.limit, threshold.measured, "PASS"]);
        assert.deepEqual(rows.get("Polled iterations"), [String(json.confirmations.polled)]);
        assert.deepEqual(rows.get("network"), ["0"]);
        assert.deepEqual(rows.get("http_429"), ["0"]);

        const csv = readFileSync(join(results, "system-metrics.csv"), "utf8").trim().split("\n");
        assert.equal(csv[0], "timestamp,scope,name,cpu_percent,rss_mb,mem_percent,load1,load5,load15,open_connections");
        const cells = csv.slice(1).map((line) => line.split(","));
        assert.ok(cells.every((c) => c.length === 10 && !Number.isNaN(Date.parse(c[0]))));
        const host = cells.filter((c) => c[1] === "host");
        assert.ok(host.length >= 2, "a host row every 5 s and after recovery");
        assert.ok(host.every((c) => Number(c[4]) > 0 && Number(c[5]) > 0 && c[6] !== "" && Number(c[9]) >= 0));
        // This test process serves the API and the ledger RPC: it is the DAON process the load test watches.
        const own = cells.filter((c) => c[1] === "process" && c[2].endsWith(`:api+node[${process.pid}]`));
        assert.ok(own.length >= 2, csv.join("\n"));
        assert.ok(own.every((c) => Number(c[4]) > 10 && c[3] !== ""));
        assert.ok(json.system.peaks.some((p: { name: string }) => p.name.endsWith(`[${process.pid}]`)));

        const consoleLog = readFileSync(join(results, "console.log"), "utf8");
        assert.match(consoleLog, /\[6s\/6s\] users \d+\/20 {2}requests \d+/);
        assert.doesNotMatch(consoleLog, /^ERROR /m);
        assert.match(consoleLog, /^PASS: \d+ requests, 0 errors/m);

        // The test registrations stay in the target, tagged with the run, and verify finds them.
        const tagged = await system.api.database.db
          .selectFrom("registrations")
          .select(["content_hash", "metadata"])
          .where("source", "=", json.tag)
          .execute();
        assert.equal(tagged.length, json.endpoints.protect.count);
        assert.ok(tagged.every((r) => (r.metadata as { type?: string }).type === "loadtest"));
        const found = await (await live(`/api/v1/verify/${tagged[0].content_hash}`)).json();
        assert.equal(found.isValid, true);
        assert.equal(found.status, "confirmed");

        // Nothing was switched off: healthy, anonymous protect still works and is still rate limited.
        assert.equal((await fetch(`${system.apiUrl}/health`)).status, 200);
        const anonymous = await live("/api/v1/protect?wait=false", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ content: `after the load test ${Math.random()}` }),
        });
        assert.equal(anonymous.status, 202);
        assert.equal(anonymous.headers.get("ratelimit-limit"), "30", "the per-IP protect limit is still on");
      });

      test("daon report on the system that served the load test: every figure from real data; test traffic left out unless asked", async () => {
        // Live traffic besides the load test: three works registered and confirmed, two found again, one unknown hash.
        const hashes: string[] = [];
        for (let i = 0; i < 3; i++) {
          const response = await live("/api/v1/protect", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ content: `a live work ${i} ${Math.random()}` }),
          });
          assert.equal(response.status, 201);
          hashes.push((await response.json()).contentHash);
        }
        for (const hash of hashes.slice(0, 2)) assert.equal((await live(`/api/v1/verify/${hash}`)).status, 200);
        assert.equal((await live(`/api/v1/verify/${"0".repeat(64)}`)).status, 404);

        const until = new Date().toISOString();
        const outFile = join(dir, "launch-report.md");
        const common = ["report", "--since", "1h", "--until", until, "--api-url", system.apiUrl];
        const [excluded, all] = await Promise.all([
          daon(["--env-file", envFile, "--json", ...common, "--launch-time", startedAt.toISOString(), "--out", outFile], dir),
          launchReport({
            apiUrl: system.apiUrl,
            rpcUrl: system.rpcUrl,
            since: new Date(Date.parse(until) - 3600_000),
            until: new Date(until),
            launchFile: join(dir, "state", "run", "launch.json"),
            includeTestTraffic: true,
            settings: { API_KEY_SECRET },
            log: () => {},
          }),
        ]);
        assert.equal(excluded.code, 0, excluded.stderr);
        const answer = JSON.parse(excluded.stdout);
        assert.equal(answer.command, "report");
        assert.equal(answer.ok, true);
        assert.deepEqual(answer.failures, []);
        const report: string = answer.markdown;
        assert.equal(readFileSync(outFile, "utf8"), report);
        const figures = Object.fromEntries([...report.matchAll(/^- ([A-Za-z0-9 ]+): (.+)$/gm)].map(([, name, value]) => [name, value]));
        const count = (text: string) => Number(text.replaceAll(",", ""));

        assert.match(report, /^# DAON Production Launch Report\n\n/);
        assert.match(report, new RegExp(`\\*\\*Launch Date:\\*\\* ${startedAt.toISOString().slice(0, 10)}\n`));
        assert.match(report, new RegExp(`\\*\\*Launch Time:\\*\\* ${startedAt.toISOString().slice(11, 16)} UTC\n`));
        assert.match(report, /^## Metrics \(1 hour\)$/m);
        assert.equal(figures["Total Requests"], String(liveRequests), "only the live requests (/api/v1), none of the load test's");
        assert.equal(figures["Error Rate"], "0.00%", "a 404 is no server error");
        assert.match(figures["Avg Response Time"], /^\d+ms$/);
        assert.match(figures["P95 Response Time"], /^\d+ms$/);
        assert.ok(count(figures["Peak Concurrent Users"]) >= 1);
        assert.equal(figures.Uptime, "100.00%");
        assert.match(figures["New Accounts"], /^\d+$/);
        assert.match(figures["Longest Block Gap"], /^\d+\.\d s$/);
        const db = system.api.database.db;
        const realRegistrations = await db
          .selectFrom("registrations")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .where("source", "is", null)
          .executeTakeFirstOrThrow();
        const allRegistrations = await db
          .selectFrom("registrations")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .executeTakeFirstOrThrow();
        assert.equal(count(figures.Registrations), Number(realRegistrations.n));
        assert.ok(Number(allRegistrations.n) > Number(realRegistrations.n));
        // No errors and no downtime (a slow minute is a timing, which this machine does not promise).
        assert.doesNotMatch(report, /error rate above 5%|API down|no block for/);
        for (const kept of [
          "- [List any issues and resolutions]",
          "## Lessons Learned",
          "- [What went well]",
          "- [What could be improved]",
          "## Next Steps",
          "- [Follow-up actions]",
        ]) {
          assert.ok(report.includes(kept), kept);
        }

        // The ledger figures, checked against the node itself: every block in the window, every tx by tx_search.
        const rpc = async (method: string, params: Record<string, string>) =>
          (await (await fetch(`${system.rpcUrl}/${method}?${new URLSearchParams(params)}`)).json()).result;
        const blocks = count(figures.Blocks);
        assert.ok(blocks >= 2);
        const lastBlock = await rpc("blockchain", { minHeight: String(blocks), maxHeight: String(blocks + 1) });
        const times = Object.fromEntries(
          lastBlock.block_metas.map((m: { header: { height: string; time: string } }) => [m.header.height, m.header.time]),
        );
        assert.ok(Date.parse(times[String(blocks)]) < Date.parse(until));
        if (times[String(blocks + 1)]) assert.ok(Date.parse(times[String(blocks + 1)]) >= Date.parse(until));
        const txs = await rpc("tx_search", { query: `"tx.height>=1 AND tx.height<=${blocks}"`, per_page: "1" });
        assert.equal(count(all.figures.blockchainTransactions.text), Number(txs.total_count));
        const liveTxs = count(figures["Blockchain Transactions"]);
        assert.ok(liveTxs >= 1 && liveTxs <= Number(txs.total_count), "the live registrations' txs count, test-only ones do not");

        // With test traffic: the load test's requests and registrations too, and the default launch time is the genesis time.
        assert.deepEqual(all.failures, []);
        assert.ok(count(all.figures.totalRequests.text) >= liveRequests + loadTestRequests);
        assert.equal(count(all.figures.registrations.text), Number(allRegistrations.n));
        assert.equal(all.launch.text, new Date((await rpc("genesis", {})).genesis.genesis_time).toISOString());
        assert.match(all.markdown, /Test traffic \(load tests, smoke tests\) included\./);
        assert.match(
          report,
          new RegExp(
            `Test traffic excluded: ${count(all.figures.totalRequests.text) - liveRequests} requests, ${Number(allRegistrations.n) - Number(realRegistrations.n)} registrations, ${Number(txs.total_count) - liveTxs} transactions\\.`,
          ),
        );
      });

      test("load-test keys: minted only with the ops token; tag registrations, count against their own quota, not the per-IP limits; expire", async () => {
        const mint = (body: unknown, token = opsToken(API_KEY_SECRET)) =>
          fetch(`${system.apiUrl}/internal/ops/loadtest-key`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify(body),
          });
        assert.equal((await mint({ runId: "r1", durationSeconds: 60 }, "0".repeat(64))).status, 404, "no ops token: no such route");
        const noRun = await mint({ durationSeconds: 60 });
        assert.equal(noRun.status, 400);
        assert.equal((await noRun.json()).error.code, "VALIDATION_ERROR");
        const minted = await mint({ runId: "quota-run", durationSeconds: 60, quotaPerMinute: 35 });
        assert.equal(minted.status, 201);
        const key = await minted.json();
        assert.match(key.key, /^DAON_BR_[0-9a-f]{64}$/);
        assert.equal(key.tag, "loadtest:quota-run");
        assert.ok(Date.parse(key.expiresAt) - Date.now() > 3600_000, "valid for the run and an hour after");

        const protect = (headers: Record<string, string>, n: number) =>
          fetch(`${system.apiUrl}/api/v1/protect?wait=false`, {
            method: "POST",
            headers: { "content-type": "application/json", ...headers },
            body: JSON.stringify({ content: `quota ${n} ${Math.random()}`, metadata: { type: "loadtest" } }),
          });
        const withKey = { authorization: `Bearer ${key.key}`, "x-daon-load-test": "quota-run" };
        const wrongRun = await protect({ ...withKey, "x-daon-load-test": "another-run" }, 0);
        assert.equal(wrongRun.status, 400);
        // 35 protects a minute from one address: past the per-IP limit of 30, within the key's quota.
        const answers = [];
        for (let n = 1; n <= 35; n++) answers.push(await protect(withKey, n));
        assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([202]));
        const hashes = await Promise.all(answers.map(async (a) => (await a.json()).contentHash));
        const over = await protect(withKey, 36);
        assert.equal(over.status, 429);
        assert.equal((await over.json()).error.code, "QUOTA_EXCEEDED");
        assert.ok(Number(over.headers.get("retry-after")) >= 1);
        const tags = await system.api.database.db
          .selectFrom("registrations")
          .select("source")
          .where("content_hash", "in", hashes)
          .execute();
        assert.deepEqual(new Set(tags.map((t) => t.source)), new Set(["loadtest:quota-run"]));

        // A header naming a run without a load-test key tags nothing; an expired key is refused.
        const untagged = await live("/api/v1/protect?wait=false", {
          method: "POST",
          headers: { "content-type": "application/json", "x-daon-load-test": "quota-run" },
          body: JSON.stringify({ content: `no key ${Math.random()}` }),
        });
        const { contentHash } = await untagged.json();
        const row = await system.api.database.db
          .selectFrom("registrations")
          .select("source")
          .where("content_hash", "=", contentHash)
          .executeTakeFirstOrThrow();
        assert.equal(row.source, null);
        const expiring = await (await mint({ purpose: "smoke", durationSeconds: 1 })).json();
        assert.equal(expiring.tag, "smoke");
        await system.api.database.db
          .updateTable("loadtest_keys")
          .set({ expires_at: new Date(Date.now() - 1000) })
          .where("id", "=", expiring.keyId)
          .execute();
        const expired = await protect({ authorization: `Bearer ${expiring.key}` }, 0);
        assert.equal(expired.status, 401);
        assert.equal((await expired.json()).error.code, "UNAUTHORIZED");
      });

      if (storage === "postgres") {
        test("the database becoming unavailable mid-run: FAIL, exit 1, each failed request in console.log", async () => {
          const out = join(dir, "db-down");
          const database = new URL(system.databaseUrl!).pathname.slice(1);
          const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
          await admin.connect();
          let outage: Promise<void> | undefined;
          try {
            const run = await daon(["--env-file", envFile, "loadtest", system.apiUrl, "20", "6s", "--yes", "--out", out], dir, () => {
              outage = (async () => {
                // Once the load is on: refuse new connections and end the API's open ones, for most of the run.
                await loadStarted(out);
                await sleep(1000);
                await admin.query(`alter database ${database} allow_connections false`);
                await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", [database]);
                await sleep(3500);
                await admin.query(`alter database ${database} allow_connections true`);
              })();
            });
            await outage;
            assert.equal(run.code, 1, run.stderr);
            assert.match(run.stdout, /^FAIL: \d+ requests, \d+ errors/);
            const results = runDir(out);
            const json = JSON.parse(readFileSync(join(results, "results.json"), "utf8"));
            assert.equal(json.verdict, "FAIL");
            assert.ok(json.errorsByKind.http_5xx > 0);
            const errorRate = json.thresholds.find((t: { key: string }) => t.key === "error_rate");
            assert.equal(errorRate.pass, false);
            const report = readFileSync(join(results, "REPORT.md"), "utf8");
            assert.match(report, /^# DAON load test: FAIL/);
            assert.deepEqual(tableRows(report).get("error_rate"), [errorRate.limit, errorRate.measured, "FAIL"]);
            assert.deepEqual(tableRows(report).get("http_5xx"), [String(json.errorsByKind.http_5xx)]);
            const errors = readFileSync(join(results, "console.log"), "utf8")
              .split("\n")
              .filter((line) => line.startsWith("ERROR "));
            assert.equal(errors.length, json.requests.errors);
            assert.match(
              errors.find((line) => line.includes("status=5"))!,
              /^ERROR \d{4}-\d\d-\d\dT[\d:.]+Z (GET|POST) \/api\/v1\/\S+ status=5\d\d request_id=\S+ http_5xx: /,
            );
          } finally {
            await admin.query(`alter database ${database} allow_connections true`).catch(() => {});
            await admin.end();
          }
          // The target is back and serving once the database is.
          let status = 0;
          for (let i = 0; i < 50 && status !== 200; i++, await sleep(200)) status = (await fetch(`${system.apiUrl}/health`)).status;
          assert.equal(status, 200);
        });
      }

      if (storage === "pglite") {
        test("SIGINT: the users stop, requests in flight finish, the report says INCOMPLETE, exit 1", async () => {
          const out = join(dir, "interrupted");
          const run = await daon(["--env-file", envFile, "loadtest", system.apiUrl, "10", "1m", "--yes", "--out", out], dir, (child) => {
            loadStarted(out).then(async () => {
              await sleep(1500);
              child.kill("SIGINT");
            });
          });
          assert.equal(run.code, 1, run.stderr);
          assert.match(run.stderr, /SIGINT: stopping the users/);
          const results = runDir(out);
          const json = JSON.parse(readFileSync(join(results, "results.json"), "utf8"));
          assert.equal(json.verdict, "INCOMPLETE");
          assert.equal(json.thresholds.find((t: { key: string }) => t.key === "recovered").measured, "not checked");
          assert.ok(json.requests.total > 0);
          assert.match(readFileSync(join(results, "REPORT.md"), "utf8"), /^# DAON load test: INCOMPLETE/);
          assert.ok(Date.parse(json.endedAt) - Date.parse(json.startedAt) < 30_000, "stopped long before the minute was up");
          for (const file of ["system-metrics.csv", "console.log"]) assert.ok(existsSync(join(results, file)));
        });

        test("refusals before anything is sent: unhealthy target, mainnet without --allow-mainnet, not confirmed, no --yes off a terminal (exit 2); the runbook's script forwards with its defaults", async () => {
          const mainnet = createServer((_request, response) => {
            response
              .writeHead(200, { "content-type": "application/json" })
              .end(JSON.stringify({ status: "healthy", chainId: "daon-mainnet-1" }));
          });
          await new Promise<void>((ready) => mainnet.listen(0, "127.0.0.1", ready));
          const mainnetUrl = `http://127.0.0.1:${(mainnet.address() as { port: number }).port}`;
          const closed = "http://127.0.0.1:9";
          const out = join(dir, "refused");
          const attempt = (url: string, confirm?: () => Promise<boolean>) =>
            runLoadTest({
              url,
              ...runShape("5", "5s"),
              profile: "gate",
              thresholds: [],
              resultsRoot: out,
              allowMainnet: false,
              settings: { API_KEY_SECRET },
              confirm,
              log: () => {},
              interrupt: new AbortController().signal,
            });
          try {
            const defaultResults = join(dir, "state", "load-tests", "results");
            const runsUnder = (root: string) => (existsSync(root) ? readdirSync(root).length : 0);
            const runsBefore = runsUnder(defaultResults);
            const [runbook] = await Promise.all([
              script([system.apiUrl], dir),
              assert.rejects(
                attempt(closed),
                (e: Error) => e instanceof UsageError && /127\.0\.0\.1:9\/health answered nothing .*healthy API/.test(e.message),
              ),
              assert.rejects(
                attempt(mainnetUrl),
                (e: Error) =>
                  e instanceof UsageError && /daon-mainnet-1: a load test against mainnet needs --allow-mainnet/.test(e.message),
              ),
              assert.rejects(
                attempt(system.apiUrl, async () => false),
                (e: Error) => e instanceof UsageError && /not confirmed: nothing was sent/.test(e.message),
              ),
            ]);
            // The runbook's script fills USERS and DURATION with its defaults; off a terminal it needs --yes.
            assert.equal(runbook.code, 2, runbook.stderr);
            assert.ok(runbook.stderr.includes(`checking ${system.apiUrl}/health before a load test of 1500 users for 20m`), runbook.stderr);
            assert.match(runbook.stderr, /off a terminal, pass --yes to start the load test/);
            assert.equal(existsSync(out), false, "no results for a run that never started");
            assert.equal(runsUnder(defaultResults), runsBefore);
          } finally {
            await new Promise((closedServer) => mainnet.close(closedServer));
          }
        });

        test("a report whose API statistics cannot be had: those figures say n/a (why), the ledger's are still filled, and it fails; the launch time from run/launch.json", async () => {
          const launchFile = join(dir, "launch.json");
          await writeFile(launchFile, JSON.stringify({ chainId: system.chainId, launchedAt: "2026-01-02T03:04:05.000Z" }));
          const report = await launchReport({
            apiUrl: "http://127.0.0.1:9",
            rpcUrl: system.rpcUrl,
            since: new Date(Date.now() - 3600_000),
            until: new Date(),
            launchFile,
            includeTestTraffic: false,
            settings: { API_KEY_SECRET, CHAIN_ID: system.chainId },
            log: () => {},
          });
          assert.deepEqual(report.failures, ["API statistics: connect ECONNREFUSED 127.0.0.1:9"]);
          assert.match(report.markdown, /^- Total Requests: n\/a \(connect ECONNREFUSED 127\.0\.0\.1:9\)$/m);
          assert.match(report.markdown, /^- Uptime: n\/a \(/m);
          assert.match(report.markdown, /^- Blockchain Transactions: n\/a \(which txs are test traffic is unknown: /m);
          assert.match(report.markdown, /^- Blocks: \d+$/m);
          assert.match(report.markdown, /^- n\/a \(minute statistics unavailable: /m);
          assert.equal(report.launch.ok, true, "the launch time still comes from the genesis");
        });
      }
    });
  }
});
