/**
 * The webhook outbox and its delivery worker against a real database (both storage paths)
 * and a real HTTP receiver that checks every signature: events queued in the registration's
 * transaction, signed deliveries, retries with backoff, dead letters, redelivery with the
 * same id, one attempt per claim across workers, suspended platforms waiting, SSRF refusals.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Kysely } from "kysely";
import { pino } from "pino";
import { type OpenDatabase, openDatabase } from "../src/db/database.js";
import type { Database } from "../src/db/schema.js";
import { createMetrics } from "../src/observability/metrics.js";
import { type NewRegistration, RegistrationStore } from "../src/registrations/registration-store.js";
import { Sealer, sealingKey } from "../src/secrets/sealing.js";
import { WebhookSender } from "../src/webhooks/attempt.js";
import { DestinationPolicy, DestinationRefused } from "../src/webhooks/destinations.js";
import { queueContentConfirmed, queueContentProtected } from "../src/webhooks/events.js";
import type { WebhookEvent } from "../src/webhooks/tables.js";
import { WebhookStore } from "../src/webhooks/webhook-store.js";
import { Webhooks } from "../src/webhooks/webhooks.js";
import { retryDelayMs, WebhookWorker } from "../src/webhooks/worker.js";
import { createDatabase, STORAGE_PATHS } from "./test-system.js";
import { WebhookReceiver } from "./webhooks-receiver.js";

const sealer = new Sealer(sealingKey("webhook-delivery-test-key-0123456789abcdef"));
const silent = pino({ level: "silent" });
const SECRET = "webhook-delivery-secret-0123456789abcdef";
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function addPlatform(db: Kysely<Database>, domain: string, status: "active" | "suspended" = "active"): Promise<string> {
  const id = `pl_${domain.replace(/\W/g, "")}`;
  const now = new Date();
  await db
    .insertInto("platforms")
    .values({
      id,
      domain,
      name: domain,
      contact_email: `ops@${domain}`,
      certification_tier: "standard",
      certification_status: status,
      require_signature: false,
      public_key: null,
      hourly_limit: null,
      daily_limit: null,
      created_at: now,
      updated_at: now,
      approved_at: now,
      suspended_at: null,
      suspend_reason: null,
    })
    .execute();
  return id;
}

let counter = 0;
function registration(platform: string, ownerId: string | null = null, metadata: Record<string, unknown> = {}): NewRegistration {
  counter++;
  return {
    contentHash: (counter.toString(16).padStart(8, "0") + Math.random().toString(16).slice(2, 10)).padEnd(64, "a"),
    license: "all-rights-reserved",
    aiTrainingPolicy: "prohibited",
    licensingEmail: null,
    licensingUri: null,
    metadata: { title: "Secret title", type: "text", description: null, author: null, ...metadata },
    fingerprint: "",
    platform,
    ownerId,
  };
}

for (const storage of STORAGE_PATHS) {
  describe(`webhook delivery (${storage})`, () => {
    let dir: string;
    let database: OpenDatabase;
    let dropDatabase: (() => Promise<void>) | undefined;
    let db: Kysely<Database>;
    let receiver: WebhookReceiver;
    let webhooks: WebhookStore;
    let registrations: RegistrationStore;
    const policy = new DestinationPolicy("127.0.0.1/32", true);
    const sender = new WebhookSender(policy, 500);
    const workers: WebhookWorker[] = [];

    const worker = (options: Partial<ConstructorParameters<typeof WebhookWorker>[0]> = {}) => {
      const created = new WebhookWorker({
        db,
        sender,
        sealer: () => sealer,
        log: silent,
        timeoutMs: 500,
        pollMs: 50,
        retryScale: 0.002,
        ...options,
      });
      workers.push(created);
      return created;
    };

    const addWebhook = (platformId: string, url: string, events: WebhookEvent[] = ["content.protected"], extra = {}) =>
      webhooks.create({
        platformId,
        url,
        events,
        secretSealed: sealer.seal(SECRET),
        description: null,
        customHeaders: {},
        maxRetries: 5,
        retryDelaySeconds: 10,
        ...extra,
      });

    const deliveriesOf = (webhookId: string) =>
      db.selectFrom("webhook_deliveries").selectAll().where("webhook_id", "=", webhookId).orderBy("created_at").execute();

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "daon-webhooks-"));
      let databaseUrl: string | undefined;
      if (storage === "postgres") {
        const created = await createDatabase();
        databaseUrl = created.url;
        dropDatabase = created.drop;
      }
      database = await openDatabase({ databaseUrl, stateDir: dir, poolMax: 10, inMemory: true });
      db = database.db;
      receiver = await WebhookReceiver.start();
      webhooks = new WebhookStore(db);
      registrations = new RegistrationStore(db, (trx, created, now) => queueContentProtected(trx, created, now));
    });

    after(async () => {
      for (const w of workers) await w.stop();
      await sender.close();
      await receiver.stop();
      await database.close();
      await dropDatabase?.();
      await rm(dir, { recursive: true, force: true });
    });

    test("a registration through a platform, or owned by its users, queues content.protected in its transaction; the worker delivers it signed", async () => {
      const platform = await addPlatform(db, "gallery.example");
      const other = await addPlatform(db, "other.example");
      await db
        .insertInto("platform_users")
        .values({ platform_id: platform, username: "alice", owner_id: "o_alice", created_at: new Date() })
        .execute();
      const url = receiver.endpoint("/gallery", SECRET);
      const hook = await addWebhook(platform, url, ["content.protected", "content.confirmed"], {
        customHeaders: { "X-Tenant": "gallery" },
      });
      const otherHook = await addWebhook(other, receiver.endpoint("/other", SECRET));

      const [viaPlatform, anonymous, ownedByUser] = await registrations.createMany([
        registration("gallery.example", null, { author: "someone@mail.example", genre: "poetry" }),
        registration("api"),
        registration("api", "o_alice"),
      ]);
      const queued = await deliveriesOf(hook.id);
      assert.deepEqual(queued.map((d) => [d.event, d.status]).sort(), [
        ["content.protected", "pending"],
        ["content.protected", "pending"],
      ]);
      assert.equal((await deliveriesOf(otherHook.id)).length, 0, "another platform's webhook gets nothing");

      const metrics = createMetrics();
      const w = worker({ metrics });
      w.start();
      await receiver.until(() => receiver.at("/gallery").length === 2);
      assert.deepEqual(receiver.refused, []);
      const got = receiver.at("/gallery");
      const hashes = got.map((r) => (r.json.data as { content_hash: string }).content_hash).sort();
      assert.deepEqual(hashes, [viaPlatform.row.content_hash, ownedByUser.row.content_hash].sort());
      assert.ok(!hashes.includes(anonymous.row.content_hash));
      const first = got.find((r) => r.json.data.content_hash === viaPlatform.row.content_hash)!;
      assert.equal(first.headers["content-type"], "application/json");
      assert.equal(first.headers["user-agent"], "DAON-Webhook/1.0");
      assert.equal(first.headers["x-daon-webhook-event"], "content.protected");
      assert.equal(first.headers["x-tenant"], "gallery");
      assert.match(first.deliveryId, /^whd_[a-z2-7]{26}$/);
      assert.deepEqual(Object.keys(first.json).sort(), ["broker_id", "data", "event", "id", "timestamp"]);
      assert.equal(first.json.event, "content.protected");
      assert.equal(first.json.broker_id, platform);
      assert.deepEqual(first.json.data, {
        content_hash: viaPlatform.row.content_hash,
        protection_id: viaPlatform.row.protection_id,
        owner: null,
        license: "all-rights-reserved",
        ai_training_policy: "prohibited",
        // No titles, no e-mail addresses (api.md §7).
        metadata: { type: "text", description: null, genre: "poetry" },
        status: "pending",
        timestamp: new Date(viaPlatform.row.created_at).toISOString(),
      });
      const owned = got.find((r) => r.json.data.content_hash === ownedByUser.row.content_hash)!;
      assert.equal(owned.json.data.owner, "o_alice");

      for (const r of got) await waitForStatus(db, r.deliveryId, "success");
      await w.stop();
      const stored = await webhooks.find(platform, hook.id);
      assert.ok(stored?.last_triggered_at, "last_triggered_at is set");
      assert.match(await metrics.registry.metrics(), /daon_webhook_deliveries_total\{result="success"\} 2/);
    });

    test("content.confirmed is queued once, for the first confirmation only, with the block", async () => {
      const platform = await addPlatform(db, "confirm.example");
      const hook = await addWebhook(platform, receiver.endpoint("/confirm", SECRET), ["content.confirmed"]);
      const [created] = await registrations.createMany([registration("confirm.example")]);
      assert.equal((await deliveriesOf(hook.id)).length, 0, "not subscribed to content.protected");
      const block = { height: 7, txHash: "AB".repeat(32), blockTime: new Date("2026-01-02T03:04:05.000Z") };
      const confirm = () =>
        db.transaction().execute(async (trx) => {
          const queued = await queueContentConfirmed(trx, [created.row.content_hash], block);
          await trx
            .updateTable("registrations")
            .set({ status: "confirmed" })
            .where("content_hash", "=", created.row.content_hash)
            .execute();
          return queued;
        });
      assert.equal(await confirm(), 1);
      assert.equal(await confirm(), 0, "a re-index of the same block queues nothing");
      const w = worker();
      w.start();
      await receiver.until(() => receiver.at("/confirm").length === 1);
      assert.deepEqual(receiver.at("/confirm")[0].json.data, {
        content_hash: created.row.content_hash,
        protection_id: created.row.protection_id,
        owner: null,
        license: "all-rights-reserved",
        ai_training_policy: "prohibited",
        metadata: { type: "text", description: null, author: null },
        status: "confirmed",
        timestamp: new Date(created.row.created_at).toISOString(),
        block_height: 7,
        tx_hash: "AB".repeat(32),
        block_time: "2026-01-02T03:04:05.000Z",
      });
      await w.stop();
    });

    test("a failing receiver gets retries with growing delays, the delivery goes dead after maxRetries, and redelivery sends it again with the same id", async () => {
      const platform = await addPlatform(db, "failing.example");
      const hook = await addWebhook(platform, receiver.endpoint("/failing", SECRET, 500), ["content.protected"], { maxRetries: 3 });
      await registrations.createMany([registration("failing.example")]);
      const metrics = createMetrics();
      const w = worker({ metrics, retryScale: 0.005 });
      w.start();
      const [delivery] = await deliveriesOf(hook.id);
      await waitForStatus(db, delivery.id, "dead");
      const attempts = await db.selectFrom("webhook_attempts").selectAll().where("delivery_id", "=", delivery.id).orderBy("id").execute();
      assert.equal(attempts.length, 4, "the first attempt and 3 retries");
      assert.ok(attempts.every((a) => a.status_code === 500 && !a.success && a.error === "receiver answered 500"));
      // Retry n waits retryDelaySeconds × 2^(n−1) (× the test's scale), less at most 20 % jitter.
      for (let n = 1; n <= 3; n++) {
        const gap = new Date(attempts[n].attempted_at).getTime() - new Date(attempts[n - 1].attempted_at).getTime();
        const minimum = 0.8 * 10_000 * 2 ** (n - 1) * 0.005;
        assert.ok(gap >= minimum - 2, `retry ${n} came after ${gap} ms, before ${minimum} ms`);
      }
      const received = receiver.at("/failing");
      assert.equal(received.length, 4);
      assert.ok(
        received.every((r) => r.deliveryId === delivery.id && r.body === received[0].body),
        "same id and body on every retry",
      );
      const text = await metrics.registry.metrics();
      assert.match(text, /daon_webhook_deliveries_total\{result="failure"\} 3/);
      assert.match(text, /daon_webhook_deliveries_total\{result="dead"\} 1/);

      receiver.answer("/failing", 204);
      assert.ok(await webhooks.redeliver(hook.id, delivery.id));
      w.nudge();
      await waitForStatus(db, delivery.id, "success");
      assert.equal(receiver.at("/failing").length, 5);
      assert.equal(receiver.at("/failing")[4].deliveryId, delivery.id);
      assert.equal(receiver.at("/failing")[4].body, received[0].body);
      const [after] = await deliveriesOf(hook.id);
      assert.equal(after.attempts, 5);
      await w.stop();
    });

    test("a receiver that does not answer times out; the attempt is a failure and then dead", async () => {
      const platform = await addPlatform(db, "slow.example");
      const hook = await addWebhook(platform, receiver.endpoint("/slow", SECRET, "hang"), ["content.protected"], { maxRetries: 1 });
      await registrations.createMany([registration("slow.example")]);
      const w = worker();
      w.start();
      const [delivery] = await deliveriesOf(hook.id);
      await waitForStatus(db, delivery.id, "dead");
      const done = (await deliveriesOf(hook.id))[0];
      assert.equal(done.attempts, 2);
      assert.equal(done.last_error, "timed out after 500 ms");
      assert.equal(done.last_status_code, null);
      await w.stop();
    });

    test("a destination the SSRF rules refuse is a dead attempt at once, with no retries", async () => {
      const platform = await addPlatform(db, "ssrf.example");
      // Registered while allowed, then the host points elsewhere: the check at each attempt catches it.
      const hook = await addWebhook(platform, "http://10.0.0.1/hook", ["content.protected"], { maxRetries: 5 });
      await registrations.createMany([registration("ssrf.example")]);
      const w = worker();
      w.start();
      const [delivery] = await deliveriesOf(hook.id);
      await waitForStatus(db, delivery.id, "dead");
      const done = (await deliveriesOf(hook.id))[0];
      assert.equal(done.attempts, 1);
      assert.equal(done.last_error, "destination refused: resolves to a private address");
      await w.stop();
    });

    test("stop() waits for the attempt in flight and records it", async () => {
      const platform = await addPlatform(db, "stop.example");
      const hook = await addWebhook(platform, receiver.endpoint("/stop", SECRET, { status: 200, afterMs: 300 }));
      await registrations.createMany([registration("stop.example")]);
      const w = worker();
      w.start();
      await receiver.until(() => receiver.at("/stop").length === 1);
      // The receiver has the request and answers in 300 ms: stop() waits for that answer.
      await w.stop();
      const [delivery] = await deliveriesOf(hook.id);
      assert.equal(delivery.status, "success");
      assert.equal(delivery.claimed_by, null, "the claim is released");
    });

    test("two workers on one database never make the same attempt twice", async () => {
      const platform = await addPlatform(db, "busy.example");
      const hook = await addWebhook(platform, receiver.endpoint("/busy", SECRET));
      await registrations.createMany(Array.from({ length: 40 }, () => registration("busy.example")));
      // A second instance: its own connection pool (PostgreSQL) or the same embedded database.
      const second =
        storage === "postgres" ? await openDatabase({ databaseUrl: (await connectionUrl(db))!, stateDir: dir, poolMax: 4 }) : undefined;
      const a = worker({ concurrency: 4 });
      const b = worker({ concurrency: 4, db: second?.db ?? db });
      a.start();
      b.start();
      await receiver.until(() => new Set(receiver.at("/busy").map((r) => r.deliveryId)).size === 40);
      await a.stop();
      await b.stop();
      await second?.close();
      const ids = receiver.at("/busy").map((r) => r.deliveryId);
      assert.equal(ids.length, 40, "each delivery was sent exactly once");
      const statuses = (await deliveriesOf(hook.id)).map((d) => d.status);
      assert.ok(statuses.every((s) => s === "success"));
    });

    test("checks.webhooks is degraded while a due delivery waits over 15 minutes; waiting on purpose is not late", async () => {
      const webhooksOf = new Webhooks(
        db,
        { WEBHOOK_ALLOW_HTTP: true, WEBHOOK_ALLOWED_CIDRS: "127.0.0.1/32", WEBHOOK_TIMEOUT_MS: 500 },
        () => sealer,
        silent,
      );
      const before = await webhooksOf.health();
      assert.equal(before.status, "up");
      const platform = await addPlatform(db, "late.example");
      const hook = await addWebhook(platform, receiver.endpoint("/late", SECRET));
      const lateSince = new Date(Date.now() - 20 * 60 * 1000);
      await db
        .insertInto("webhook_deliveries")
        .values({
          id: "whd_late",
          webhook_id: hook.id,
          platform_id: platform,
          event: "content.protected",
          payload: "{}",
          status: "retrying",
          attempts: 1,
          failures: 1,
          next_attempt_at: lateSince,
          created_at: lateSince,
        })
        .execute();
      const late = await webhooksOf.health();
      assert.equal(late.status, "degraded");
      assert.equal(late.backlog, before.backlog + 1);
      await db.updateTable("platforms").set({ certification_status: "suspended" }).where("id", "=", platform).execute();
      assert.equal((await webhooksOf.health()).status, "up", "a suspended platform's deliveries wait on purpose");
      await db.deleteFrom("webhooks").where("id", "=", hook.id).execute();
      await webhooksOf.stop();
    });

    test("a suspended platform's deliveries wait, and go out once it is active again", async () => {
      const platform = await addPlatform(db, "paused.example", "suspended");
      const hook = await addWebhook(platform, receiver.endpoint("/paused", SECRET));
      await registrations.createMany([registration("paused.example")]);
      const w = worker();
      w.start();
      await sleep(400); // several polls
      assert.equal(receiver.at("/paused").length, 0);
      assert.equal((await deliveriesOf(hook.id))[0].status, "pending");
      await db.updateTable("platforms").set({ certification_status: "active" }).where("id", "=", platform).execute();
      await receiver.until(() => receiver.at("/paused").length === 1);
      await w.stop();
    });
  });
}

describe("webhook destinations (SSRF)", () => {
  const closed = new DestinationPolicy("", true);
  const refusedUrls = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/",
    "http://10.1.2.3/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://localhost/",
  ];

  for (const url of refusedUrls) {
    test(`refuses ${url}`, async () => {
      await assert.rejects(closed.check(url), DestinationRefused);
    });
  }

  test("names the reason, never connects", async () => {
    await assert.rejects(closed.check("http://169.254.169.254/"), { message: "resolves to a link-local address" });
    await assert.rejects(closed.check("http://localhost:1/"), { message: "resolves to a loopback address" });
    await assert.rejects(closed.check("http://100.64.0.1/"), { message: "resolves to a shared (100.64/10) address" });
  });

  test("https only unless WEBHOOK_ALLOW_HTTP; no credentials in the URL", async () => {
    const strict = new DestinationPolicy("", false);
    await assert.rejects(strict.check("http://93.184.215.14/"), { message: "must be an https URL" });
    await assert.rejects(strict.check("ftp://93.184.215.14/"), { message: "must be an https URL" });
    await assert.rejects(strict.check("https://user:pw@93.184.215.14/"), { message: "must not contain credentials" });
    await assert.rejects(strict.check("not a url"), { message: "must be an absolute URL" });
    assert.deepEqual(await strict.check("https://93.184.215.14/hook"), [{ address: "93.184.215.14", family: 4 }]);
    assert.deepEqual(await strict.check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/"), [
      { address: "2606:2800:21f:cb07:6820:80da:af6b:8b2c", family: 6 },
    ]);
  });

  test("WEBHOOK_ALLOWED_CIDRS lets exactly its ranges through, IPv4-mapped forms included", async () => {
    const allowed = new DestinationPolicy("127.0.0.1/32, 10.8.0.0/16", true);
    await allowed.check("http://127.0.0.1:9/");
    await allowed.check("http://[::ffff:127.0.0.1]/");
    await allowed.check("http://10.8.1.2/");
    await allowed.check("http://localhost/");
    await assert.rejects(allowed.check("http://127.0.0.2/"), DestinationRefused);
    await assert.rejects(allowed.check("http://10.9.0.1/"), DestinationRefused);
    await assert.rejects(allowed.check("http://169.254.169.254/"), DestinationRefused);
    await assert.rejects(allowed.check("http://[::1]/"), DestinationRefused);
    assert.throws(() => new DestinationPolicy("not-a-range", true), /WEBHOOK_ALLOWED_CIDRS/);
  });

  test("the connection's own lookup refuses a host that resolves to a refused address", async () => {
    const lookup = (host: string) =>
      new Promise<unknown>((resolve, reject) =>
        closed.lookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
      );
    await assert.rejects(lookup("localhost"), DestinationRefused);
    const allowed = new DestinationPolicy("127.0.0.1/32", true);
    assert.deepEqual(
      await new Promise((resolve, reject) =>
        allowed.lookup("localhost", { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
      ),
      [{ address: "127.0.0.1", family: 4 }],
    );
  });

  test("retry delays double from retryDelaySeconds, within ±20 %, and never exceed 6 hours", () => {
    assert.equal(
      retryDelayMs(10, 1, () => 0.5),
      10_000,
    );
    assert.equal(
      retryDelayMs(10, 3, () => 0.5),
      40_000,
    );
    assert.equal(
      retryDelayMs(60, 2, () => 0),
      96_000,
    );
    assert.equal(
      retryDelayMs(60, 2, () => 1),
      144_000,
    );
    assert.equal(
      retryDelayMs(3600, 20, () => 0.5),
      6 * 3600 * 1000,
    );
  });
});

async function waitForStatus(db: Kysely<Database>, deliveryId: string, status: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await db.selectFrom("webhook_deliveries").select("status").where("id", "=", deliveryId).executeTakeFirst();
    if (row?.status === status) return;
    if (Date.now() > deadline) throw new Error(`delivery ${deliveryId} is ${row?.status}, not ${status}`);
    await sleep(25);
  }
}

/** The PostgreSQL URL of the database `db` is connected to (a second pool = a second instance). */
async function connectionUrl(db: Kysely<Database>): Promise<string | undefined> {
  const { sql } = await import("kysely");
  const name = (await sql<{ name: string }>`select current_database() as name`.execute(db)).rows[0].name;
  const url = new URL(process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test");
  url.pathname = `/${name}`;
  return url.toString();
}
