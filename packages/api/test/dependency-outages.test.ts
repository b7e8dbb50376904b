/**
 * A dependency outage is never a crash and never needs a restart (api.md §7 Robustness):
 * PostgreSQL stopped → 503 + Retry-After and /health says why, healing when it returns;
 * Redis stopped → rate limits count in memory, no 5xx; ledger node stopped → registrations
 * are accepted as pending without waiting, and confirmed once the node is back.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chownSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { LedgerService } from "@daon/chain";
import { sql } from "kysely";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
/** Bound for any single request: an answer that takes longer counts as a hang. */
const ANSWER_WITHIN_MS = 15_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

function accepting(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.end();
      done(true);
    });
    socket.on("error", () => done(false));
  });
}

/** Polls `probe` until it returns a value, or fails after `ms` naming `what`. */
async function eventually<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms${last ? `: ${last}` : ""}`);
    await sleep(200);
  }
}

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field
  body: any;
}

async function call(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { ...(init.body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** A Redis server of this test's own on a fixed port, so it can be killed and brought back. */
class PrivateRedis {
  process: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();

  constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { stdio: "ignore" },
    );
    this.process = child;
    this.exited = new Promise((done) => child.once("exit", () => done()));
    await eventually("redis-server accepting connections", 10_000, async () => ((await accepting(this.port)) ? true : undefined));
  }

  async kill(): Promise<void> {
    this.process?.kill("SIGKILL");
    await this.exited;
  }

  async keys(pattern: string): Promise<string[]> {
    const { stdout } = await run("redis-cli", ["-p", String(this.port), "--raw", "keys", pattern]);
    return stdout.split("\n").filter(Boolean);
  }
}

/** A PostgreSQL cluster of this test's own (initdb in a temp dir), so it can be stopped and started. */
class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly bin: string,
    readonly port: number,
    readonly asOwner: string[],
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const version = readdirSync("/usr/lib/postgresql")
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a))[0];
    const bin = `/usr/lib/postgresql/${version}/bin`;
    const dir = await mkdtemp(join(tmpdir(), "daon-pg-"));
    // initdb refuses to run as root: the cluster belongs to the postgres user then.
    let asOwner: string[] = [];
    if (process.getuid?.() === 0) {
      const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
      const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
      chownSync(dir, uid, gid);
      asOwner = ["runuser", "-u", "postgres", "--"];
    }
    const server = new PrivatePostgres(dir, bin, await freePort(), asOwner);
    await server.pg("initdb", ["-D", server.dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    await server.start();
    return server;
  }

  get dataDir() {
    return join(this.dir, "data");
  }

  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async pg(tool: string, args: string[]): Promise<void> {
    const [command, ...rest] = [...this.asOwner, join(this.bin, tool), ...args];
    await run(command, rest, { cwd: this.dir, timeout: 60_000 });
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`;
    await this.pg("pg_ctl", ["-D", this.dataDir, "-l", join(this.dir, "server.log"), "-o", options, "-w", "-t", "60", "start"]);
  }

  /** As a crash would: no checkpoint, connections cut. */
  async stopImmediately(): Promise<void> {
    await this.pg("pg_ctl", ["-D", this.dataDir, "-m", "immediate", "-w", "stop"]);
  }

  async destroy(): Promise<void> {
    await this.stopImmediately().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

const unique = (label: string) => `${label} ${Date.now()} ${Math.random().toString(36).slice(2)}`;

async function confirmedEventually(system: TestSystem, hashes: string[], ms = 30_000): Promise<void> {
  for (const hash of hashes) {
    await eventually(`${hash} confirmed`, ms, async () => {
      const answer = await call(`${system.apiUrl}/api/v1/verify/${hash}`);
      return answer.status === 200 && answer.body.status === "confirmed" ? true : undefined;
    });
  }
}

function assertServiceUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.success, false);
  assert.equal(answer.body.error.code, "SERVICE_UNAVAILABLE", what);
  assert.equal(answer.body.error.details?.dependency, "database", what);
  assert.equal(typeof answer.body.error.requestId, "string");
  assert.match(answer.headers.get("retry-after") ?? "", /^\d+$/, `${what}: Retry-After`);
  assert.doesNotMatch(JSON.stringify(answer.body), /127\.0\.0\.1|ECONNREFUSED|postgres:|select |stack/i, `${what} leaks internals`);
}

