/**
 * API bench (issue: content API): protect without waiting, protect waiting for the ledger,
 * and verify, at 100, 500 and 1,500 connections, against a bare Fastify route in the same run.
 * The system runs as `daon up` (1 s blocks) in a child process; autocannon drives it from here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { BENCH_ADMIN, benchPlatformKey } from "./api/platform-key.js";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import autocannon from "autocannon";
import pg from "pg";
import type { BenchSection } from "./lib/report.js";

export interface ApiBenchOptions {
  title: string;
  repoRoot: string;
  durationS: number;
  connections: number[];
  databaseUrl?: string;
  redisUrl?: string;
  log: (line: string) => void;
}

export interface Row {
  scenario: string;
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p97_5: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((ready, fail) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) ready();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => fail(new Error(`${what} exited with ${code}: ${seen.slice(-2000)}`)));
  });
}

function run(url: string, connections: number, durationS: number, request: autocannon.Options["requests"]): Promise<autocannon.Result> {
  return new Promise((done, fail) => {
    autocannon({ url, connections, duration: durationS, requests: request, timeout: 30 }, (error, result) =>
      error ? fail(error) : done(result),
    );
  });
}

function row(scenario: string, connections: number, result: autocannon.Result): Row {
  return {
    scenario,
    connections,
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p90: result.latency.p90,
    p97_5: result.latency.p97_5,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const protectBody = () => JSON.stringify({ contentHash: randomBytes(32).toString("hex"), metadata: { type: "bench" } });

/** Registered before the runs (twice the verify cache's size), so verify is also measured over many distinct hashes. */
const registered: string[] = [];
async function registerMany(base: string, count: number): Promise<void> {
  for (let done = 0; done < count; done += 100) {
    const works = Array.from({ length: 100 }, () => ({ contentHash: randomBytes(32).toString("hex") }));
    const response = await fetch(`${base}/api/v1/protect/bulk?wait=false`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ works, metadata: { type: "bench" } }),
    });
    if (!response.ok) throw new Error(`protect/bulk: ${response.status} ${(await response.text()).slice(0, 200)}`);
    registered.push(...works.map((w) => w.contentHash));
  }
}
const anyRegistered = () => registered[Math.floor(Math.random() * registered.length)];

export async function runApiBench(options: ApiBenchOptions): Promise<BenchSection> {
  const { rows, ratios } = await measure(options);
  const at = (scenario: string, connections: number) => rows.find((r) => r.scenario === scenario && r.connections === connections);
  const most = Math.max(...options.connections);
  const bench: BenchSection = { title: options.title, rows: [], notes: [], details: [formatRows("Every run", rows, ratios)] };
  for (const connections of options.connections) {
    const verify = at("GET /api/v1/verify/:hash", connections);
    const bare = at("bare Fastify route (baseline)", connections);
    const protect = at("POST /protect?wait=false", connections);
    bench.rows.push(
      {
        figure: `verify vs bare route, ${connections} connections`,
        value: verify && bare ? (100 * verify.requestsPerSecond) / bare.requestsPerSecond : undefined,
        unit: "%",
        target: { atLeast: 50 },
        digits: 0,
      },
      {
        figure: `registrations accepted, ${connections} connections`,
        value: protect?.requestsPerSecond,
        unit: "/s",
        target: { atLeast: 2000 },
      },
    );
  }
  const confirming = rows.find((r) => r.scenario === "POST /protect (wait for confirmation)");
  bench.rows.push({
    figure: `time to confirmation p97.5 (≥ p95), ${confirming?.connections} connections`,
    value: confirming?.p97_5,
    unit: "ms",
    target: { atMost: 1500 },
  });
  const errorsAtMost = rows
    .filter((r) => r.connections === most && r.scenario !== "bare Fastify route (baseline)")
    .reduce((n, r) => n + r.errors + r.non2xx, 0);
  bench.rows.push({ figure: `errors and non-2xx at ${most} connections`, value: errorsAtMost, unit: "", target: { atMost: 0 } });
  bench.notes.push(
    `daon up (ledger node + API, 1 s blocks, ${options.databaseUrl ? "PostgreSQL + Redis" : "PGlite"}) in one child process; autocannon and the bare Fastify baseline run beside it on the same 2 cores`,
    `${options.durationS} s per run; protect sends a fresh pre-computed hash per request`,
  );
  return bench;
}

/** A throwaway database on the server of `adminUrl`, so the bench leaves nothing behind. */
async function freshDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `daon_bench_${Date.now().toString(36)}`;
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(sql);
    await client.end();
  };
  await run(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
}

