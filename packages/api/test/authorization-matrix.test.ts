/**
 * Who may call what: every /api/v1 endpoint × every kind of caller → the documented answer
 * (api.md §1–§6), on both storage paths. Callers: nobody, two creators, a platform key per
 * scope, a key of another platform, a revoked key, a suspended platform's key, an
 * administrator. Where a call succeeds, `check` also proves the caller saw only its own.
 *
 * To add an endpoint, add a row to ROWS: its route, the path and body to call it with, and
 * the answers by caller (groups `users` and `keys` cover several callers; a named caller
 * overrides its group). Revoked keys and suspended platforms are refused on every row.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Answer, type Creator, Mailbox } from "./accounts-journey.js";
import { call, confirmed, type RegisteredPlatform, registerPlatform, signIn } from "./platforms-journey.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const CALLERS = [
  "anonymous",
  "creator",
  "other",
  "register",
  "verify",
  "transfer",
  "webhooks",
  "otherPlatform",
  "revoked",
  "suspended",
  "admin",
] as const;
type Caller = (typeof CALLERS)[number];
/** Signed-in accounts. */
const USERS: Caller[] = ["creator", "other", "admin"];
/** Valid platform keys: one scope each on the main platform, all scopes on another. */
const KEYS: Caller[] = ["register", "verify", "transfer", "webhooks", "otherPlatform"];

/** "status" or "status CODE". */
type Outcome = string;
type Expect = Partial<Record<Caller | "users" | "keys" | "all", Outcome>>;

interface Fixtures {
  credentials: Partial<Record<Caller, string>>;
  accounts: Record<"creator" | "other" | "admin", Creator>;
  main: RegisteredPlatform;
  otherPlatform: RegisteredPlatform;
  /** Confirmed, owned by the creator's account. */
  creatorWork: { contentHash: string; content: string };
  /** Confirmed, owned by alice@<main platform>. */
  aliceWork: { contentHash: string; owner: string };
  pendingPlatform: string;
  suspendTarget: string;
  victimKeys: { admin: string; broker: string };
  webhook: string;
  victimWebhook: string;
  /** Unique per call, for bodies that must not repeat. */
  unique(): string;
}

interface Row {
  /** Method and route template, as documented. */
  route: string;
  /** The concrete path (default: the template). */
  path?: (f: Fixtures) => string;
  body?: (f: Fixtures, caller: Caller) => unknown;
  expect: Expect;
  /** On a 2xx: what this caller may and may not see. */
  check?: (answer: Answer, caller: Caller, f: Fixtures) => void;
  /** Outside /api/v1 bearer credentials are not read at all: revoked and suspended keys answer as the `all` entry. */
  outsideApi?: boolean;
  /** A known defect, reported but not failing the run (node:test `todo`). */
  todo?: string;
}

const OK = "200";
const CREATED = "201";
const ACCEPTED = "202";
const UNAUTHORIZED = "401 UNAUTHORIZED";
const FORBIDDEN = "403 FORBIDDEN";
const SCOPE = "403 INSUFFICIENT_SCOPE";
const NOT_FOUND = "404 NOT_FOUND";
const NOT_OWNER = "403 NOT_OWNER";
const INVALID_TOKEN = "401 INVALID_TOKEN";

/** Public content: anyone with a valid credential, or none. */
const PUBLIC: Expect = { all: OK };
/** Signed-in accounts only. */
const SIGNED_IN: Expect = { all: UNAUTHORIZED, users: OK };
/** Administrators only: other accounts are forbidden, keys and nobody unauthorized. */
const ADMIN = (outcome: Outcome): Expect => ({ all: UNAUTHORIZED, creator: FORBIDDEN, other: FORBIDDEN, admin: outcome });
/** Any platform key, whatever its scopes. */
const ANY_KEY: Expect = { all: UNAUTHORIZED, keys: OK };
/** Platform keys with one scope (the other platform's key has all four). */
const SCOPED = (scope: Caller, outcome: Outcome, otherPlatform = outcome): Expect => ({
  all: UNAUTHORIZED,
  keys: SCOPE,
  [scope]: outcome,
  otherPlatform,
});
/** A code-confirmed account action with a wrong code. */
const WRONG_CODE: Expect = { all: UNAUTHORIZED, users: "401 INVALID_CODE" };