describe("PostgreSQL outage (postgres)", () => {
  let postgres: PrivatePostgres | undefined;
  let redis: PrivateRedis | undefined;
  let system: TestSystem | undefined;
  // In `daon api` an uncaught exception ends the process: the outage must not cause one.
  const uncaught: string[] = [];
  const recordUncaught = (error: Error) => uncaught.push(String(error));

  before(async () => {
    process.on("uncaughtException", recordUncaught);
    postgres = await PrivatePostgres.start();
    redis = await PrivateRedis.start();
    system = await startTestSystem("postgres", { DATABASE_URL: postgres.url, REDIS_URL: redis.url, PROTECT_RATE_LIMIT_MAX: "1000" });
  });
  after(async () => {
    process.off("uncaughtException", recordUncaught);
    await system?.stop();
    await postgres?.destroy();
    await redis?.kill();
  });

  test("answers 503 database with Retry-After while PostgreSQL is down, /health says why, and heals without a restart", async () => {
    const api = system!.apiUrl;
    const first = await call(`${api}/api/v1/protect`, { body: { content: unique("before the outage") } });
    assert.equal(first.status, 201, JSON.stringify(first.body));

    // Accepted just before PostgreSQL goes away: they are in the outbox, not necessarily on the ledger yet.
    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await call(`${api}/api/v1/protect?wait=false`, { body: { content: unique(`accepted ${i}`) } });
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      accepted.push(answer.body.contentHash);
    }
    // A connection in use when PostgreSQL goes away (as a worker's transaction may hold one).
    let release = () => {};
    const held = new Promise<void>((done) => (release = done));
    const inUse = system!.api.database.db.connection().execute(async (connection) => {
      await sql`select 1`.execute(connection);
      await held;
    });
    await postgres!.stopImmediately();

    for (let i = 0; i < 3; i++) {
      assertServiceUnavailable(await call(`${api}/api/v1/protect`, { body: { content: unique("during the outage") } }), "protect");
      assertServiceUnavailable(await call(`${api}/api/v1/protect?wait=false`, { body: { content: unique("during, no wait") } }), "protect");
      assertServiceUnavailable(await call(`${api}/api/v1/verify/${first.body.contentHash}`), "verify");
      assertServiceUnavailable(await call(`${api}/api/v1/verify-content`, { body: { content: "anything" } }), "verify-content");
    }
    const health = await call(`${api}/health`);
    release();
    await inUse;
    assert.equal(health.status, 503);
    assert.equal(health.body.status, "unhealthy");
    assert.equal(health.body.checks.database.status, "down");
    assert.equal(health.body.checks.database.engine, "postgresql");
    assert.equal(health.body.checks.ledger.status, "up");
    assert.match(health.headers.get("retry-after") ?? "", /^\d+$/);

    await postgres!.start();
    const during = unique("after the outage");
    const recovered = await eventually("protect succeeding again", 30_000, async () => {
      const answer = await call(`${api}/api/v1/protect`, { body: { content: during } });
      return answer.status === 503 ? undefined : answer;
    });
    assert.ok([200, 201, 202].includes(recovered.status), JSON.stringify(recovered.body));
    const verify = await call(`${api}/api/v1/verify/${first.body.contentHash}`);
    assert.equal(verify.status, 200);
    assert.equal(verify.body.protectionId, first.body.protectionId);

    await confirmedEventually(system!, [...accepted, recovered.body.contentHash]);
    const healed = await eventually("/health healthy", 30_000, async () => {
      const answer = await call(`${api}/health`);
      return answer.body.status === "healthy" ? answer : undefined;
    });
    assert.equal(healed.status, 200);
    assert.equal(healed.body.checks.database.status, "up");
    assert.equal(healed.body.checks.outbox.pending, 0);
    assert.deepEqual(uncaught, [], "the outage caused uncaught exceptions");
  });
});

describe("Redis outage (postgres)", () => {
  let redis: PrivateRedis | undefined;
  let system: TestSystem | undefined;
  const LIMIT = 3;

  before(async () => {
    redis = await PrivateRedis.start();
    system = await startTestSystem("postgres", { REDIS_URL: redis.url, PROTECT_RATE_LIMIT_MAX: String(LIMIT) });
  });
  after(async () => {
    await system?.stop();
    await redis?.kill();
  });

  /** A client behind the trusted proxy (loopback), so each test client has its own limit. */
  const asClient = (ip: string) => ({ "x-forwarded-for": ip });
  const protect = (ip: string, label: string) =>
    call(`${system!.apiUrl}/api/v1/protect?wait=false`, { body: { content: unique(label) }, headers: asClient(ip) });

  test("rate limits fall back to memory while Redis is down, with no 5xx, and return to Redis when it is back", async () => {
    const api = system!.apiUrl;
    // Redis up: the limit is counted in Redis.
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++) statuses.push((await protect("198.51.100.1", "redis up")).status);
    assert.deepEqual(statuses, [...Array(LIMIT).fill(202), 429]);
    assert.ok((await redis!.keys("*198.51.100.1*")).length > 0, "the limit is not counted in Redis");
    const known = (await protect("198.51.100.9", "known work")).body.contentHash as string;

    await redis!.kill();
    // Right away, before the API has noticed: answers only, never 5xx.
    const rightAway = [
      (await protect("198.51.100.2", "redis just killed")).status,
      (await call(`${api}/api/v1/verify/${known}`, { headers: asClient("198.51.100.2") })).status,
      (await call(`${api}/api/v1/verify-content`, { body: { content: "nothing" }, headers: asClient("198.51.100.2") })).status,
    ];
    assert.deepEqual(rightAway, [202, 200, 404]);

    const health = await eventually("/health to show Redis down", 10_000, async () => {
      const answer = await call(`${api}/health`);
      return answer.body.checks.redis.status === "down" ? answer : undefined;
    });
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "degraded");
    assert.equal(health.body.checks.database.status, "up");

    // The limit still applies, counted in this process's memory.
    const fromMemory: number[] = [];
    for (let i = 0; i <= LIMIT; i++) fromMemory.push((await protect("198.51.100.3", "redis down")).status);
    assert.deepEqual(fromMemory, [...Array(LIMIT).fill(202), 429]);
    const limited = await protect("198.51.100.3", "redis down, limited");
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "RATE_LIMITED");
    assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);
    for (let i = 0; i < 10; i++) {
      const verify = await call(`${api}/api/v1/verify/${known}`, { headers: asClient("198.51.100.4") });
      assert.equal(verify.status, 200);
      assert.equal(verify.body.contentHash, known);
    }

    await redis!.start();
    const back = await eventually("/health to show Redis up again", 20_000, async () => {
      const answer = await call(`${api}/health`);
      return answer.body.checks.redis.status === "up" ? answer : undefined;
    });
    assert.equal(back.status, 200);
    assert.equal(back.body.status, "healthy");
    assert.equal((await protect("198.51.100.5", "redis back")).status, 202);
    assert.ok((await redis!.keys("*198.51.100.5*")).length > 0, "the limit is not counted in Redis again");
  });
});

