/**
 * At least once, across crashes: a platform registers works while the API process (`daon
 * api`, against a ledger node in this process) is killed with SIGKILL during webhook
 * deliveries and restarted. Afterwards every
 * event of every acknowledged registration (content.protected and content.confirmed) has
 * reached the platform's receiver, signed, under its delivery id; repeats are allowed (the
 * receiver deduplicates on the id), losses are not.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { initHome, LedgerService } from "@daon/chain";
import { openDatabase } from "../src/db/database.js";
import { Platforms } from "../src/platforms/platforms.js";
import { createDatabase, STORAGE_PATHS } from "./test-system.js";
import { WebhookReceiver } from "./webhooks-receiver.js";

const DAON = resolve(import.meta.dirname, "../../../bin/daon.mjs");
const KILLS = 2;
const SECRET = "crash-test-webhook-secret-0123456789abcdef";
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

/** `daon api` in `dir`; every start uses the same port and settings. */
class ApiProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    readonly env: Record<string, string>,
  ) {}

  get apiUrl() {
    return `http://127.0.0.1:${this.env.PORT}`;
  }

  readonly startupMs: number[] = [];

  async start(): Promise<void> {
    const spawnedAt = Date.now();
    const log = openSync(join(this.dir, "daon-api.log"), "a");
    const child = spawn(process.execPath, [DAON, "api"], {
      cwd: this.dir,
      env: this.env,
      stdio: ["ignore", log, "pipe"],
    });
    closeSync(log);
    this.#child = child;
    this.#exited = new Promise((done) => child.once("exit", () => done()));
    let stderr = "";
    await new Promise<void>((ready, fail) => {
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
        if (stderr.includes("ready: API")) {
          this.startupMs.push(Date.now() - spawnedAt);
          ready();
        }
      });
      child.once("exit", (code, signal) => fail(new Error(`daon api exited (${code ?? signal}):\n${stderr}\n${this.logTail()}`)));
    });
  }

  async kill(): Promise<void> {
    this.#child?.kill("SIGKILL");
    await this.#exited;
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, "daon-api.log"), "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  }
}

