/**
 * Platforms (api.md §4) and their administration (§6) through HTTP, on both storage paths:
 * registration and approval, keys shown once and stored as HMACs, scopes, rotation and
 * revocation, quotas and usage, `username@domain` ownership and transfers, request
 * signatures, suspension, and the audit log.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { type Creator, Mailbox } from "./accounts-journey.js";
import {
  assertError,
  type CallOptions,
  call,
  confirmed,
  type RegisteredPlatform,
  registerPlatform,
  signatureHeaders,
  signIn,
  signingKeys,
} from "./platforms-journey.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const API_KEY_SECRET = randomBytes(48).toString("base64url");
const KEY_FORMAT = /^DAON_BR_[0-9a-f]{64}$/;
const QUOTA_HEADERS = ["limit", "remaining", "reset"].flatMap((name) => [`x-ratelimit-${name}-hourly`, `x-ratelimit-${name}-daily`]);
const unique = (label: string) => `${label} ${randomBytes(8).toString("hex")}`;

for (const storage of STORAGE_PATHS) {
  describe(`platforms and administration (${storage})`, () => {
    let system: TestSystem;
    let mailbox: Mailbox;
    let admin: Creator;
    let creator: Creator;
    let shop: RegisteredPlatform;
    let gallery: RegisteredPlatform;
    const domain = (name: string) => `${name}.${storage}.example`;

    const as = (credential: string | undefined, method: string, path: string, options: Omit<CallOptions, "credential"> = {}) =>
      call(system, method, path, { ...options, credential });
    const protectFor = async (platform: RegisteredPlatform, username: string, wait = "true") => {
      const answer = await as(platform.key, "POST", `/api/v1/broker/protect?wait=${wait}`, {
        body: { content: unique("a work"), username, metadata: { type: "test" } },
      });
      assert.ok([201, 202].includes(answer.status), JSON.stringify(answer.body));
      return answer.body;
    };
    const db = () => system.api.database.db;

    before(async () => {
      mailbox = await Mailbox.start();
      system = await startTestSystem(storage, {
        SMTP_URL: mailbox.url,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        JWT_SECRET: randomBytes(48).toString("base64url"),
        API_KEY_SECRET,
        ADMIN_EMAILS: "admin@daon.example",
        // Low, so the test shows platform keys are exempt from the per-IP limits.
        PROTECT_RATE_LIMIT_MAX: "3",
      });
      [admin, creator] = await Promise.all([
        signIn(system, mailbox, "admin@daon.example", "203.0.113.10"),
        signIn(system, mailbox, "creator@daon.example", "203.0.113.11"),
      ]);
      assert.equal(admin.user.role, "admin");
      gallery = await registerPlatform(system, admin.accessToken, { domain: domain("gallery") });
    });
    after(async () => {
      await system?.stop();
      await mailbox?.stop();
    });

    test("an administrator registers a platform: its key is shown once, kept only as an HMAC, refused until approval", async () => {
      const created = await as(admin.accessToken, "POST", "/api/v1/admin/platforms", {
        body: { domain: domain("Shop").toUpperCase(), name: "Shop", contact_email: "ops@shop.example", certification_tier: "standard" },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.headers.get("cache-control"), "no-store");
      const { broker, api_key: key, key: shown, warning } = created.body;
      assert.match(key, KEY_FORMAT);
      assert.match(warning, /shown only once/);
      assert.equal(broker.domain, domain("shop"));
      assert.equal(broker.certification_status, "pending");
      assert.equal(broker.certification_tier, "standard");
      assert.deepEqual(broker.rate_limits, { hourly: 1000, daily: 10000, custom: false });
      assert.equal(shown.prefix, key.slice(0, 24));
      assert.deepEqual(shown.scopes, ["broker:register", "broker:verify", "broker:transfer", "broker:webhooks"]);
      shop = { id: broker.id, domain: broker.domain, key };

      // The database holds the HMAC under API_KEY_SECRET, never the key or its secret part.
      const rows = await sql<Record<string, unknown>>`select * from platform_keys where platform_id = ${shop.id}`.execute(db());
      assert.equal(rows.rows.length, 1);
      assert.equal(rows.rows[0].key_hash, createHmac("sha256", API_KEY_SECRET).update(key).digest("hex"));
      assert.ok(!JSON.stringify(rows.rows).includes(key.slice(24)));
      // Nor does any later answer.
      const read = await as(admin.accessToken, "GET", `/api/v1/admin/platforms/${shop.id}`);
      assert.equal(read.status, 200);
      assert.equal(read.body.api_keys.length, 1);
      assert.equal(read.body.api_keys[0].prefix, key.slice(0, 24));
      assert.ok(!JSON.stringify(read.body).includes(key.slice(24)));

      assertError(await as(key, "GET", "/api/v1/broker/verify"), 403, "PLATFORM_NOT_ACTIVE");
      const twin = await as(admin.accessToken, "POST", "/api/v1/broker/register", {
        body: { domain: domain("shop"), name: "Again", contact_email: "x@shop.example" },
      });
      assertError(twin, 409, "PLATFORM_EXISTS");
      assertError(
        await as(admin.accessToken, "POST", "/api/v1/admin/platforms", {
          body: { domain: "not a domain", name: "X", contact_email: "x@y.example" },
        }),
        400,
        "VALIDATION_ERROR",
      );

      const approved = await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${shop.id}/approve`);
      assert.equal(approved.status, 200);
      assert.equal(approved.body.broker.certification_status, "active");
      assert.ok(approved.body.broker.approved_at);
      const whoami = await as(key, "GET", "/api/v1/broker/verify");
      assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
      assert.equal(whoami.body.broker.id, shop.id);
      assert.equal(whoami.body.broker.contact_email, undefined, "contacts are for administrators only");
      assert.equal(whoami.body.api_key.prefix, key.slice(0, 24));
      assert.deepEqual(whoami.body.api_key.scopes, shown.scopes);
      assert.equal(whoami.body.api_key.expires_at, null);
      assert.equal(whoami.body.rate_limits.hourly.limit, 1000);
      assert.equal(whoami.body.rate_limits.hourly.remaining, 999);
      for (const name of QUOTA_HEADERS) assert.ok(whoami.headers.get(name), name);
      assert.equal(whoami.headers.get("cache-control"), "no-store");

      // Each change is in the audit log, with who, from where and which request.
      const audit = await as(admin.accessToken, "GET", `/api/v1/admin/audit-log?target_id=${shop.id}`);
      assert.equal(audit.status, 200);
      assert.deepEqual(
        audit.body.items.map((entry: { action: string }) => entry.action),
        ["platform.approve", "platform.create"],
      );
      const [approval] = audit.body.items;
      assert.equal(approval.actor_id, admin.user.id);
      assert.equal(approval.target_type, "platform");
      assert.equal(approval.ip, "127.0.0.1");
      assert.match(approval.request_id, /\S/);
      assert.deepEqual(approval.details, { from: "pending", to: "active" });
      await assert.rejects(sql`update admin_audit_log set action = 'forged'`.execute(db()), /append-only/);
      await assert.rejects(sql`delete from admin_audit_log`.execute(db()), /append-only/);
    });

    test("works are registered for username@domain: one owner id per user, created on first use, shown only to its platform", async () => {
      const first = await protectFor(shop, "alice");
      assert.equal(first.ownerIdentity, `alice@${shop.domain}`);
      assert.match(first.owner, /^o_[a-z2-7]{26}$/);
      assert.deepEqual(first.broker, { id: shop.id, domain: shop.domain, name: "Shop" });
      const second = await protectFor(shop, "alice");
      assert.equal(second.owner, first.owner);
      const elsewhere = await protectFor(gallery, "alice");
      assert.notEqual(elsewhere.owner, first.owner);
      assert.equal(elsewhere.ownerIdentity, `alice@${gallery.domain}`);
      // The platform is recorded as the registering one; the owner id says nothing of the name.
      const row = await db()
        .selectFrom("registrations")
        .selectAll()
        .where("content_hash", "=", first.contentHash)
        .executeTakeFirstOrThrow();
      assert.equal(row.platform, shop.domain);
      assert.ok(!first.owner.includes("alice"));

      // Plain /protect with a platform key: username optional.
      const plain = await as(shop.key, "POST", "/api/v1/protect", { body: { content: unique("plain"), username: "alice" } });
      assert.ok([201, 202].includes(plain.status), JSON.stringify(plain.body));
      assert.equal(plain.body.owner, first.owner);
      const nobody = await as(shop.key, "POST", "/api/v1/protect", { body: { content: unique("nobody") } });
      assert.ok([201, 202].includes(nobody.status));
      assert.equal(nobody.body.owner, null);
      assert.equal(nobody.body.ownerIdentity, null);
      // Over the per-IP protect limit (3) without a 429: platform keys have quotas instead.
      assert.equal(nobody.headers.get("ratelimit-limit"), null);
      // A repeat answers the first registration, with the identity of its owner.
      const repeat = await as(shop.key, "POST", "/api/v1/broker/protect", { body: { contentHash: first.contentHash, username: "bob" } });
      assert.equal(repeat.status, 200);
      assert.equal(repeat.body.existing, true);
      assert.equal(repeat.body.ownerIdentity, `alice@${shop.domain}`);

      assertError(await as(shop.key, "POST", "/api/v1/broker/protect", { body: { content: unique("x") } }), 400, "VALIDATION_ERROR");
      assertError(
        await as(shop.key, "POST", "/api/v1/broker/protect", { body: { content: "x", username: "a b" } }),
        400,
        "VALIDATION_ERROR",
      );
      assertError(
        await as(undefined, "POST", "/api/v1/protect", { body: { content: unique("x"), username: "alice" } }),
        400,
        "VALIDATION_ERROR",
      );
      assertError(
        await as(undefined, "POST", "/api/v1/broker/protect", { body: { content: unique("x"), username: "alice" } }),
        401,
        "UNAUTHORIZED",
      );

      const lookup = await as(shop.key, "GET", `/api/v1/broker/content/${first.contentHash}`);
      assert.equal(lookup.status, 200);
      assert.equal(lookup.body.ownerIdentity, `alice@${shop.domain}`);
      const foreign = await as(gallery.key, "GET", `/api/v1/broker/content/sha256:${first.contentHash.toUpperCase()}`);
      assert.equal(foreign.status, 200);
      assert.equal(foreign.body.ownerIdentity, null);
      assert.equal(foreign.body.owner, first.owner);
      assertError(await as(shop.key, "GET", `/api/v1/broker/content/${"0".repeat(64)}`), 404, "NOT_FOUND");

      const page = await as(shop.key, "GET", "/api/v1/broker/content?username=alice&limit=2");
      assert.equal(page.status, 200);
      assert.deepEqual(
        page.body.items.map((w: { contentHash: string }) => w.contentHash),
        [plain.body.contentHash, second.contentHash],
      );
      const rest = await as(shop.key, "GET", `/api/v1/broker/content?username=alice&cursor=${page.body.nextCursor}`);
      assert.deepEqual(
        rest.body.items.map((w: { contentHash: string }) => w.contentHash),
        [first.contentHash],
      );
      assert.equal(rest.body.nextCursor, null);
      const stranger = await as(shop.key, "GET", "/api/v1/broker/content?username=nobody-here");
      assert.deepEqual(stranger.body.items, []);
    });

    test("a platform moves a work between two of its users; other domains and other owners are refused", async () => {
      const work = await protectFor(shop, "carol");
      await confirmed(system, work.contentHash);
      const moved = await as(shop.key, "POST", "/api/v1/broker/transfer", {
        body: { contentHash: work.contentHash, currentOwner: `carol@${shop.domain}`, newOwner: "dave", reason: "sold" },
      });
      assert.ok([201, 202].includes(moved.status), JSON.stringify(moved.body));
      const { transfer } = moved.body;
      assert.equal(transfer.previousOwner, work.owner);
      assert.match(transfer.newOwner, /^o_[a-z2-7]{26}$/);
      assert.equal(transfer.reason, "sold");
      assert.equal(transfer.newOwnerIdentity, `dave@${shop.domain}`);
      for (let i = 0; i < 50; i++) {
        const now = await as(shop.key, "GET", `/api/v1/broker/content/${work.contentHash}`);
        if (now.body.ownerIdentity === `dave@${shop.domain}`) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const daves = await as(shop.key, "GET", "/api/v1/broker/content?username=dave");
      assert.deepEqual(
        daves.body.items.map((w: { contentHash: string; ownerIdentity: string }) => [w.contentHash, w.ownerIdentity]),
        [[work.contentHash, `dave@${shop.domain}`]],
      );

      const transfer_ = (platform: RegisteredPlatform, body: Record<string, unknown>) =>
        as(platform.key, "POST", "/api/v1/broker/transfer", { body: { contentHash: work.contentHash, ...body } });
      // carol no longer owns it; an unknown user or work is refused alike.
      assertError(await transfer_(shop, { currentOwner: "carol", newOwner: "erin" }), 403, "NOT_OWNER");
      assertError(await transfer_(shop, { currentOwner: "nobody-here", newOwner: "erin" }), 403, "NOT_OWNER");
      assertError(await transfer_(shop, { contentHash: "1".repeat(64), currentOwner: "dave", newOwner: "erin" }), 403, "NOT_OWNER");
      // Another platform's "dave" is another person.
      assertError(await transfer_(gallery, { currentOwner: "dave", newOwner: "erin" }), 403, "NOT_OWNER");
      assertError(await transfer_(shop, { currentOwner: "dave", newOwner: `erin@${gallery.domain}` }), 403, "FORBIDDEN");
      assertError(await transfer_(gallery, { currentOwner: `dave@${shop.domain}`, newOwner: "erin" }), 403, "FORBIDDEN");
      assertError(await transfer_(shop, { currentOwner: "dave", newOwner: "dave" }), 400, "VALIDATION_ERROR");
    });

    test("keys: narrowed scopes are enforced; rotation keeps the caller until its overlap ends; revoked keys are refused", async () => {
      const narrowed = await as(shop.key, "POST", "/api/v1/broker/keys", {
        body: { name: "lookups", scopes: ["broker:verify"], expires_in_days: 30 },
      });
      assert.equal(narrowed.status, 201, JSON.stringify(narrowed.body));
      const lookupKey: string = narrowed.body.api_key;
      assert.match(lookupKey, KEY_FORMAT);
      assert.deepEqual(narrowed.body.key.scopes, ["broker:verify"]);
      assert.ok(Date.parse(narrowed.body.key.expires_at) > Date.now() + 29 * 86400_000);

      const refused = await as(lookupKey, "POST", "/api/v1/broker/protect", { body: { content: unique("x"), username: "alice" } });
      assertError(refused, 403, "INSUFFICIENT_SCOPE");
      assert.equal(refused.body.error.details.required, "broker:register");
      assertError(await as(lookupKey, "POST", "/api/v1/protect", { body: { content: unique("x") } }), 403, "INSUFFICIENT_SCOPE");
      assertError(
        await as(lookupKey, "POST", "/api/v1/broker/transfer", { body: { contentHash: "1".repeat(64), currentOwner: "a", newOwner: "b" } }),
        403,
        "INSUFFICIENT_SCOPE",
      );
      assertError(
        await as(lookupKey, "POST", "/api/v1/broker/keys", { body: { name: "wider", scopes: ["broker:register"] } }),
        403,
        "INSUFFICIENT_SCOPE",
      );
      assertError(
        await as(shop.key, "POST", "/api/v1/broker/keys", { body: { name: "odd", scopes: ["broker:admin"] } }),
        400,
        "VALIDATION_ERROR",
      );
      assert.equal((await as(lookupKey, "GET", "/api/v1/broker/content?username=alice")).status, 200);

      const rotated = await as(lookupKey, "POST", "/api/v1/broker/keys/rotate", { body: { overlap_hours: 2 } });
      assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
      const successor: string = rotated.body.api_key;
      assert.deepEqual(rotated.body.key.scopes, ["broker:verify"]);
      const overlapEnd = Date.parse(rotated.body.previous_key.expires_at);
      assert.ok(Math.abs(overlapEnd - (Date.now() + 2 * 3600_000)) < 60_000);
      // Both work during the overlap.
      assert.equal((await as(lookupKey, "GET", "/api/v1/broker/verify")).status, 200);
      assert.equal((await as(successor, "GET", "/api/v1/broker/verify")).status, 200);
      // Without overlap the caller stops at once.
      const immediate = await as(successor, "POST", "/api/v1/broker/keys/rotate", { body: { overlap_hours: 0 } });
      assert.equal(immediate.status, 201);
      assertError(await as(successor, "GET", "/api/v1/broker/verify"), 401, "UNAUTHORIZED");
      const third: string = immediate.body.api_key;

      const listed = await as(shop.key, "GET", "/api/v1/broker/keys");
      assert.equal(listed.status, 200);
      const states = Object.fromEntries(listed.body.keys.map((k: { prefix: string; status: string }) => [k.prefix, k.status]));
      assert.equal(states[successor.slice(0, 24)], "expired");
      assert.equal(states[third.slice(0, 24)], "active");
      for (const secret of [shop.key, lookupKey, successor, third]) assert.ok(!JSON.stringify(listed.body).includes(secret.slice(24)));

      const thirdId = immediate.body.key.id;
      const revoked = await as(shop.key, "DELETE", `/api/v1/broker/keys/${thirdId}`);
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.key.status, "revoked");
      assertError(await as(third, "GET", "/api/v1/broker/verify"), 401, "UNAUTHORIZED");
      // Another platform's key cannot be revoked from here.
      assertError(await as(gallery.key, "DELETE", `/api/v1/broker/keys/${narrowed.body.key.id}`), 404, "NOT_FOUND");
      // An administrator revokes a key.
      const byAdmin = await as(admin.accessToken, "DELETE", `/api/v1/admin/platforms/${shop.id}/keys/${narrowed.body.key.id}`);
      assert.equal(byAdmin.status, 200);
      assertError(await as(lookupKey, "GET", "/api/v1/broker/verify"), 401, "UNAUTHORIZED");
      const issued = await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${shop.id}/keys`, {
        body: { scopes: ["broker:webhooks"] },
      });
      assert.equal(issued.status, 201);
      assert.deepEqual((await as(issued.body.api_key, "GET", "/api/v1/broker/verify")).body.api_key.scopes, ["broker:webhooks"]);
      assertError(await as(`${shop.key.slice(0, 70)}00`, "GET", "/api/v1/broker/verify"), 401, "UNAUTHORIZED");
    });

    test("a rotated API_KEY_SECRET: keys hashed under the previous one work and are re-hashed under the new one", async () => {
      const before = system.api.effectiveConfig;
      const next = randomBytes(48).toString("base64url");
      await system.api.reloadSecrets({ ...before, API_KEY_SECRET: next, API_KEY_SECRET_PREVIOUS: API_KEY_SECRET });
      try {
        assert.equal((await as(gallery.key, "GET", "/api/v1/broker/verify")).status, 200);
        const row = await db()
          .selectFrom("platform_keys")
          .select("key_hash")
          .where("prefix", "=", gallery.key.slice(0, 24))
          .executeTakeFirstOrThrow();
        assert.equal(row.key_hash, createHmac("sha256", next).update(gallery.key).digest("hex"));
        // Once the previous secret is dropped, the re-hashed key still works.
        await system.api.reloadSecrets({ ...before, API_KEY_SECRET: next, API_KEY_SECRET_PREVIOUS: undefined });
        assert.equal((await as(gallery.key, "GET", "/api/v1/broker/verify")).status, 200);
      } finally {
        await system.api.reloadSecrets({ ...before, API_KEY_SECRET: next, API_KEY_SECRET_PREVIOUS: API_KEY_SECRET });
      }
      // Keys not used during the overlap (shop's) are hashed under the previous secret and work while it is kept.
      assert.equal((await as(shop.key, "GET", "/api/v1/broker/verify")).status, 200);
    });

    test("quotas: counted per hour and day, 429 QUOTA_EXCEEDED with headers when spent, refusals not counted; usage counts every call", async () => {
      const quoted = await registerPlatform(system, admin.accessToken, { domain: domain("quota") });
      const patched = await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${quoted.id}`, {
        body: { rate_limits: { hourly: 5 } },
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.deepEqual(patched.body.broker.rate_limits, { hourly: 5, daily: 1000, custom: true });

      const remaining: string[] = [];
      for (let i = 0; i < 4; i++) {
        const answer = await as(quoted.key, "POST", "/api/v1/broker/protect?wait=false", { body: { content: unique("q"), username: "u" } });
        assert.equal(answer.status, 202);
        remaining.push(answer.headers.get("x-ratelimit-remaining-hourly")!);
      }
      assert.deepEqual(remaining, ["4", "3", "2", "1"]);
      const fifth = await as(quoted.key, "GET", "/api/v1/broker/verify");
      assert.equal(fifth.status, 200);
      assert.equal(fifth.headers.get("x-ratelimit-remaining-hourly"), "0");
      assert.equal(fifth.headers.get("x-ratelimit-remaining-daily"), "995");
      assert.equal(fifth.headers.get("x-ratelimit-limit-daily"), "1000");
      const nextHour = new Date(Math.ceil((Date.now() + 1) / 3600_000) * 3600_000).toISOString();
      assert.equal(fifth.headers.get("x-ratelimit-reset-hourly"), nextHour);

      for (let i = 0; i < 2; i++) {
        const over = await as(quoted.key, "POST", "/api/v1/broker/protect", { body: { content: unique("over"), username: "u" } });
        assertError(over, 429, "QUOTA_EXCEEDED");
        assert.equal(over.body.error.details.hourly.remaining, 0);
        assert.equal(over.body.error.details.daily.remaining, 995);
        const retryAfter = Number(over.headers.get("retry-after"));
        assert.ok(retryAfter >= 1 && retryAfter <= 3600, String(retryAfter));
        for (const name of QUOTA_HEADERS) assert.ok(over.headers.get(name), name);
      }
      // Raised to 7: the 429s took nothing, so exactly two calls are left.
      await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${quoted.id}`, { body: { rate_limits: { hourly: 7 } } });
      const narrow = await as(quoted.key, "POST", "/api/v1/broker/keys", { body: { name: "narrow", scopes: ["broker:verify"] } });
      assert.equal(narrow.headers.get("x-ratelimit-remaining-hourly"), "1");
      // Refused for its scope after admission: given back.
      const scoped = await as(narrow.body.api_key, "POST", "/api/v1/broker/protect", { body: { content: unique("s"), username: "u" } });
      assertError(scoped, 403, "INSUFFICIENT_SCOPE");
      assert.equal(scoped.headers.get("x-ratelimit-remaining-hourly"), "1");
      // Over 31 days is refused, and counts.
      assertError(await as(quoted.key, "GET", "/api/v1/broker/usage?start_date=2025-01-01&end_date=2025-03-01"), 400, "VALIDATION_ERROR");
      assertError(await as(quoted.key, "GET", "/api/v1/broker/verify"), 429, "QUOTA_EXCEEDED");
      await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${quoted.id}`, { body: { rate_limits: { hourly: null } } });

      const usage = await as(quoted.key, "GET", "/api/v1/broker/usage");
      assert.equal(usage.status, 200, JSON.stringify(usage.body));
      // 4 protects, verify, 2 over quota, key creation, the refused scope, the refused range, verify over quota.
      assert.deepEqual(usage.body.summary.total_requests, 11);
      assert.equal(usage.body.summary.total_success, 6);
      assert.equal(usage.body.summary.total_errors, 5);
      assert.ok(usage.body.summary.avg_response_time > 0);
      const byRoute = Object.fromEntries(
        usage.body.usage.map((u: { method: string; endpoint: string; total_requests: number; hour: string }) => [
          `${u.method} ${u.endpoint}`,
          u.total_requests,
        ]),
      );
      assert.deepEqual(byRoute, {
        "POST /api/v1/broker/protect": 7,
        "GET /api/v1/broker/verify": 2,
        "POST /api/v1/broker/keys": 1,
        "GET /api/v1/broker/usage": 1,
      });
      assert.ok(usage.body.usage.every((u: { hour: string }) => u.hour.endsWith(":00:00.000Z")));
      const again = await as(quoted.key, "GET", "/api/v1/broker/usage?start_date=2020-01-01T00:00:00Z&end_date=2020-01-02");
      assert.equal(again.body.summary.total_requests, 0);
    });

    test("quotas hold under concurrency: of 8 simultaneous calls against 5 left, exactly 5 are served", async () => {
      const busy = await registerPlatform(system, admin.accessToken, { domain: domain("busy") });
      await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${busy.id}`, { body: { rate_limits: { hourly: 5 } } });
      const answers = await Promise.all(Array.from({ length: 8 }, () => as(busy.key, "GET", "/api/v1/broker/verify")));
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
      const remaining = answers.filter((a) => a.status === 200).map((a) => Number(a.headers.get("x-ratelimit-remaining-hourly")));
      assert.deepEqual(remaining.sort(), [0, 1, 2, 3, 4]);
    });

    test("signatures: checked when sent, required when the platform says so; wrong, stale and replayed ones are refused", async () => {
      const keys = signingKeys();
      const signed = await registerPlatform(system, admin.accessToken, {
        domain: domain("signed"),
        public_key: keys.publicKey,
        require_signature: true,
      });
      const path = "/api/v1/broker/protect?wait=false";
      const body = { content: unique("signed work"), username: "sam" };
      assertError(await as(signed.key, "POST", path, { body }), 401, "SIGNATURE_INVALID");
      const accepted = await as(signed.key, "POST", path, { body, signWith: keys.privateKey });
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
      assert.equal(accepted.body.ownerIdentity, `sam@${signed.domain}`);
      assert.equal((await as(signed.key, "GET", "/api/v1/broker/verify?x=1", { signWith: keys.privateKey })).status, 200);

      // The same request again, byte for byte: a replay.
      const replay = signatureHeaders(keys.privateKey, "GET", "/api/v1/broker/keys", "");
      assert.equal((await as(signed.key, "GET", "/api/v1/broker/keys", { headers: replay })).status, 200);
      assertError(await as(signed.key, "GET", "/api/v1/broker/keys", { headers: replay }), 401, "SIGNATURE_INVALID");
      // Another key, another body, another path, a stale or future time, garbage.
      assertError(await as(signed.key, "POST", path, { body, signWith: signingKeys().privateKey }), 401, "SIGNATURE_INVALID");
      const forBody = signatureHeaders(keys.privateKey, "POST", path, JSON.stringify({ ...body, username: "mallory" }));
      assertError(await as(signed.key, "POST", path, { body, headers: forBody }), 401, "SIGNATURE_INVALID");
      const forPath = signatureHeaders(keys.privateKey, "GET", "/api/v1/broker/verify", "");
      assertError(await as(signed.key, "GET", "/api/v1/broker/keys", { headers: forPath }), 401, "SIGNATURE_INVALID");
      const now = Math.floor(Date.now() / 1000);
      assertError(
        await as(signed.key, "GET", "/api/v1/broker/verify", { signWith: keys.privateKey, signedAt: now - 301 }),
        401,
        "SIGNATURE_INVALID",
      );
      assertError(
        await as(signed.key, "GET", "/api/v1/broker/verify", { signWith: keys.privateKey, signedAt: now + 301 }),
        401,
        "SIGNATURE_INVALID",
      );
      assert.equal((await as(signed.key, "GET", "/api/v1/broker/verify", { signWith: keys.privateKey, signedAt: now - 200 })).status, 200);
      const garbage = { "x-daon-timestamp": String(now), "x-daon-signature": "not-base64!" };
      assertError(await as(signed.key, "GET", "/api/v1/broker/verify", { headers: garbage }), 401, "SIGNATURE_INVALID");

      // Without require_signature a signature is optional, but checked when sent.
      assert.equal((await as(gallery.key, "GET", "/api/v1/broker/verify")).status, 200);
      assertError(await as(gallery.key, "GET", "/api/v1/broker/verify", { signWith: keys.privateKey }), 401, "SIGNATURE_INVALID");
      assertError(
        await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${gallery.id}`, { body: { require_signature: true } }),
        400,
        "VALIDATION_ERROR",
      );
      assertError(
        await as(admin.accessToken, "PATCH", `/api/v1/admin/platforms/${gallery.id}`, { body: { public_key: "bm90IGEga2V5" } }),
        400,
        "VALIDATION_ERROR",
      );
    });

    test("suspension: the platform's keys get 403 PLATFORM_NOT_ACTIVE until unsuspended; only administrators administer", async () => {
      const paused = await registerPlatform(system, admin.accessToken, { domain: domain("paused") });
      assert.equal((await as(paused.key, "GET", "/api/v1/broker/verify")).status, 200);
      assertError(
        await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${paused.id}/suspend`, { body: {} }),
        400,
        "VALIDATION_ERROR",
      );
      const suspended = await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${paused.id}/suspend`, {
        body: { reason: "abuse report" },
      });
      assert.equal(suspended.status, 200);
      assert.equal(suspended.body.broker.certification_status, "suspended");
      assert.equal(suspended.body.broker.suspend_reason, "abuse report");
      assertError(await as(paused.key, "GET", "/api/v1/broker/verify"), 403, "PLATFORM_NOT_ACTIVE");
      assertError(await as(paused.key, "POST", "/api/v1/protect", { body: { content: unique("x") } }), 403, "PLATFORM_NOT_ACTIVE");
      assertError(await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${paused.id}/approve`), 400, "VALIDATION_ERROR");
      // A refused change leaves no audit entry: the entry commits with the change or not at all.
      const approvals = await as(admin.accessToken, "GET", `/api/v1/admin/audit-log?action=platform.approve&target_id=${paused.id}`);
      assert.equal(approvals.body.items.length, 1);

      const listed = await as(admin.accessToken, "GET", "/api/v1/admin/platforms?status=suspended");
      assert.deepEqual(
        listed.body.items.map((p: { id: string }) => p.id),
        [paused.id],
      );
      const all = await as(admin.accessToken, "GET", "/api/v1/admin/platforms?limit=2");
      assert.equal(all.body.items.length, 2);
      const next = await as(admin.accessToken, "GET", `/api/v1/admin/platforms?limit=100&cursor=${all.body.nextCursor}`);
      const ids = [...all.body.items, ...next.body.items].map((p: { id: string }) => p.id);
      assert.equal(new Set(ids).size, ids.length);
      assert.ok(ids.includes(shop.id) && ids.includes(gallery.id) && ids.includes(paused.id));

      const unsuspended = await as(admin.accessToken, "POST", `/api/v1/admin/platforms/${paused.id}/unsuspend`);
      assert.equal(unsuspended.body.broker.certification_status, "active");
      assert.equal(unsuspended.body.broker.suspend_reason, null);
      assert.equal((await as(paused.key, "GET", "/api/v1/broker/verify")).status, 200);

      const actions = await as(
        admin.accessToken,
        "GET",
        `/api/v1/admin/audit-log?action=platform.suspend&since=${new Date(Date.now() - 60_000).toISOString()}`,
      );
      assert.deepEqual(
        actions.body.items.map((e: { target_id: string; details: { reason: string } }) => [e.target_id, e.details.reason]),
        [[paused.id, "abuse report"]],
      );

      // Nobody else administers, and each refusal is logged as a security event.
      const before = system.logs.length;
      assertError(await as(creator.accessToken, "GET", "/api/v1/admin/platforms"), 403, "FORBIDDEN");
      assertError(
        await as(undefined, "POST", `/api/v1/admin/platforms/${paused.id}/suspend`, { body: { reason: "x" } }),
        401,
        "UNAUTHORIZED",
      );
      assertError(await as(paused.key, "GET", "/api/v1/admin/audit-log"), 401, "UNAUTHORIZED");
      assertError(
        await as(creator.accessToken, "POST", "/api/v1/broker/register", {
          body: { domain: domain("sneaky"), name: "S", contact_email: "s@s.example" },
        }),
        403,
        "FORBIDDEN",
      );
      const events = system.logs
        .slice(before)
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.security === true);
      assert.equal(events.length, 4);
      assert.deepEqual(
        events.map((e) => e.caller.kind),
        ["user", "anonymous", "platform", "user"],
      );
      assert.ok(!system.logs.some((line) => line.includes(paused.key.slice(24)) || line.includes(shop.key.slice(24))));
      assert.equal((await as(admin.accessToken, "GET", "/api/v1/admin/platforms/pl_unknown")).status, 404);
    });
  });
}
