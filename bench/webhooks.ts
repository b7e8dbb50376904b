/**
 * Webhook bench (issue: accounts, platforms and webhooks): how many deliveries per second the
 * delivery worker makes to a local receiver — claim from the outbox, open the secret, sign,
 * POST, record — against plain undici POSTs of the same bodies to the same receiver at the
 * same concurrency in the same run. The receiver is a bare node:http server in a child process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { pino } from "pino";
import { Agent, request } from "undici";
import { openDatabase } from "../packages/api/src/db/database.js";
import { opaqueId } from "../packages/api/src/registrations/registration.js";
import { Sealer, sealingKey } from "../packages/api/src/secrets/sealing.js";
import { WebhookSender } from "../packages/api/src/webhooks/attempt.js";
import { DestinationPolicy } from "../packages/api/src/webhooks/destinations.js";
import { eventBody } from "../packages/api/src/webhooks/events.js";
import { WebhookStore } from "../packages/api/src/webhooks/webhook-store.js";
import { WebhookWorker } from "../packages/api/src/webhooks/worker.js";
import { ownChild } from "./lib/cleanup.js";
import type { BenchSection } from "./lib/report.js";

export interface WebhookBenchOptions {
  /** Deliveries per measured run. */
  deliveries: number;
  /** Attempts in flight: the worker's concurrency and the baseline's. */
  concurrency: number;
  /** PostgreSQL server for the second run (a throwaway database is made on it); undefined skips it. */
  databaseUrl?: string;
  log: (line: string) => void;
}

/** The receiver: answers 204 to every POST once the body is read; prints its port. */
const RECEIVER = `
const http = require("node:http");
const server = http.createServer((req, res) => { req.resume(); req.on("end", () => res.writeHead(204).end()); });
server.keepAliveTimeout = 10000;
server.listen(0, "127.0.0.1", () => console.log("ready " + server.address().port));
`;