for (const storage of STORAGE_PATHS) {
  describe(`webhook deliveries across SIGKILL (${storage})`, () => {
    let dir: string;
    let daon: ApiProcess;
    let ledger: LedgerService;
    let receiver: WebhookReceiver;
    let database: Awaited<ReturnType<typeof createDatabase>> | undefined;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `daon-webhook-crash-${storage}-`));
      receiver = await WebhookReceiver.start();
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
      for (const key of ["DATABASE_URL", "REDIS_URL", "DAON_STATE_DIR", "CHAIN_RPC", "CHAIN_ID", "API_MNEMONIC"]) delete env[key];
      Object.assign(env, {
        PORT: String(await freePort()),
        LOG_LEVEL: "warn",
        RATE_LIMIT_MAX: "1000000",
        // Secrets that survive restarts (development would pick random ones per run).
        API_KEY_SECRET: randomBytes(32).toString("hex"),
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        JWT_SECRET: randomBytes(32).toString("hex"),
        WEBHOOK_ALLOW_HTTP: "true",
        WEBHOOK_ALLOWED_CIDRS: "127.0.0.1/32",
        // Short attempts, so the claims a killed process held expire soon after the restart.
        WEBHOOK_TIMEOUT_MS: "1000",
      });
      if (storage === "postgres") {
        database = await createDatabase();
        env.DATABASE_URL = database.url;
      }
      // The ledger node runs on here; only the API is killed.
      const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
      const [{ address }] = await wallet.getAccounts();
      const chainId = `daon-test-${randomBytes(4).toString("hex")}`;
      await initHome({
        home: join(dir, "node"),
        chainId,
        accounts: [address],
        config: { consensus: { timeoutCommitMs: 300, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 5000 } } as never,
      });
      ledger = await LedgerService.start(join(dir, "node"), { rpcListen: "tcp://127.0.0.1:0" });
      Object.assign(env, { CHAIN_ID: chainId, CHAIN_RPC: ledger.rpcUrl, API_MNEMONIC: wallet.mnemonic, DAON_STATE_DIR: dir });
      daon = new ApiProcess(dir, env);
    });

    after(async () => {
      await daon?.kill();
      await ledger?.stop().catch(() => {});
      await receiver?.stop();
      await database?.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    });

    test(`every queued event is delivered at least once across ${KILLS} SIGKILLs`, { timeout: 180_000 }, async (t) => {
      // The platform is made in the API's database first, as an administrator would make it.
      const opened = await openDatabase({ databaseUrl: database?.url, stateDir: dir, poolMax: 2 });
      const platforms = new Platforms(opened.db, () => ({ current: daon.env.API_KEY_SECRET, previous: undefined }));
      const admin = { actorId: "crash-test", ip: null, requestId: null };
      const { platform, issued } = await platforms.store.create(
        {
          domain: "crash.example",
          name: "Crash",
          contactEmail: "ops@crash.example",
          tier: "enterprise",
          publicKey: null,
          requireSignature: false,
        },
        admin,
      );
      await platforms.store.approve(platform.id, admin);
      await opened.close();

      await daon.start();
      const headers = { authorization: `Bearer ${issued.key}`, "content-type": "application/json" };
      // The receiver takes a moment per request, so kills land while attempts are in flight.
      const created = await fetch(`${daon.apiUrl}/api/v1/broker/webhooks`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          url: receiver.endpoint("/crash", SECRET, { status: 200, afterMs: 40 }),
          secret: SECRET,
          events: ["content.protected", "content.confirmed"],
          maxRetries: 20,
          retryDelaySeconds: 10,
        }),
      });
      assert.equal(created.status, 201, await created.text());

      const acknowledged = new Set<string>();
      let stopped = false;
      let sent = 0;
      const load = Array.from({ length: 4 }, async (_, worker) => {
        while (!stopped) {
          const content = `webhook crash ${storage} ${worker} ${++sent} ${randomBytes(6).toString("hex")}`;
          try {
            const response = await fetch(`${daon.apiUrl}/api/v1/broker/protect?wait=false`, {
              method: "POST",
              headers,
              body: JSON.stringify({ content, username: `user${worker}` }),
              signal: AbortSignal.timeout(10_000),
            });
            const body = (await response.json()) as { contentHash?: string };
            if (response.status === 201 || response.status === 202) acknowledged.add(body.contentHash!);
          } catch {
            await sleep(100); // down or killed mid-request: not acknowledged
          }
        }
      });

      for (let kill = 1; kill <= KILLS; kill++) {
        await sleep(400 + Math.floor(Math.random() * 1200));
        await daon.kill();
        await daon.start();
      }
      await sleep(500);
      stopped = true;
      await Promise.all(load);
      t.diagnostic(`startup (ms): ${daon.startupMs.join(", ")}`);
      t.diagnostic(`${acknowledged.size} registrations acknowledged; ${receiver.at("/crash").length} requests received so far`);
      assert.ok(acknowledged.size >= 5, `only ${acknowledged.size} registrations were acknowledged`);

      const events = () => {
        const seen = new Map<string, Set<string>>();
        for (const r of receiver.at("/crash")) {
          const hash = String(r.json.data.content_hash);
          if (!seen.has(hash)) seen.set(hash, new Set());
          seen.get(hash)!.add(r.json.event);
        }
        return seen;
      };
      const missing = () => [...acknowledged].filter((hash) => events().get(hash)?.size !== 2);
      await receiver
        .until(() => missing().length === 0, 60_000, "every event of every acknowledged registration")
        .catch((error) => {
          throw new Error(`${(error as Error).message}; ${missing().length} works lack an event:\n${daon.logTail()}`);
        });
      assert.deepEqual(receiver.refused, [], "every delivery was signed and fresh");
      const requests = receiver.at("/crash");
      const ids = new Set(requests.map((r) => r.deliveryId));
      // One delivery id per (work, event): a repeat after a crash carries the same id.
      const idsPerEvent = new Map<string, Set<string>>();
      for (const r of requests) {
        const key = `${r.json.data.content_hash} ${r.json.event}`;
        if (!idsPerEvent.has(key)) idsPerEvent.set(key, new Set());
        idsPerEvent.get(key)!.add(r.deliveryId);
      }
      assert.ok(
        [...idsPerEvent.values()].every((set) => set.size === 1),
        "an event was delivered under two ids",
      );
      t.diagnostic(`${ids.size} distinct deliveries, ${requests.length - ids.size} repeated after a crash`);
    });
  });
}
