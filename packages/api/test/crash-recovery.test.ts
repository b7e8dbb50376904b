/**
 * Nothing acknowledged is lost (DESIGN.md decision 4): a client drives protect requests at
 * full speed while the all-in-one process (`daon up`: ledger node + API) is killed with
 * SIGKILL at random moments and restarted on the same ports. After the last restart every
 * registration that got a 200/201/202 is verifiable, is confirmed on the ledger within a few
 * blocks with the record that was acknowledged, and no hash is on the ledger twice.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { createDatabase, STORAGE_PATHS } from "./test-system.js";

const DAON = resolve(import.meta.dirname, "../../../bin/daon.mjs");
const KILLS = 10;
const CONCURRENCY = 16;
const WAITING_CONNECTIONS = 4;
const CONFIRM_WITHIN_MS = 20_000;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** A seeded PRNG (mulberry32), so a failing run's kill moments can be replayed with CRASH_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Redis server of this test's own, so its rate-limit counters touch no other test's. */
async function startRedis(): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((done) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        done(true);
      });
      socket.on("error", () => done(false));
    });
    if (up) return { url: `redis://127.0.0.1:${port}`, process: child };
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not start");
}

/** `daon up` in `dir` as a child process; every start uses the same API and RPC ports. */
class AllInOne {
  child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(
    readonly dir: string,
    readonly apiPort: number,
    readonly rpcPort: number,
    readonly env: Record<string, string>,
  ) {}

  get apiUrl() {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  get rpcUrl() {
    return `http://127.0.0.1:${this.rpcPort}`;
  }

  /** Milliseconds from spawn to ready, per start that got there. */
  readonly startupMs: number[] = [];

  /** Starts the process; `ready` resolves when it logs that the API listens. */
  spawn(): { ready: Promise<void> } {
    this.starts++;
    const spawnedAt = Date.now();
    const log = openSync(join(this.dir, "daon-up.log"), "a");
    const child = spawn(process.execPath, [DAON, "up", "--rpc-laddr", `tcp://127.0.0.1:${this.rpcPort}`], {
      cwd: this.dir,
      env: this.env,
      stdio: ["ignore", log, "pipe"],
    });
    closeSync(log);
    this.child = child;
    let stderr = "";
    let isReady = false;
    this.exited = new Promise((done) => child.once("exit", () => done()));
    const ready = new Promise<void>((done, fail) => {
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
        if (!isReady && stderr.includes("ready: API")) {
          isReady = true;
          this.startupMs.push(Date.now() - spawnedAt);
          done();
        }
      });
      child.once("exit", (code, signal) => fail(new Error(`daon up exited (${code ?? signal}) before it was ready:\n${stderr}`)));
    });
    ready.catch(() => {}); // a kill before readiness is intended; callers that wait on it see the error
    return { ready };
  }

  async kill(): Promise<void> {
    this.child?.kill("SIGKILL");
    await this.exited;
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, "daon-up.log"), "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "";
    }
  }
}

interface Acknowledged {
  protectionId: string;
  status: number;
}