for (const storage of STORAGE_PATHS) {
  describe(`ledger node outage (${storage})`, () => {
    let redis: PrivateRedis | undefined;
    let system: TestSystem | undefined;
    let restarted: LedgerService | undefined;

    before(async () => {
      redis = storage === "postgres" ? await PrivateRedis.start() : undefined;
      // A long PROTECT_WAIT_MS: a protect that waited for the absent node would miss ANSWER_WITHIN_MS.
      system = await startTestSystem(storage, {
        PROTECT_WAIT_MS: String(4 * ANSWER_WITHIN_MS),
        PROTECT_RATE_LIMIT_MAX: "1000",
        ...(redis ? { REDIS_URL: redis.url } : {}),
      });
    });
    after(async () => {
      await restarted?.stop().catch(() => {});
      await system?.stop();
      await redis?.kill();
    });

    test("registrations are accepted as pending without waiting while the node is down, and confirmed after it returns", async () => {
      const api = system!.apiUrl;
      const first = await call(`${api}/api/v1/protect`, { body: { content: unique("ledger up") } });
      assert.equal(first.status, 201, JSON.stringify(first.body));

      await system!.ledger.stop();
      // At once, before anything has noticed: the wait ends when the indexer finds the node gone.
      const pending: string[] = [];
      const atOnce = await call(`${api}/api/v1/protect`, { body: { content: unique("ledger just stopped") } });
      assert.equal(atOnce.status, 202, JSON.stringify(atOnce.body));
      pending.push(atOnce.body.contentHash);

      const health = await eventually("/health to show the ledger down", 10_000, async () => {
        const answer = await call(`${api}/health`);
        return answer.body.checks.ledger.status === "down" ? answer : undefined;
      });
      assert.equal(health.status, 200);
      assert.equal(health.body.status, "degraded");
      assert.equal(health.body.checks.database.status, "up");

      for (const wait of ["", "?wait=true", "?wait=30", "?wait=false"]) {
        const answer = await call(`${api}/api/v1/protect${wait}`, { body: { content: unique(`ledger down ${wait}`) } });
        assert.equal(answer.status, 202, JSON.stringify(answer.body));
        assert.equal(answer.body.status, "pending");
        assert.equal(answer.body.blockHeight, null);
        assert.equal(answer.body.txHash, null);
        pending.push(answer.body.contentHash);
      }
      const verify = await call(`${api}/api/v1/verify/${pending[0]}`);
      assert.equal(verify.status, 200);
      assert.equal(verify.body.isValid, true);
      assert.equal(verify.body.status, "pending");
      const known = await call(`${api}/api/v1/verify/${first.body.contentHash}`);
      assert.equal(known.body.status, "confirmed");
      assert.equal((await call(`${api}/api/v1/stats`)).status, 200);

      // The same node (home and port) comes back; what was accepted meanwhile is submitted and confirmed.
      const port = Number(new URL(system!.rpcUrl).port);
      restarted = await LedgerService.start(join(system!.dir, "node"), { rpcListen: `tcp://127.0.0.1:${port}` });
      await confirmedEventually(system!, pending);
      const healed = await eventually("/health healthy", 30_000, async () => {
        const answer = await call(`${api}/health`);
        return answer.body.status === "healthy" ? answer : undefined;
      });
      assert.equal(healed.body.checks.ledger.status, "up");
      assert.ok(healed.body.checks.ledger.height > first.body.blockHeight);
      const after = await call(`${api}/api/v1/protect`, { body: { content: unique("ledger back") } });
      assert.equal(after.status, 201, JSON.stringify(after.body));
    });
  });
}
