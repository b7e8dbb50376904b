/**
 * Webhooks through the HTTP API (api.md §5) with platform keys, on both storage paths:
 * a platform manages its own webhooks only; the rules on URLs, secrets, headers and retries;
 * content.protected, content.confirmed and content.transferred reach a real receiver that
 * checks every signature; the deliveries log, stats, test ping, dead letters, redelivery,
 * /health and /metrics.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Platforms } from "../src/platforms/platforms.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";
import { WebhookReceiver } from "./webhooks-receiver.js";

const SECRET = "a-receiver-chosen-secret-of-40-characters!";
const ADMIN = { actorId: "webhooks-test", ip: null, requestId: null };

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, asserted field by field
  body: any;
}

for (const storage of STORAGE_PATHS) {
  describe(`webhooks API (${storage})`, () => {
    let system: TestSystem;
    let receiver: WebhookReceiver;
    let platforms: Platforms;
    const keys: Record<string, string> = {};
    const ids: Record<string, string> = {};

    const call = async (method: string, path: string, key: string | undefined, body?: unknown): Promise<Answer> => {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers["content-type"] = "application/json";
      if (key) headers.authorization = `Bearer ${key}`;
      const response = await fetch(`${system.apiUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    const expectError = (answer: Answer, status: number, code: string) => {
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.success, false);
      assert.equal(answer.body.error.code, code, JSON.stringify(answer.body));
    };
    const createWebhook = async (platform: string, body: Record<string, unknown>) => {
      const created = await call("POST", "/api/v1/broker/webhooks", keys[platform], body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body.webhook as { id: string };
    };
    const deliveries = async (webhookId: string, query = "") =>
      (await call("GET", `/api/v1/broker/webhooks/${webhookId}/deliveries${query}`, keys.gallery)).body.items as Record<string, unknown>[];
    const until = async (what: string, check: () => Promise<boolean>) => {
      const deadline = Date.now() + 20_000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    before(async () => {
      receiver = await WebhookReceiver.start();
      system = await startTestSystem(storage, {
        WEBHOOK_ALLOW_HTTP: "true",
        WEBHOOK_ALLOWED_CIDRS: "127.0.0.1/32",
        WEBHOOK_TIMEOUT_MS: "2000",
        RATE_LIMIT_MAX: "100000",
      });
      platforms = new Platforms(system.api.database.db, () => system.api.keyring.apiKey);
      for (const domain of ["gallery.example", "rival.example"]) {
        const name = domain.split(".")[0];
        const { platform, issued } = await platforms.store.create(
          { domain, name, contactEmail: `ops@${domain}`, tier: "enterprise", publicKey: null, requireSignature: false },
          ADMIN,
        );
        await platforms.store.approve(platform.id, ADMIN);
        keys[name] = issued.key;
        ids[name] = platform.id;
      }
    });
    after(async () => {
      await system.stop();
      await receiver.stop();
    });

    test("a platform creates, lists, reads, changes and deletes its own webhooks; another platform's are not found", async () => {
      const openapi = (await (await fetch(`${system.apiUrl}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
      for (const path of [
        "/api/v1/broker/webhooks",
        "/api/v1/broker/webhooks/{id}",
        "/api/v1/broker/webhooks/{id}/stats",
        "/api/v1/broker/webhooks/{id}/deliveries",
        "/api/v1/broker/webhooks/{id}/deliveries/{deliveryId}/redeliver",
        "/api/v1/broker/webhooks/{id}/test",
      ]) {
        assert.ok(openapi.paths[path], `${path} is in the OpenAPI document`);
      }
      const health = (await (await fetch(`${system.apiUrl}/health`)).json()) as { checks: { webhooks: unknown } };
      assert.deepEqual(health.checks.webhooks, { status: "not_configured", backlog: 0, deadLetters24h: 0 });
      const created = await call("POST", "/api/v1/broker/webhooks", keys.gallery, {
        url: receiver.endpoint("/crud", "unused"),
        events: ["content.protected"],
        description: "CRUD",
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const { webhook, secret } = created.body;
      assert.match(secret, /^whsec_[0-9a-f]{64}$/, "a generated secret is shown once");
      assert.deepEqual(Object.keys(webhook).sort(), [
        "created_at",
        "description",
        "enabled",
        "events",
        "id",
        "last_triggered_at",
        "max_retries",
        "retry_delay_seconds",
        "url",
      ]);
      assert.equal(webhook.enabled, true);
      assert.equal(webhook.max_retries, 5);
      assert.equal(webhook.retry_delay_seconds, 60);
      assert.equal(webhook.last_triggered_at, null);

      const listed = await call("GET", "/api/v1/broker/webhooks", keys.gallery);
      assert.equal(listed.status, 200);
      assert.ok(listed.body.items.some((w: { id: string }) => w.id === webhook.id));
      const read = await call("GET", `/api/v1/broker/webhooks/${webhook.id}`, keys.gallery);
      assert.deepEqual(read.body.webhook, webhook);
      for (const answer of [created, listed, read]) assert.ok(!JSON.stringify(answer.body).includes(secret) || answer === created);

      const patched = await call("PATCH", `/api/v1/broker/webhooks/${webhook.id}`, keys.gallery, {
        enabled: false,
        description: null,
        maxRetries: 0,
        retryDelaySeconds: 10,
        events: ["content.confirmed", "content.transferred"],
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.deepEqual(
        { ...patched.body.webhook },
        {
          ...webhook,
          enabled: false,
          description: null,
          max_retries: 0,
          retry_delay_seconds: 10,
          events: ["content.confirmed", "content.transferred"],
        },
      );

      // Another platform: everything about this webhook is 404, and its own list is empty of it.
      for (const [method, path, body] of [
        ["GET", `/api/v1/broker/webhooks/${webhook.id}`],
        ["PATCH", `/api/v1/broker/webhooks/${webhook.id}`, { enabled: true }],
        ["DELETE", `/api/v1/broker/webhooks/${webhook.id}`],
        ["GET", `/api/v1/broker/webhooks/${webhook.id}/stats`],
        ["GET", `/api/v1/broker/webhooks/${webhook.id}/deliveries`],
        ["POST", `/api/v1/broker/webhooks/${webhook.id}/test`],
        ["POST", `/api/v1/broker/webhooks/${webhook.id}/deliveries/whd_x/redeliver`],
      ] as const) {
        expectError(await call(method, path, keys.rival, body), 404, "NOT_FOUND");
      }
      assert.ok(!(await call("GET", "/api/v1/broker/webhooks", keys.rival)).body.items.some((w: { id: string }) => w.id === webhook.id));

      // No key, or a key without the broker:webhooks scope.
      expectError(await call("GET", "/api/v1/broker/webhooks", undefined), 401, "UNAUTHORIZED");
      expectError(await call("POST", "/api/v1/broker/webhooks", undefined, { url: 1 }), 401, "UNAUTHORIZED");
      const narrow = await call("POST", "/api/v1/broker/keys", keys.gallery, { name: "verify only", scopes: ["broker:verify"] });
      assert.equal(narrow.status, 201, JSON.stringify(narrow.body));
      expectError(await call("GET", "/api/v1/broker/webhooks", narrow.body.api_key), 403, "INSUFFICIENT_SCOPE");
      expectError(await call("POST", "/api/v1/broker/webhooks", narrow.body.api_key, {}), 403, "INSUFFICIENT_SCOPE");

      assert.equal((await call("DELETE", `/api/v1/broker/webhooks/${webhook.id}`, keys.gallery)).status, 200);
      expectError(await call("GET", `/api/v1/broker/webhooks/${webhook.id}`, keys.gallery), 404, "NOT_FOUND");
      assert.ok(!system.logs.join("\n").includes(secret), "the secret is in no log line");
    });

    test("the rules of api.md §5: secret length, custom headers, retries, events, and SSRF refusals on url", async () => {
      const base = { url: receiver.endpoint("/rules", SECRET), events: ["content.protected"] };
      const refused = async (body: Record<string, unknown>, field: string) => {
        const answer = await call("POST", "/api/v1/broker/webhooks", keys.gallery, { ...base, ...body });
        expectError(answer, 400, "VALIDATION_ERROR");
        const fields = answer.body.error.details.fields.map((f: { field: string }) => f.field);
        assert.ok(
          fields.some((f: string) => f.includes(field)),
          `${JSON.stringify(body)}: ${JSON.stringify(fields)}`,
        );
        return answer;
      };
      const short = await refused({ secret: "x".repeat(31) }, "secret");
      assert.ok(!JSON.stringify(short.body).includes("x".repeat(31)), "the refused secret is not echoed");
      await refused({ customHeaders: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`X-H${i}`, "v"])) }, "customHeaders");
      for (const name of ["X-DAON-Webhook-ID", "x-daon-anything", "Content-Type", "Content-Length", "Host", "User-Agent"]) {
        await refused({ customHeaders: { [name]: "v" } }, `customHeaders.${name}`);
      }
      await refused({ customHeaders: { "X-Ok": "line\r\nInjected: 1" } }, "customHeaders.X-Ok");
      await refused({ maxRetries: 21 }, "maxRetries");
      await refused({ maxRetries: -1 }, "maxRetries");
      await refused({ retryDelaySeconds: 9 }, "retryDelaySeconds");
      await refused({ retryDelaySeconds: 3601 }, "retryDelaySeconds");
      await refused({ events: [] }, "events");
      await refused({ events: ["content.deleted"] }, "events");
      for (const url of [
        "http://10.0.0.1/hook",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://127.0.0.2/",
        "ftp://example.com/",
        "not a url",
      ]) {
        await refused({ url }, "url");
      }
      // The allowed range and the edges of the rules are accepted.
      const edge = await createWebhook("gallery", {
        ...base,
        secret: SECRET,
        maxRetries: 20,
        retryDelaySeconds: 3600,
        customHeaders: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`X-H${i}`, "v"])),
      });
      assert.equal((await call("DELETE", `/api/v1/broker/webhooks/${edge.id}`, keys.gallery)).status, 200);
      assert.ok(!system.logs.join("\n").includes(SECRET));
    });

    test("protect, confirmation and transfer reach the platform's webhook signed; the log, stats and test ping show them", async () => {
      const url = receiver.endpoint("/events", SECRET);
      const webhook = await createWebhook("gallery", {
        url,
        secret: SECRET,
        events: ["content.protected", "content.confirmed", "content.transferred"],
        customHeaders: { "X-Gallery": "1" },
      });
      const rivalHook = await createWebhook("rival", {
        url: receiver.endpoint("/rival", SECRET),
        secret: SECRET,
        events: ["content.protected"],
      });

      const protect = await call("POST", "/api/v1/broker/protect", keys.gallery, {
        content: `webhook story ${storage} ${Date.now()}`,
        username: "alice",
        metadata: { title: "Private title", type: "text" },
      });
      assert.equal(protect.status, 201, JSON.stringify(protect.body));
      const contentHash = protect.body.contentHash;
      const forWork = () => receiver.at("/events").filter((r) => r.json.data.content_hash === contentHash);
      await receiver.until(() => forWork().length >= 2, 20_000, "protected and confirmed");
      assert.deepEqual(receiver.refused, [], "every delivery carried a valid signature and a fresh timestamp");
      const protectedEvent = forWork().find((r) => r.json.event === "content.protected")!;
      const confirmedEvent = forWork().find((r) => r.json.event === "content.confirmed")!;
      assert.equal(protectedEvent.json.broker_id, ids.gallery);
      assert.equal(protectedEvent.headers["x-gallery"], "1");
      assert.equal(protectedEvent.json.data.status, "pending");
      assert.equal(protectedEvent.json.data.owner, protect.body.owner);
      assert.equal(protectedEvent.json.data.protection_id, protect.body.protectionId);
      assert.ok(!protectedEvent.body.includes("Private title"), "no titles in webhooks");
      assert.equal(confirmedEvent.json.data.status, "confirmed");
      assert.equal(confirmedEvent.json.data.block_height, protect.body.blockHeight);
      assert.equal(confirmedEvent.json.data.tx_hash, protect.body.txHash);
      assert.equal(confirmedEvent.json.data.block_time, protect.body.blockTime);
      assert.notEqual(protectedEvent.deliveryId, confirmedEvent.deliveryId);
      assert.equal(receiver.at("/rival").filter((r) => r.json.data.content_hash === contentHash).length, 0, "not the rival's work");

      const transfer = await call("POST", "/api/v1/broker/transfer", keys.gallery, {
        contentHash,
        currentOwner: "alice@gallery.example",
        newOwner: "bob@gallery.example",
        reason: "sold",
      });
      assert.equal(transfer.status, 201, JSON.stringify(transfer.body));
      await receiver.until(() => forWork().some((r) => r.json.event === "content.transferred"), 20_000, "transferred");
      const transferred = forWork().find((r) => r.json.event === "content.transferred")!;
      const history = (await call("GET", `/api/v1/content/${contentHash}/history`, undefined)).body;
      const moved = history.events.find((e: { type: string }) => e.type === "transferred");
      assert.deepEqual(transferred.json.data, {
        content_hash: contentHash,
        transfer_id: transfer.body.transfer.id,
        previous_owner: protect.body.owner,
        new_owner: transfer.body.transfer.newOwner,
        reason: "sold",
        block_height: transfer.body.transfer.blockHeight,
        tx_hash: transfer.body.transfer.txHash,
        block_time: moved.blockTime,
      });

      await until("three successful deliveries", async () => (await deliveries(webhook.id, "?status=success")).length === 3);
      const log = await deliveries(webhook.id);
      assert.deepEqual(log.map((d) => d.event).sort(), ["content.confirmed", "content.protected", "content.transferred"]);
      for (const entry of log) {
        assert.equal(entry.status, "success");
        assert.equal(entry.attempts, 1);
        assert.equal(entry.next_attempt_at, null);
        assert.equal(entry.last_status_code, 200);
        assert.deepEqual(
          (entry.attempt_log as { status_code: number; success: boolean }[]).map((a) => [a.status_code, a.success]),
          [[200, true]],
        );
      }
      assert.deepEqual(await deliveries(webhook.id, "?status=dead"), []);
      expectError(await call("GET", `/api/v1/broker/webhooks/${webhook.id}/deliveries?status=lost`, keys.gallery), 400, "VALIDATION_ERROR");

      const stats = await call("GET", `/api/v1/broker/webhooks/${webhook.id}/stats`, keys.gallery);
      assert.equal(stats.status, 200);
      assert.deepEqual(stats.body.stats.deliveries, { total: 3, pending: 0, retrying: 0, success: 3, dead: 0 });
      assert.equal(stats.body.stats.attempts.total, 3);
      assert.equal(stats.body.stats.success_rate, 1);
      assert.ok((await call("GET", `/api/v1/broker/webhooks/${webhook.id}`, keys.gallery)).body.webhook.last_triggered_at);

      const ping = await call("POST", `/api/v1/broker/webhooks/${webhook.id}/test`, keys.gallery);
      assert.equal(ping.status, 200);
      assert.equal(ping.body.success, true);
      assert.equal(ping.body.delivered, true);
      assert.equal(ping.body.status_code, 200);
      assert.equal(ping.body.error, null);
      assert.ok(Number.isInteger(ping.body.duration_ms));
      const pinged = receiver.at("/events").find((r) => r.json.event === "webhook.test")!;
      assert.equal(pinged.headers["x-daon-webhook-event"], "webhook.test");
      assert.equal(pinged.json.data.webhook_id, webhook.id);
      assert.equal((await deliveries(webhook.id)).length, 3, "a test ping is not a logged delivery");
      assert.ok(rivalHook.id);
    });

    test("a failing receiver's delivery goes dead, shows in the log, /health and /metrics, and is redelivered with the same id", async () => {
      const webhook = await createWebhook("gallery", {
        url: receiver.endpoint("/dead", SECRET, 503),
        secret: SECRET,
        events: ["content.protected"],
        maxRetries: 0,
      });
      const failedPing = await call("POST", `/api/v1/broker/webhooks/${webhook.id}/test`, keys.gallery);
      assert.equal(failedPing.body.delivered, false);
      assert.equal(failedPing.body.status_code, 503);
      assert.equal(failedPing.body.error, "receiver answered 503");

      const protect = await call("POST", "/api/v1/broker/protect?wait=false", keys.gallery, {
        content: `dead letter ${Date.now()}`,
        username: "carol",
      });
      assert.equal(protect.status, 202, JSON.stringify(protect.body));
      await until("a dead letter", async () => (await deliveries(webhook.id, "?status=dead")).length === 1);
      const [dead] = await deliveries(webhook.id, "?status=dead");
      assert.equal(dead.attempts, 1);
      assert.equal(dead.last_status_code, 503);
      assert.equal(dead.last_error, "receiver answered 503");
      assert.equal(dead.next_attempt_at, null);

      const health = (await (await fetch(`${system.apiUrl}/health`)).json()) as { checks: { webhooks: Record<string, unknown> } };
      assert.equal(health.checks.webhooks.status, "up");
      assert.ok((health.checks.webhooks.deadLetters24h as number) >= 1);
      assert.equal(typeof health.checks.webhooks.backlog, "number");
      const metrics = await (await fetch(`${system.apiUrl}/metrics`)).text();
      assert.match(metrics, /daon_webhook_deliveries_total\{result="dead"\} [1-9]/);
      assert.match(metrics, /daon_webhook_backlog \d+/);

      receiver.answer("/dead", 200);
      const redeliver = await call("POST", `/api/v1/broker/webhooks/${webhook.id}/deliveries/${dead.id}/redeliver`, keys.gallery);
      assert.equal(redeliver.status, 202, JSON.stringify(redeliver.body));
      assert.equal(redeliver.body.delivery.id, dead.id);
      await until("the redelivery", async () => (await deliveries(webhook.id, "?status=success")).length === 1);
      const sent = receiver.at("/dead").filter((r) => r.json.event === "content.protected");
      assert.deepEqual(
        sent.map((r) => r.deliveryId),
        [dead.id, dead.id],
      );
      assert.equal(sent[0].body, sent[1].body, "the same body, re-signed");
      expectError(
        await call("POST", `/api/v1/broker/webhooks/${webhook.id}/deliveries/whd_unknown/redeliver`, keys.gallery),
        404,
        "NOT_FOUND",
      );
    });
  });
}