/** A client sending protect requests as fast as `CONCURRENCY` connections allow, across crashes. */
class ProtectLoad {
  readonly acknowledged = new Map<string, Acknowledged>();
  /** Contents whose request got no answer (killed mid-flight): a client would send them again. */
  readonly unanswered: string[] = [];
  readonly statuses = new Map<string, number>();
  readonly violations: string[] = [];
  sent = 0;
  #stopped = false;
  #workers: Promise<void>[] = [];
  #counter = 0;
  readonly #contents = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    readonly runId: string,
    readonly rand: () => number,
  ) {}

  start(): void {
    for (let i = 0; i < CONCURRENCY; i++) this.#workers.push(this.#work(i));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#workers);
  }

  #count(key: string) {
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
  }

  #nextContent(): string {
    const roll = this.rand();
    // A client retries what got no answer, and now and then repeats what it already registered.
    if (roll < 0.1 && this.unanswered.length > 0) return this.unanswered.shift()!;
    if (roll < 0.13 && this.acknowledged.size > 0) return this.#repeatOf(Math.floor(this.rand() * this.acknowledged.size));
    return `crash-recovery ${this.runId} work ${++this.#counter} ${randomBytes(8).toString("hex")}`;
  }

  #repeatOf(index: number): string {
    let i = 0;
    for (const hash of this.acknowledged.keys()) if (i++ === index) return this.#contents.get(hash)!;
    throw new Error("unreachable");
  }

  async #work(worker: number): Promise<void> {
    let refused: string | undefined;
    while (!this.#stopped) {
      const content = refused ?? this.#nextContent();
      refused = undefined;
      const hash = sha256(content);
      this.#contents.set(hash, content);
      // Most connections take the answer at once; a few wait for the block, as the default does.
      const wait = worker < WAITING_CONNECTIONS ? "" : "?wait=false";
      this.sent++;
      let response: Response;
      let body: Record<string, unknown>;
      try {
        response = await fetch(`${this.baseUrl}/api/v1/protect${wait}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": `crash-${worker}-${this.sent}` },
          body: JSON.stringify({ content, metadata: { type: "test", title: `crash ${this.#counter}` } }),
          signal: AbortSignal.timeout(30_000),
        });
        body = (await response.json()) as Record<string, unknown>;
      } catch (error) {
        if ((error as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED") {
          // Down: nothing was sent; the client tries the same work again shortly.
          this.#count("refused");
          refused = content;
          await sleep(200);
          continue;
        }
        // Reset (killed mid-request) or a cut-off body: the client cannot know what happened.
        this.#count("no answer");
        if (!this.acknowledged.has(hash)) this.unanswered.push(content);
        continue;
      }
      this.#count(String(response.status));
      if (![200, 201, 202].includes(response.status)) {
        this.violations.push(`${response.status} for ${hash}: ${JSON.stringify(body).slice(0, 300)}`);
        if (!this.acknowledged.has(hash)) this.unanswered.push(content);
        continue;
      }
      this.#checkAnswer(hash, response.status, body);
    }
  }

  #checkAnswer(hash: string, status: number, body: Record<string, unknown>): void {
    const wrong = (what: string) => {
      this.violations.push(`${status} for ${hash}: ${what}: ${JSON.stringify(body).slice(0, 300)}`);
    };
    if (body.contentHash !== hash) {
      wrong("another contentHash");
      return;
    }
    const expectedStatus = status === 201 ? "confirmed" : status === 202 ? "pending" : undefined;
    if (expectedStatus && body.status !== expectedStatus) wrong(`status is not ${expectedStatus}`);
    if (status === 201 && !(typeof body.blockHeight === "number" && /^[0-9A-F]{64}$/.test(String(body.txHash)))) wrong("no block");
    if ((status === 200) !== (body.existing === true)) wrong("existing does not match the status code");
    const earlier = this.acknowledged.get(hash);
    if (earlier) {
      // Idempotent: a repeat answers with the first registration, never a new one.
      if (status !== 200) wrong(`a repeat of an acknowledged hash answered ${status}`);
      if (body.protectionId !== earlier.protectionId) wrong(`protectionId changed from ${earlier.protectionId}`);
      return;
    }
    this.acknowledged.set(hash, { protectionId: String(body.protectionId), status });
  }
}