const ROWS: Row[] = [
  // Content (api.md §2): public; protect names the caller as owner, platform keys need broker:register.
  { route: "GET /api/v1", expect: PUBLIC },
  { route: "GET /api/v1/health", expect: PUBLIC },
  { route: "GET /api/v1/stats", expect: PUBLIC },
  { route: "GET /api/v1/chain/genesis-validators", expect: PUBLIC },
  { route: "GET /api/v1/openapi.json", expect: PUBLIC },
  {
    route: "POST /api/v1/protect",
    path: () => "/api/v1/protect?wait=false",
    body: (f) => ({ content: f.unique() }),
    expect: { all: ACCEPTED, verify: SCOPE, transfer: SCOPE, webhooks: SCOPE },
    check: (answer, caller, f) => {
      const owner = caller === "creator" || caller === "other" || caller === "admin" ? f.accounts[caller].user.owner_id : null;
      assert.equal(answer.body.owner, owner);
    },
  },
  {
    route: "POST /api/v1/protect/bulk",
    path: () => "/api/v1/protect/bulk?wait=false",
    body: (f) => ({ works: [{ content: f.unique() }] }),
    expect: { all: OK, verify: SCOPE, transfer: SCOPE, webhooks: SCOPE },
    check: (answer, caller, f) => {
      const owner = caller === "creator" || caller === "other" || caller === "admin" ? f.accounts[caller].user.owner_id : null;
      assert.equal(answer.body.results[0].owner, owner);
    },
  },
  { route: "GET /api/v1/verify/:hash", path: (f) => `/api/v1/verify/${f.creatorWork.contentHash}`, expect: PUBLIC },
  { route: "POST /api/v1/verify-content", body: (f) => ({ content: f.creatorWork.content }), expect: PUBLIC },
  { route: "GET /api/v1/proof/:hash", path: (f) => `/api/v1/proof/${f.creatorWork.contentHash}`, expect: PUBLIC },
  { route: "GET /api/v1/content/:hash/history", path: (f) => `/api/v1/content/${f.creatorWork.contentHash}/history`, expect: PUBLIC },
  { route: "GET /api/v1/transfer-history/:hash", path: (f) => `/api/v1/transfer-history/${f.creatorWork.contentHash}`, expect: PUBLIC },

  // Accounts (api.md §3): credentials in the body answer alike whoever calls; the rest is the account's own.
  {
    route: "POST /api/v1/auth/magic-link",
    body: (f) => ({ email: `${f.unique().replace(/\W/g, "")}@matrix.example` }),
    expect: { all: "202" },
  },
  { route: "POST /api/v1/auth/verify", body: () => ({ token: "A".repeat(43) }), expect: { all: INVALID_TOKEN } },
  { route: "POST /api/v1/auth/2fa/setup", body: () => ({ session_id: "A".repeat(43) }), expect: { all: INVALID_TOKEN } },
  {
    route: "POST /api/v1/auth/2fa/verify-setup",
    body: () => ({ session_id: "A".repeat(43), code: "000000" }),
    expect: { all: INVALID_TOKEN },
  },
  { route: "POST /api/v1/auth/2fa/complete", body: () => ({ session_id: "A".repeat(43), code: "000000" }), expect: { all: INVALID_TOKEN } },
  { route: "POST /api/v1/auth/refresh", body: () => ({ refresh_token: "A".repeat(43) }), expect: { all: INVALID_TOKEN } },
  { route: "POST /api/v1/auth/logout", body: () => ({ refresh_token: "A".repeat(43) }), expect: { all: INVALID_TOKEN } },
  { route: "POST /api/v1/auth/logout-all", body: () => ({ code: "000000" }), expect: WRONG_CODE },
  { route: "POST /api/v1/auth/2fa/backup-codes/regenerate", body: () => ({ code: "000000" }), expect: WRONG_CODE },
  { route: "POST /api/v1/auth/2fa/reset", body: () => ({ code: "000000" }), expect: WRONG_CODE },
  {
    route: "GET /api/v1/me",
    expect: SIGNED_IN,
    check: (answer, caller, f) => assert.equal(answer.body.user.id, f.accounts[caller as "creator"].user.id),
  },
  {
    route: "GET /api/v1/me/works",
    path: () => "/api/v1/me/works?limit=100",
    expect: SIGNED_IN,
    check: (answer, caller, f) => {
      const hashes = answer.body.items.map((w: { contentHash: string }) => w.contentHash);
      assert.equal(hashes.includes(f.creatorWork.contentHash), caller === "creator");
      for (const work of answer.body.items) assert.equal(work.owner, f.accounts[caller as "creator"].user.owner_id);
    },
  },
  {
    route: "POST /api/v1/me/works/:hash/transfer",
    path: (f) => `/api/v1/me/works/${f.creatorWork.contentHash}/transfer?wait=false`,
    body: (f) => ({ to: f.aliceWork.owner, code: "000000" }),
    expect: { all: UNAUTHORIZED, creator: "401 INVALID_CODE", other: NOT_OWNER, admin: NOT_OWNER },
  },

  // Platforms (api.md §4): the caller's own platform only.
  {
    route: "POST /api/v1/broker/protect",
    path: () => "/api/v1/broker/protect?wait=false",
    body: (f) => ({ content: f.unique(), username: "alice" }),
    expect: SCOPED("register", ACCEPTED),
    check: (answer, caller, f) =>
      assert.equal(answer.body.ownerIdentity, `alice@${caller === "otherPlatform" ? f.otherPlatform.domain : f.main.domain}`),
  },
  {
    route: "GET /api/v1/broker/verify",
    expect: ANY_KEY,
    check: (answer, caller, f) => assert.equal(answer.body.broker.id, caller === "otherPlatform" ? f.otherPlatform.id : f.main.id),
  },
  {
    route: "GET /api/v1/broker/content/:hash",
    path: (f) => `/api/v1/broker/content/${f.aliceWork.contentHash}`,
    expect: SCOPED("verify", OK),
    check: (answer, caller, f) => assert.equal(answer.body.ownerIdentity, caller === "otherPlatform" ? null : `alice@${f.main.domain}`),
  },
  {
    route: "GET /api/v1/broker/content?username=",
    path: () => "/api/v1/broker/content?username=alice&limit=100",
    expect: SCOPED("verify", OK),
    check: (answer, caller, f) => {
      const hashes = answer.body.items.map((w: { contentHash: string }) => w.contentHash);
      assert.equal(hashes.includes(f.aliceWork.contentHash), caller !== "otherPlatform");
    },
  },
  {
    route: "POST /api/v1/broker/transfer",
    body: (f) => ({ contentHash: f.creatorWork.contentHash, currentOwner: "alice", newOwner: "bob" }),
    expect: SCOPED("transfer", NOT_OWNER),
  },
  {
    route: "POST /api/v1/broker/transfer (users of another domain)",
    path: () => "/api/v1/broker/transfer",
    body: (f) => ({
      contentHash: f.aliceWork.contentHash,
      currentOwner: `alice@${f.main.domain}`,
      newOwner: `bob@${f.otherPlatform.domain}`,
    }),
    expect: SCOPED("transfer", FORBIDDEN),
  },
  { route: "GET /api/v1/broker/usage", expect: ANY_KEY },
  {
    route: "GET /api/v1/broker/keys",
    expect: ANY_KEY,
    check: (answer, caller, f) => {
      const prefixes = answer.body.keys.map((k: { prefix: string }) => k.prefix);
      const own = caller === "otherPlatform" ? f.otherPlatform.key : f.main.key;
      const foreign = caller === "otherPlatform" ? f.main.key : f.otherPlatform.key;
      assert.ok(prefixes.includes(own.slice(0, 24)));
      assert.ok(!prefixes.includes(foreign.slice(0, 24)));
      assert.ok(!JSON.stringify(answer.body).includes(own.slice(24)));
    },
  },
  // No scopes named: all four, which only a key holding all four may grant.
  {
    route: "POST /api/v1/broker/keys",
    body: () => ({ name: "matrix" }),
    expect: { all: UNAUTHORIZED, keys: SCOPE, otherPlatform: CREATED },
  },
  {
    route: "DELETE /api/v1/broker/keys/:id",
    path: (f) => `/api/v1/broker/keys/${f.victimKeys.broker}`,
    expect: { ...ANY_KEY, otherPlatform: NOT_FOUND },
  },
  {
    route: "POST /api/v1/broker/keys/rotate",
    expect: { all: UNAUTHORIZED, keys: CREATED },
    // No body: the default overlap of 24 hours, so the caller keeps working in the rows after this one.
    check: (answer) => assert.ok(Date.parse(answer.body.previous_key.expires_at) > Date.now() + 23 * 3600_000),
  },

  // Webhooks (api.md §5): broker:webhooks, the platform's own webhooks only (others 404).
  {
    route: "POST /api/v1/broker/webhooks",
    body: () => ({ url: "http://127.0.0.1:9/hook", events: ["content.protected"] }),
    expect: SCOPED("webhooks", CREATED),
  },
  {
    route: "GET /api/v1/broker/webhooks",
    path: () => "/api/v1/broker/webhooks?limit=100",
    expect: SCOPED("webhooks", OK),
    check: (answer, caller, f) =>
      assert.equal(
        answer.body.items.some((w: { id: string }) => w.id === f.webhook),
        caller === "webhooks",
      ),
  },
  {
    route: "GET /api/v1/broker/webhooks/:id",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}`,
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },
  {
    route: "PATCH /api/v1/broker/webhooks/:id",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}`,
    body: () => ({ description: "changed" }),
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },
  {
    route: "GET /api/v1/broker/webhooks/:id/stats",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}/stats`,
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },
  {
    route: "GET /api/v1/broker/webhooks/:id/deliveries",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}/deliveries`,
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },
  {
    route: "POST /api/v1/broker/webhooks/:id/deliveries/:deliveryId/redeliver",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}/deliveries/d_unknown/redeliver`,
    expect: SCOPED("webhooks", NOT_FOUND),
  },
  {
    route: "POST /api/v1/broker/webhooks/:id/test",
    path: (f) => `/api/v1/broker/webhooks/${f.webhook}/test`,
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },
  {
    route: "DELETE /api/v1/broker/webhooks/:id",
    path: (f) => `/api/v1/broker/webhooks/${f.victimWebhook}`,
    expect: SCOPED("webhooks", OK, NOT_FOUND),
  },

  // Outside the public API: no credential opens what operators keep to themselves (from a public client address).
  { route: "GET /health", expect: { all: OK }, outsideApi: true },
  { route: "GET /metrics", expect: { all: NOT_FOUND }, outsideApi: true },
  { route: "GET /internal/ops/config", expect: { all: NOT_FOUND }, outsideApi: true },
  {
    route: "POST /internal/ops/loadtest-key",
    body: () => ({ purpose: "smoke", durationSeconds: 60 }),
    expect: { all: NOT_FOUND },
    outsideApi: true,
  },

  // Administration (api.md §6).
  { route: "GET /api/v1/admin/platforms", expect: ADMIN(OK) },
  {
    route: "POST /api/v1/admin/platforms",
    body: () => ({ domain: `${randomBytes(6).toString("hex")}.matrix.example`, name: "M", contact_email: "m@matrix.example" }),
    expect: ADMIN(CREATED),
  },
  {
    route: "POST /api/v1/broker/register",
    body: () => ({ domain: `${randomBytes(6).toString("hex")}.matrix.example`, name: "M", contact_email: "m@matrix.example" }),
    expect: ADMIN(CREATED),
  },
  {
    route: "GET /api/v1/admin/platforms/:id",
    path: (f) => `/api/v1/admin/platforms/${f.main.id}`,
    expect: ADMIN(OK),
    check: (answer, _caller, f) => assert.equal(answer.body.broker.contact_email, `ops@${f.main.domain}`),
  },
  {
    route: "PATCH /api/v1/admin/platforms/:id",
    path: (f) => `/api/v1/admin/platforms/${f.main.id}`,
    body: () => ({ name: "Main" }),
    expect: ADMIN(OK),
  },
  {
    route: "POST /api/v1/admin/platforms/:id/approve",
    path: (f) => `/api/v1/admin/platforms/${f.pendingPlatform}/approve`,
    expect: ADMIN(OK),
  },
  {
    route: "POST /api/v1/admin/platforms/:id/suspend",
    path: (f) => `/api/v1/admin/platforms/${f.suspendTarget}/suspend`,
    body: () => ({ reason: "matrix" }),
    expect: ADMIN(OK),
  },
  {
    route: "POST /api/v1/admin/platforms/:id/unsuspend",
    path: (f) => `/api/v1/admin/platforms/${f.suspendTarget}/unsuspend`,
    expect: ADMIN(OK),
  },
  {
    route: "POST /api/v1/admin/platforms/:id/keys",
    path: (f) => `/api/v1/admin/platforms/${f.main.id}/keys`,
    body: () => ({}),
    expect: ADMIN(CREATED),
  },
  {
    route: "DELETE /api/v1/admin/platforms/:id/keys/:keyId",
    path: (f) => `/api/v1/admin/platforms/${f.main.id}/keys/${f.victimKeys.admin}`,
    expect: ADMIN(OK),
  },
  { route: "GET /api/v1/admin/audit-log", expect: ADMIN(OK) },
];

function expected(row: Row, caller: Caller): Outcome {
  if (caller === "revoked" && !row.outsideApi) return UNAUTHORIZED;
  if (caller === "suspended" && !row.outsideApi) return "403 PLATFORM_NOT_ACTIVE";
  const group = USERS.includes(caller) ? "users" : KEYS.includes(caller) ? "keys" : undefined;
  const outcome = row.expect[caller] ?? (group && row.expect[group]) ?? row.expect.all;
  assert.ok(outcome, `${row.route}: no answer given for ${caller}`);
  return outcome;
}

const outcomeOf = (answer: Answer): Outcome =>
  answer.status < 300 ? String(answer.status) : `${answer.status} ${answer.body?.error?.code ?? "(no code)"}`;

for (const storage of STORAGE_PATHS) {
  describe(`authorization matrix (${storage})`, () => {
    let system: TestSystem;
    let mailbox: Mailbox;
    let fixtures: Fixtures;
    let counter = 0;

    before(async () => {
      mailbox = await Mailbox.start();
      system = await startTestSystem(storage, {
        SMTP_URL: mailbox.url,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        JWT_SECRET: randomBytes(48).toString("base64url"),
        API_KEY_SECRET: randomBytes(48).toString("base64url"),
        ADMIN_EMAILS: "admin@matrix.example",
        WEBHOOK_ALLOW_HTTP: "true",
        WEBHOOK_ALLOWED_CIDRS: "127.0.0.0/8",
      });
      const [admin, creator, other] = await Promise.all([
        signIn(system, mailbox, "admin@matrix.example", "203.0.113.20"),
        signIn(system, mailbox, "creator@matrix.example", "203.0.113.21"),
        signIn(system, mailbox, "other@matrix.example", "203.0.113.22"),
      ]);
      const token = admin.accessToken;
      const domain = (name: string) => `${name}.${storage}.matrix.example`;
      const [main, otherPlatform, suspended, pending, suspendTarget] = await Promise.all([
        registerPlatform(system, token, { domain: domain("main"), certification_tier: "enterprise" }),
        registerPlatform(system, token, { domain: domain("other"), certification_tier: "enterprise" }),
        registerPlatform(system, token, { domain: domain("suspended") }),
        registerPlatform(system, token, { domain: domain("pending") }, false),
        registerPlatform(system, token, { domain: domain("target") }),
      ]);
      const suspension = await call(system, "POST", `/api/v1/admin/platforms/${suspended.id}/suspend`, {
        credential: token,
        body: { reason: "matrix" },
      });
      assert.equal(suspension.status, 200);

      const issue = async (scopes?: string[]) => {
        const answer = await call(system, "POST", `/api/v1/admin/platforms/${main.id}/keys`, { credential: token, body: { scopes } });
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        return { key: answer.body.api_key as string, id: answer.body.key.id as string };
      };
      const scoped = Object.fromEntries(
        await Promise.all(
          (["register", "verify", "transfer", "webhooks"] as const).map(async (scope) => [scope, (await issue([`broker:${scope}`])).key]),
        ),
      ) as Record<"register" | "verify" | "transfer" | "webhooks", string>;
      const revoked = await issue();
      assert.equal(
        (await call(system, "DELETE", `/api/v1/admin/platforms/${main.id}/keys/${revoked.id}`, { credential: token })).status,
        200,
      );

      const creatorContent = `the creator's work ${randomBytes(8).toString("hex")}`;
      const creatorWork = await call(system, "POST", "/api/v1/protect", {
        credential: creator.accessToken,
        body: { content: creatorContent },
      });
      assert.ok([201, 202].includes(creatorWork.status), JSON.stringify(creatorWork.body));
      const aliceWork = await call(system, "POST", "/api/v1/broker/protect", {
        credential: main.key,
        body: { content: `alice's work ${randomBytes(8).toString("hex")}`, username: "alice" },
      });
      assert.ok([201, 202].includes(aliceWork.status), JSON.stringify(aliceWork.body));
      await Promise.all([confirmed(system, creatorWork.body.contentHash), confirmed(system, aliceWork.body.contentHash)]);
      const hook = async () => {
        const answer = await call(system, "POST", "/api/v1/broker/webhooks", {
          credential: main.key,
          body: { url: "http://127.0.0.1:9/hook", events: ["content.protected"] },
        });
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        return answer.body.webhook.id as string;
      };

      fixtures = {
        credentials: {
          creator: creator.accessToken,
          other: other.accessToken,
          admin: admin.accessToken,
          ...scoped,
          otherPlatform: otherPlatform.key,
          revoked: revoked.key,
          suspended: suspended.key,
        },
        accounts: { creator, other, admin },
        main,
        otherPlatform,
        creatorWork: { contentHash: creatorWork.body.contentHash, content: creatorContent },
        aliceWork: { contentHash: aliceWork.body.contentHash, owner: aliceWork.body.owner },
        pendingPlatform: pending.id,
        suspendTarget: suspendTarget.id,
        victimKeys: { admin: (await issue()).id, broker: (await issue()).id },
        webhook: await hook(),
        victimWebhook: await hook(),
        unique: () => `matrix ${storage} ${++counter} ${randomBytes(6).toString("hex")}`,
      };
    });
    after(async () => {
      await system?.stop();
      await mailbox?.stop();
    });

    for (const row of ROWS) {
      test(row.route, { todo: row.todo }, async () => {
        const want: Record<string, Outcome> = {};
        const got: Record<string, Outcome> = {};
        for (const [index, caller] of CALLERS.entries()) {
          const [method, template] = row.route.split(" ");
          const answer = await call(system, method, row.path?.(fixtures) ?? template, {
            credential: fixtures.credentials[caller],
            body: row.body?.(fixtures, caller),
            // One client address per caller: the per-IP limits are not what this test is about.
            headers: { "x-forwarded-for": `198.51.100.${index + 1}` },
          });
          want[caller] = expected(row, caller);
          got[caller] = outcomeOf(answer);
          if (answer.status < 300 && want[caller] === got[caller]) row.check?.(answer, caller, fixtures);
        }
        assert.deepEqual(got, want);
      });
    }
  });
}