async function measure(options: ApiBenchOptions): Promise<{ rows: Row[]; ratios: string[] }> {
  const database = options.databaseUrl ? await freshDatabase(options.databaseUrl) : undefined;
  const dir = await mkdtemp(join(tmpdir(), "daon-bench-api-"));
  const [apiPort, rpcPort, barePort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    PORT: String(apiPort),
    LOG_LEVEL: "warn",
    ADMIN_EMAILS: BENCH_ADMIN,
    RATE_LIMIT_MAX: "100000000",
    PROTECT_RATE_LIMIT_MAX: "100000000",
    ...(database ? { DATABASE_URL: database.url, REDIS_URL: options.redisUrl ?? "" } : {}),
  };
  const api = spawn(process.execPath, [resolve(options.repoRoot, "bin/daon.mjs"), "up", "--rpc-laddr", `tcp://127.0.0.1:${rpcPort}`], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const bare = spawn(process.execPath, [resolve(options.repoRoot, "bench/api/bare-server.mjs")], {
    cwd: options.repoRoot,
    env: { ...process.env, PORT: String(barePort) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    await Promise.all([waitFor(api, /ready: API/, "daon up"), waitFor(bare, /ready/, "bare server")]);
    const base = `http://127.0.0.1:${apiPort}`;
    const known = JSON.parse(
      await (
        await fetch(`${base}/api/v1/protect`, { method: "POST", headers: { "content-type": "application/json" }, body: protectBody() })
      ).text(),
    ).contentHash;
    const platformKey = await benchPlatformKey(base, join(dir, "data"));
    await registerMany(base, 20_000);
    const rows: Row[] = [];
    const ratios: string[] = [];
    for (const connections of options.connections) {
      options.log(`api bench: ${connections} connections`);
      const bareResult = row(
        "bare Fastify route (baseline)",
        connections,
        await run(`http://127.0.0.1:${barePort}/bare`, connections, options.durationS, undefined),
      );
      const verify = row(
        "GET /api/v1/verify/:hash",
        connections,
        await run(`${base}/api/v1/verify/${known}`, connections, options.durationS, undefined),
      );
      const protect = row(
        "POST /protect?wait=false",
        connections,
        await run(`${base}/api/v1/protect?wait=false`, connections, options.durationS, [
          {
            method: "POST",
            headers: { "content-type": "application/json" },
            setupRequest: (request) => ({ ...request, body: protectBody() }),
          },
        ]),
      );
      const verifyMany = row(
        "GET /api/v1/verify/:hash (distinct hashes)",
        connections,
        await run(`${base}/api/v1/verify/${known}`, connections, options.durationS, [
          { method: "GET", setupRequest: (request) => ({ ...request, path: `/api/v1/verify/${anyRegistered()}` }) },
        ]),
      );
      const protectWithKey = row(
        "POST /protect?wait=false (platform key)",
        connections,
        await run(`${base}/api/v1/protect?wait=false`, connections, options.durationS, [
          {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${platformKey}` },
            setupRequest: (request) => ({ ...request, body: protectBody() }),
          },
        ]),
      );
      rows.push(bareResult, verify, verifyMany, protect, protectWithKey);
      ratios.push(
        `${connections} connections: verify ${((100 * verify.requestsPerSecond) / bareResult.requestsPerSecond).toFixed(0)}% of the bare route (distinct hashes ${((100 * verifyMany.requestsPerSecond) / bareResult.requestsPerSecond).toFixed(0)}%); protect (accepted) ${protect.requestsPerSecond}/s anonymous, ${protectWithKey.requestsPerSecond}/s with a platform key (${((100 * protectWithKey.requestsPerSecond) / Math.max(protect.requestsPerSecond, 1)).toFixed(0)}%)`,
      );
    }
    // Waiting for the ledger: latency of protect with wait=true is the time to confirmation.
    const confirming = Math.min(...options.connections);
    options.log(`api bench: protect waiting for confirmation, ${confirming} connections`);
    rows.push(
      row(
        "POST /protect (wait for confirmation)",
        confirming,
        await run(`${base}/api/v1/protect`, confirming, options.durationS, [
          {
            method: "POST",
            headers: { "content-type": "application/json" },
            setupRequest: (request) => ({ ...request, body: protectBody() }),
          },
        ]),
      ),
    );
    return { rows, ratios };
  } finally {
    api.kill("SIGTERM");
    bare.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    api.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    await database?.drop();
  }
}

export function formatRows(title: string, rows: Row[], ratios: string[]): string {
  // autocannon reports p90 and p97.5; p95 lies between them.
  const header =
    "| scenario | connections | req/s | p50 ms | p90 ms | p97.5 ms | p99 ms | errors | non-2xx |\n|---|---|---|---|---|---|---|---|---|";
  const lines = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.connections} | ${r.requestsPerSecond} | ${r.p50} | ${r.p90} | ${r.p97_5} | ${r.p99} | ${r.errors} | ${r.non2xx} |`,
  );
  return [`### ${title}`, "", header, ...lines, "", ...ratios.map((r) => `- ${r}`)].join("\n");
}