async function rpc<T>(rpcUrl: string, method: string, params: Record<string, unknown>): Promise<T> {
  const response = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { result?: T; error?: unknown };
  if (!body.result) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

interface TxSearchResult {
  total_count: string;
  txs: {
    hash: string;
    height: string;
    tx_result: { code: number; events: { type: string; attributes: { key: string; value: string }[] }[] };
  }[];
}

/** Every content hash registered on the ledger, with duplicates kept (there must be none). */
async function ledgerRegistrations(rpcUrl: string): Promise<string[]> {
  const hashes: string[] = [];
  for (let page = 1; ; page++) {
    const result = await rpc<TxSearchResult>(rpcUrl, "tx_search", {
      query: "tx.height>0",
      page: String(page),
      per_page: "100",
      order_by: "asc",
    });
    for (const tx of result.txs) {
      if (tx.tx_result.code !== 0) continue;
      for (const event of tx.tx_result.events) {
        if (event.type !== "content_registered") continue;
        const hash = event.attributes.find((a) => a.key === "content_hash")?.value;
        if (hash) hashes.push(hash);
      }
    }
    if (page * 100 >= Number(result.total_count)) return hashes;
  }
}

for (const storage of STORAGE_PATHS) {
  describe(`crash recovery of daon up (${storage})`, () => {
    let dir: string;
    let daon: AllInOne | undefined;
    let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
    let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
    let load: ProtectLoad | undefined;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `daon-crash-${storage}-`));
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
      for (const key of ["DATABASE_URL", "REDIS_URL", "DAON_STATE_DIR", "CHAIN_RPC", "CHAIN_ID", "API_MNEMONIC"]) delete env[key];
      Object.assign(env, {
        PORT: String(await freePort()),
        LOG_LEVEL: "warn",
        RATE_LIMIT_MAX: "10000000",
        PROTECT_RATE_LIMIT_MAX: "10000000",
      });
      if (storage === "postgres") {
        database = await createDatabase();
        redis = await startRedis();
        Object.assign(env, { DATABASE_URL: database.url, REDIS_URL: redis.url });
      }
      daon = new AllInOne(dir, Number(env.PORT), await freePort(), env);
    });

    after(async () => {
      await load?.stop().catch(() => {});
      await daon?.kill();
      redis?.process.kill("SIGKILL");
      await database?.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    });

    test(`every acknowledged registration survives ${KILLS} SIGKILLs under load and is on the ledger exactly once`, {
      timeout: 300_000,
    }, async (t) => {
      const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const rand = random(seed);
      t.diagnostic(`seed ${seed} (replay with CRASH_SEED=${seed})`);
      const started = Date.now();
      const node = daon!;

      // The first start creates the deployment; it is not killed before it is ready.
      await node.spawn().ready;
      load = new ProtectLoad(node.apiUrl, randomBytes(4).toString("hex"), rand);
      load.start();

      const moments: string[] = [];
      for (let kill = 1; kill <= KILLS; kill++) {
        if (kill > 1) {
          const { ready } = node.spawn();
          // Now and then the crash comes while the process is still starting up.
          if (rand() < 0.2) {
            const delay = Math.floor(rand() * 3000);
            let isReady = false;
            ready.then(() => (isReady = true)).catch(() => {});
            await sleep(delay);
            moments.push(`${delay} ms after spawn${isReady ? "" : " (starting)"}`);
            await node.kill();
            continue;
          }
          await ready;
        }
        const delay = 100 + Math.floor(rand() * 2900);
        await sleep(delay);
        moments.push(`${delay} ms after ready`);
        await node.kill();
      }

      await node.spawn().ready;
      await sleep(1000); // some load on the survivor too
      await load.stop();
      const loadDoneAt = Date.now();
      t.diagnostic(`kills: ${moments.join(", ")}`);
      t.diagnostic(`startup to ready (ms): ${node.startupMs.join(", ")}`);
      t.diagnostic(
        `sent ${load.sent}, acknowledged ${load.acknowledged.size}, unanswered ${load.unanswered.length}; answers ${JSON.stringify(Object.fromEntries(load.statuses))}`,
      );
      assert.deepEqual(load.violations, [], `wrong answers (log tail:\n${node.logTail()})`);
      assert.ok(load.acknowledged.size >= 50, `only ${load.acknowledged.size} registrations were acknowledged`);
      const acked = [...load.acknowledged.keys()];

      // Every acknowledged registration is found, with the record that was acknowledged, and becomes confirmed.
      let unconfirmed = acked;
      const verified = new Map<string, { blockHeight: number; txHash: string }>();
      const deadline = Date.now() + CONFIRM_WITHIN_MS;
      while (unconfirmed.length > 0) {
        const still: string[] = [];
        await inParallel(unconfirmed, CONCURRENCY, async (hash) => {
          const response = await fetch(`${node.apiUrl}/api/v1/verify/${hash}`, { signal: AbortSignal.timeout(30_000) });
          const body = (await response.json()) as Record<string, unknown>;
          assert.equal(response.status, 200, `acknowledged ${hash} is not found: ${JSON.stringify(body)}`);
          assert.equal(body.isValid, true);
          assert.equal(body.protectionId, load!.acknowledged.get(hash)!.protectionId, `${hash} is another registration than acknowledged`);
          if (body.status === "confirmed") verified.set(hash, { blockHeight: Number(body.blockHeight), txHash: String(body.txHash) });
          else still.push(hash);
        });
        unconfirmed = still;
        if (unconfirmed.length > 0) {
          assert.ok(Date.now() < deadline, `${unconfirmed.length} acknowledged registrations still pending after ${CONFIRM_WITHIN_MS} ms`);
          await sleep(500);
        }
      }
      const verifiedAt = Date.now();
      t.diagnostic(`all ${acked.length} acknowledged registrations confirmed ${Date.now() - loadDoneAt} ms after the load stopped`);

      // On the ledger, each is registered exactly once, in the block and tx the API reports.
      await inParallel(acked, CONCURRENCY, async (hash) => {
        const result = await rpc<TxSearchResult>(node.rpcUrl, "tx_search", {
          query: `content_registered.content_hash='sha256:${hash}'`,
        });
        assert.equal(result.total_count, "1", `sha256:${hash} is registered ${result.total_count} times on the ledger`);
        assert.equal(result.txs[0].hash, verified.get(hash)!.txHash, `${hash}: the API's txHash is not the ledger's`);
        assert.equal(Number(result.txs[0].height), verified.get(hash)!.blockHeight, `${hash}: the API's blockHeight is not the ledger's`);
      });

      // The read model and the ledger agree: nothing pending, as many confirmed as the ledger holds, no hash twice.
      let stats: { totalProtected: number; confirmed: number; pending: number; outboxPending: number } | undefined;
      const settled = Date.now() + CONFIRM_WITHIN_MS;
      for (;;) {
        stats = ((await (await fetch(`${node.apiUrl}/api/v1/stats`)).json()) as { stats: typeof stats }).stats;
        if ((stats!.pending === 0 && stats!.outboxPending === 0) || Date.now() > settled) break;
        await sleep(1000);
      }
      assert.equal(stats!.pending, 0, "registrations left pending");
      assert.equal(stats!.outboxPending, 0, "outbox entries left undone");
      const onLedger = await ledgerRegistrations(node.rpcUrl);
      const distinct = new Set(onLedger);
      assert.equal(distinct.size, onLedger.length, "a content hash is registered twice on the ledger");
      assert.equal(onLedger.length, stats!.confirmed, "the ledger's registrations differ from the API's confirmed count");
      assert.equal(stats!.totalProtected, stats!.confirmed);
      for (const hash of acked) assert.ok(distinct.has(`sha256:${hash}`));
      t.diagnostic(
        `ledger: ${onLedger.length} registrations (${onLedger.length - acked.length} committed without an answer reaching the client); ${node.starts} starts; load ${Math.round((loadDoneAt - started) / 1000)} s, checks ${Math.round((Date.now() - verifiedAt) / 1000)} s`,
      );
    });
  });
}
