import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { hashText } from "@daon/core";
import { type Creator, Mailbox } from "./accounts-journey.js";
import { type RegisteredPlatform, registerPlatform, signIn } from "./platforms-journey.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const BODY_LIMIT = 64 * 1024;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

for (const storage of STORAGE_PATHS) {
  describe(`bulk protect (${storage})`, () => {
    let system: TestSystem;
    let mailbox: Mailbox;
    let creator: Creator;
    let gallery: RegisteredPlatform;
    let seq = 0;
    /** Each test is its own client (X-Forwarded-For from loopback is trusted), with its own per-IP limit. */
    const unique = (label: string) => `${label} ${storage} ${++seq} ${randomBytes(6).toString("hex")}`;

    const post = async (path: string, body: unknown, options: { ip?: string; credential?: string } = {}) => {
      const response = await fetch(`${system.apiUrl}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(options.ip ? { "x-forwarded-for": options.ip } : {}),
          ...(options.credential ? { authorization: `Bearer ${options.credential}` } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, headers: response.headers, body: await response.json() };
    };
    const verify = async (hash: string) => (await fetch(`${system.apiUrl}/api/v1/verify/${hash}`)).json();
    /** The ledger's own record of where a content hash was registered (CometBFT tx_search over the node's RPC). */
    const onLedger = async (contentHash: string) => {
      const query = encodeURIComponent(`"content_registered.content_hash='sha256:${contentHash}'"`);
      const answer = await (await fetch(`${system.rpcUrl}/tx_search?query=${query}`)).json();
      assert.equal(answer.result.total_count, "1", JSON.stringify(answer));
      const [tx] = answer.result.txs;
      return { height: Number(tx.height), txHash: tx.hash as string, code: tx.tx_result.code as number };
    };

    before(async () => {
      mailbox = await Mailbox.start();
      system = await startTestSystem(storage, {
        PROTECT_RATE_LIMIT_MAX: "5",
        BODY_LIMIT_JSON: String(BODY_LIMIT),
        SMTP_URL: mailbox.url,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        JWT_SECRET: randomBytes(48).toString("base64url"),
        API_KEY_SECRET: randomBytes(32).toString("hex"),
        ADMIN_EMAILS: "admin@daon.example",
      });
      const [admin, signedIn] = await Promise.all([
        signIn(system, mailbox, "admin@daon.example", "203.0.113.10"),
        signIn(system, mailbox, "creator@daon.example", "203.0.113.11"),
      ]);
      creator = signedIn;
      gallery = await registerPlatform(system, admin.accessToken, {
        domain: `gallery-${storage}-${randomBytes(3).toString("hex")}.example`,
      });
    });
    after(async () => {
      await system?.stop();
      await mailbox?.stop();
    });

    test("valid, invalid, known and twin works: exact counts, results in input order, the created ones on the ledger", async () => {
      const known = await post("/api/v1/protect", { contentHash: sha256(unique("known")) }, { ip: "198.51.100.1" });
      assert.equal(known.status, 201, JSON.stringify(known.body));
      const text = unique("<p>a bulk poem</p>");
      const freshHash = sha256(unique("fresh"));

      const answer = await post(
        "/api/v1/protect/bulk",
        {
          works: [
            { content: text, metadata: { title: "Poem" } },
            { contentHash: `sha256:${known.body.contentHash.toUpperCase()}` },
            { content: unique("refused"), license: "not-a-licence" },
            { content: text, metadata: { title: "The same poem again" } },
            { contentHash: freshHash },
          ],
        },
        { ip: "198.51.100.2" },
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const { results, ...counts } = answer.body;
      assert.deepEqual(counts, { success: true, total: 5, created: 2, existing: 2, failed: 1, protected: 4 });
      assert.deepEqual(
        results.map((r: { index: number; success: boolean; existing?: boolean }) => [r.index, r.success, r.existing]),
        [
          [0, true, false],
          [1, true, true],
          [2, false, undefined],
          [3, true, true],
          [4, true, false],
        ],
      );
      assert.equal(results[0].contentHash, hashText(text));
      assert.equal(results[0].metadata.title, "Poem");
      assert.equal(results[1].protectionId, known.body.protectionId, "a known hash answers its first registration");
      assert.deepEqual(
        results[2].error.details.fields.map((f: { field: string }) => f.field),
        ["license"],
      );
      assert.equal(results[2].error.code, "VALIDATION_ERROR");
      assert.equal(results[3].protectionId, results[0].protectionId, "the later twin is the first one's registration");
      assert.equal(results[3].metadata.title, "Poem");
      assert.equal(results[4].contentHash, freshHash);

      // wait (default true) covers the batch: both created works answer confirmed, as the ledger has them.
      for (const created of [results[0], results[4]]) {
        assert.equal(created.status, "confirmed");
        assert.equal(created.blockchain.verified, true);
        const ledger = await onLedger(created.contentHash);
        assert.equal(ledger.code, 0);
        assert.equal(ledger.height, created.blockHeight);
        assert.equal(ledger.txHash, created.txHash);
      }
      assert.equal((await verify(results[0].contentHash)).protectionId, results[0].protectionId);
    });

    test("top-level fields are defaults that each work may override; wait=false answers pending at once", async () => {
      const [first, second] = [unique("default work"), unique("own work")];
      const answer = await post(
        "/api/v1/protect/bulk?wait=false",
        {
          license: "cc0",
          ai_training_policy: "contact_required",
          licensing_email: "rights@example.org",
          metadata: { author: "Ada", type: "test" },
          works: [
            { content: first },
            {
              content: second,
              license: "CC-BY",
              ai_training_policy: "open",
              licensing_email: null,
              metadata: { title: "Own", type: "poem" },
            },
            42,
            { contentHash: "not-a-hash" },
          ],
        },
        { ip: "198.51.100.3" },
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const [a, b, c, d] = answer.body.results;
      assert.equal(a.license, "cc0");
      assert.equal(a.ai_training_policy, "contact_required");
      assert.equal(a.licensing_email, "rights@example.org");
      assert.deepEqual(a.metadata, { author: "Ada", type: "test", title: "Untitled Work", description: null });
      assert.equal(a.status, "pending");
      assert.equal(b.license, "cc-by");
      assert.equal(b.ai_training_policy, "open");
      assert.equal(b.licensing_email, null);
      assert.deepEqual(b.metadata, { author: "Ada", type: "poem", title: "Own", description: null });
      assert.equal(c.success, false);
      assert.equal(c.error.code, "VALIDATION_ERROR");
      assert.equal(d.success, false);
      assert.equal(d.error.code, "INVALID_HASH");
      assert.equal(answer.body.created, 2);
      assert.equal(answer.body.failed, 2);
    });

    test("anonymous: each work costs one unit of the per-IP protect limit; too few left → 429 and nothing written", async () => {
      const ip = "198.51.100.4";
      const six = Array.from({ length: 6 }, () => ({ contentHash: sha256(unique("limited")) }));
      const refused = await post("/api/v1/protect/bulk", { works: six }, { ip });
      assert.equal(refused.status, 429, JSON.stringify(refused.body));
      assert.equal(refused.body.success, false);
      assert.equal(refused.body.error.code, "RATE_LIMITED");
      assert.deepEqual(refused.body.error.details, { limit: 5, requested: 6, remaining: 5 });
      assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
      for (const work of six) assert.equal((await verify(work.contentHash)).isValid, false, "nothing was written");

      // The refusal took nothing: five works fit, and then single protect from that IP has none left either.
      const five = await post("/api/v1/protect/bulk?wait=false", { works: six.slice(0, 5) }, { ip });
      assert.equal(five.status, 200, JSON.stringify(five.body));
      assert.equal(five.body.created, 5);
      assert.equal(five.headers.get("ratelimit-remaining"), "0");
      const single = await post("/api/v1/protect?wait=false", { contentHash: six[5].contentHash }, { ip });
      assert.equal(single.status, 429);
      assert.equal(single.body.error.code, "RATE_LIMITED");
      // Another client is not affected.
      const other = await post("/api/v1/protect/bulk?wait=false", { works: [six[5]] }, { ip: "198.51.100.5" });
      assert.equal(other.body.created, 1);
    });

    test("a signed-in creator's works are theirs; a platform's are its users', paid from its quota one unit per work", async () => {
      const mine = await post(
        "/api/v1/protect/bulk?wait=false",
        { works: [{ content: unique("mine") }] },
        { credential: creator.accessToken },
      );
      assert.equal(mine.status, 200, JSON.stringify(mine.body));
      assert.equal(mine.body.results[0].owner, creator.user.owner_id);
      const named = await post(
        "/api/v1/protect/bulk?wait=false",
        { works: [{ content: unique("x"), username: "ada" }] },
        { ip: "198.51.100.6" },
      );
      assert.equal(named.body.results[0].error.code, "VALIDATION_ERROR", "only a platform key may name a user");

      const works = [
        { content: unique("for ada"), username: "ada" },
        { content: unique("for bob"), username: "bob" },
        { content: unique("for nobody") },
        { content: unique("bad user"), username: "no spaces allowed" },
      ];
      const answer = await post("/api/v1/protect/bulk?wait=false", { works }, { credential: gallery.key });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const [ada, bob, nobody, bad] = answer.body.results;
      assert.equal(ada.ownerIdentity, `ada@${gallery.domain}`);
      assert.equal(bob.ownerIdentity, `bob@${gallery.domain}`);
      assert.notEqual(ada.owner, bob.owner);
      assert.equal(nobody.owner, null);
      assert.equal(nobody.broker.domain, gallery.domain);
      assert.equal(bad.error.code, "VALIDATION_ERROR");
      // Community tier: 100 an hour; four works took four units.
      assert.equal(answer.headers.get("x-ratelimit-remaining-hourly"), "96");
    });

    test("the body's shape is checked as a whole: works must be an array of 1 to 100", async () => {
      const ip = "198.51.100.7";
      const tooMany = await post(
        "/api/v1/protect/bulk",
        { works: Array.from({ length: 101 }, (_, i) => ({ contentHash: sha256(`w${i}`) })) },
        { ip },
      );
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.body.error.code, "VALIDATION_ERROR");
      assert.ok(
        tooMany.body.error.details.fields.some((f: { field: string }) => f.field === "body.works"),
        JSON.stringify(tooMany.body),
      );
      for (const body of [{ works: { content: "x" } }, { works: "x" }, { works: [] }, {}, [{ content: "x" }]]) {
        const answer = await post("/api/v1/protect/bulk", body, { ip });
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(answer.body.error.code, "VALIDATION_ERROR", JSON.stringify(answer.body));
        assert.match(answer.body.error.requestId, /.+/);
      }
    });

    test("a body over BODY_LIMIT_JSON gets the 413 envelope", async () => {
      const answer = await post("/api/v1/protect/bulk", { works: [{ content: "x".repeat(BODY_LIMIT + 10) }] }, { ip: "198.51.100.8" });
      assert.equal(answer.status, 413);
      assert.equal(answer.body.success, false);
      assert.equal(answer.body.error.code, "PAYLOAD_TOO_LARGE");
      assert.equal(answer.body.error.details.limit, BODY_LIMIT);
      assert.match(answer.body.error.requestId, /.+/);
    });
  });
}