async function startReceiver(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["-e", RECEIVER], { stdio: ["ignore", "pipe", "inherit"] });
  ownChild(child);
  const port = await new Promise<number>((ready, fail) => {
    let seen = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /ready (\d+)/.exec(seen);
      if (match) ready(Number(match[1]));
    });
    child.once("exit", (code) => fail(new Error(`receiver exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/hook`, child };
}

const sampleBody = (platformId: string) =>
  eventBody(opaqueId("evt"), "content.protected", platformId, new Date(), {
    content_hash: "ab".repeat(32),
    protection_id: opaqueId("p"),
    owner: opaqueId("o"),
    license: "cc-by-4.0",
    ai_training_policy: "prohibited",
    metadata: { type: "text", description: null, author: null },
    status: "pending",
    timestamp: new Date().toISOString(),
  });

/** Plain undici POSTs of event-sized bodies, `concurrency` at a time: the ceiling of the receiver and the client. */
async function plainPosts(url: string, count: number, concurrency: number): Promise<number> {
  const agent = new Agent({ connections: concurrency });
  const body = sampleBody("pl_bench");
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const response = await request(url, {
          method: "POST",
          dispatcher: agent,
          headers: { "content-type": "application/json" },
          body,
        });
        await response.body.dump();
        if (response.statusCode !== 204) throw new Error(`receiver answered ${response.statusCode}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  return count / seconds;
}

/** The worker delivering `count` queued deliveries from a fresh database; deliveries per second until the last is recorded. */
async function workerDeliveries(url: string, count: number, concurrency: number, databaseUrl: string | undefined): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "daon-bench-webhooks-"));
  const database = await openDatabase({ databaseUrl, stateDir: dir, poolMax: 10, inMemory: true });
  const sealer = new Sealer(sealingKey("bench-webhook-sealing-key-0123456789abcdef"));
  const policy = new DestinationPolicy("127.0.0.1/32", true);
  const sender = new WebhookSender(policy, 10_000);
  try {
    const webhook = await new WebhookStore(database.db).create({
      platformId: "pl_bench",
      url,
      events: ["content.protected"],
      secretSealed: sealer.seal("bench-webhook-secret-0123456789abcdef"),
      description: null,
      customHeaders: {},
      maxRetries: 5,
      retryDelaySeconds: 10,
    });
    const now = new Date();
    for (let offset = 0; offset < count; offset += 500) {
      const rows = Array.from({ length: Math.min(500, count - offset) }, () => ({
        id: opaqueId("whd"),
        webhook_id: webhook.id,
        platform_id: "pl_bench",
        event: "content.protected",
        payload: sampleBody("pl_bench"),
        status: "pending" as const,
        attempts: 0,
        failures: 0,
        next_attempt_at: now,
        created_at: now,
      }));
      await database.db.insertInto("webhook_deliveries").values(rows).execute();
    }
    // Counted as the worker records them, so the measurement adds no queries of its own.
    let delivered = 0;
    let allDelivered: () => void = () => {};
    const done = new Promise<void>((resolve) => (allDelivered = resolve));
    const worker = new WebhookWorker({
      db: database.db,
      sender,
      sealer: () => sealer,
      log: pino({ level: "silent" }),
      timeoutMs: 10_000,
      concurrency,
      pollMs: 20,
      metrics: {
        webhookDeliveries: {
          inc: ({ result }) => {
            if (result === "success" && ++delivered === count) allDelivered();
          },
        },
        webhookBacklog: { set: () => {} },
      },
    });
    const started = performance.now();
    worker.start();
    await done;
    const seconds = (performance.now() - started) / 1000;
    await worker.stop();
    return count / seconds;
  } finally {
    await sender.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function freshDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const name = `daon_bench_webhooks_${Date.now().toString(36)}`;
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
    await client.connect();
    await client.query(sql);
    await client.end();
  };
  try {
    await run(`create database ${name}`);
  } catch {
    return undefined;
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
}

export async function runWebhookBench(options: WebhookBenchOptions): Promise<BenchSection> {
  const receiver = await startReceiver();
  const bench: BenchSection = { title: "Webhook delivery", rows: [], notes: [], details: [] };
  try {
    options.log(`webhooks bench: ${options.deliveries} plain POSTs (baseline)`);
    // A short warm-up, so neither run pays for the receiver's first connections.
    await plainPosts(receiver.url, Math.min(500, options.deliveries), options.concurrency);
    const baseline = await plainPosts(receiver.url, options.deliveries, options.concurrency);
    bench.rows.push({ figure: `plain undici POSTs (baseline), ${options.concurrency} in flight`, value: baseline, unit: "/s" });

    const runs: { name: string; databaseUrl: string | undefined }[] = [{ name: "PGlite", databaseUrl: undefined }];
    const postgres = options.databaseUrl ? await freshDatabase(options.databaseUrl) : undefined;
    if (postgres) runs.push({ name: "PostgreSQL", databaseUrl: postgres.url });
    else if (options.databaseUrl) bench.notes.push("PostgreSQL not reachable: its run was skipped");
    try {
      for (const run of runs) {
        options.log(`webhooks bench: ${options.deliveries} deliveries through the worker (${run.name})`);
        const rate = await workerDeliveries(receiver.url, options.deliveries, options.concurrency, run.databaseUrl);
        bench.rows.push(
          { figure: `webhook deliveries (${run.name}), ${options.concurrency} in flight`, value: rate, unit: "/s" },
          { figure: `deliveries vs plain POSTs (${run.name})`, value: (100 * rate) / baseline, unit: "%", digits: 0 },
        );
      }
    } finally {
      await postgres?.drop().catch(() => {});
    }
    bench.notes.push(
      `${options.deliveries} deliveries per run, queued before the worker starts; a delivery counts once its success is recorded`,
      "each delivery: claim (FOR UPDATE SKIP LOCKED lease), SSRF check of the address, HMAC signature, POST, attempt log and status in one transaction",
      "receiver: bare node:http in a child process answering 204; the worker, the baseline client and the receiver share the same cores",
    );
  } finally {
    receiver.child.kill("SIGKILL");
  }
  return bench;
}
