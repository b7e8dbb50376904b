/**
 * The SDK in Node against a started system (ledger node + API), on both storage paths: every
 * call a user makes — protect (text, file, hash, bulk), verify, proofs checked offline,
 * sign-in by link and TOTP, my works, transfer, sessions, platforms, keys, webhooks, admin —
 * with answers asserted as a user would read them, and refusals as typed errors.
 */
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import { STORAGE_PATHS } from "../../api/test/test-system.js";
import {
  type BulkResult,
  DaonApiError,
  DaonClient,
  ed25519Signer,
  hashText,
  type ProofBundle,
  ProofError,
  type Tokens,
  verifyProof,
  verifyWebhook,
  WebhookSignatureError,
} from "../src/index.js";
import { ADMIN_EMAIL, Authenticator, Mailbox, startSystemWithMail, type TestSystem, WebhookReceiver } from "./journey.js";

const JWT_SECRET = randomBytes(48).toString("base64url");
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
const unique = (label: string) => `${label} ${randomBytes(8).toString("hex")}`;

async function rejectsWith(promise: Promise<unknown>, status: number, code: string): Promise<DaonApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DaonApiError, `expected a DaonApiError, got ${error}`);
    assert.equal(error.status, status, error.message);
    assert.equal(error.code, code, error.message);
    assert.ok(error.requestId, "the error carries the request id");
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** A first sign-in through the SDK: link by mail, TOTP enrolment; the client then acts as the account. */
async function enrol(system: TestSystem, mailbox: Mailbox, email: string) {
  const tokens: (Tokens | undefined)[] = [];
  const daon = new DaonClient({ baseUrl: system.apiUrl, onTokens: (t) => tokens.push(t) });
  const before = mailbox.count(email);
  assert.match((await daon.auth.requestMagicLink(email)).message, /link/);
  const session = await daon.auth.verifyMagicLink(await mailbox.signInToken(email, before));
  assert.equal(session.stage, "setup");
  assert.equal(session.user.email, email);
  const enrolment = await daon.auth.setupTotp(session.session_id);
  assert.match(enrolment.qr_code, /^data:image\/png;base64,/);
  const app = new Authenticator(enrolment.manual_entry_key);
  const signedIn = await daon.auth.confirmTotp(session.session_id, await app.nextCode());
  assert.equal(signedIn.backup_codes.length, 10);
  assert.equal(daon.authenticated, true);
  assert.equal(tokens.at(-1)?.access_token, signedIn.access_token, "onTokens heard of the sign-in");
  return { daon, app, user: signedIn.user, tokens, backupCodes: signedIn.backup_codes };
}

for (const storage of STORAGE_PATHS) {
  describe(`the SDK in Node against a started system (${storage})`, () => {
    let system: TestSystem;
    let mailbox: Mailbox;
    let receiver: WebhookReceiver;
    let daon: DaonClient;
    /** Request bodies the client sent, as the network saw them. */
    const sent: { url: string; contentType: string | null; body: string }[] = [];
    before(async () => {
      mailbox = await Mailbox.start();
      receiver = await WebhookReceiver.start();
      system = await startSystemWithMail(storage, mailbox, { JWT_SECRET });
      daon = new DaonClient({
        baseUrl: system.apiUrl,
        fetch: async (input, init) => {
          const body = init?.body instanceof Uint8Array ? Buffer.from(init.body).toString("latin1") : String(init?.body ?? "");
          sent.push({ url: String(input), contentType: new Headers(init?.headers).get("content-type"), body });
          return fetch(input, init);
        },
      });
    });
    after(async () => {
      await system?.stop();
      await mailbox?.stop();
      await receiver?.stop();
    });

    test("protect registers a text on the ledger; a repeat answers with the first registration", async () => {
      const text = `<p>${unique("A poem about the sea")}</p>`;
      const work = await daon.protect({ content: text, license: "cc-by", metadata: { title: "The sea" } });
      assert.equal(work.httpStatus, 201);
      assert.equal(work.status, "confirmed");
      assert.equal(work.contentHash, hashText(text), "the SDK's local hash is the server's");
      assert.equal(work.license, "cc-by");
      assert.equal(work.metadata.title, "The sea");
      assert.ok(work.blockHeight && work.blockHeight >= 1);
      assert.match(work.txHash ?? "", /^[0-9A-F]{64}$/);
      assert.match(work.verificationUrl, new RegExp(`/verify/sha256:${work.contentHash}$`));

      const again = await daon.protect(text);
      assert.equal(again.httpStatus, 200);
      assert.equal(again.existing, true);
      assert.equal(again.protectionId, work.protectionId);
    });

    test("hashing locally, the content never reaches the server: only its hash is sent", async () => {
      const secretText = unique("an unpublished chapter");
      const fileBytes = new Uint8Array(randomBytes(4096));
      const marker = Buffer.from(fileBytes.subarray(100, 140)).toString("latin1");
      const from = sent.length;

      const text = await daon.protect({ content: secretText, ai_training_policy: "open" }, { hashLocally: true });
      const file = await daon.protectFile(fileBytes, { title: "Chapter scan", license: "all-rights-reserved" });
      assert.equal(text.contentHash, hashText(secretText));
      assert.equal(text.metadata.type, "text");
      assert.equal(file.contentHash, sha256(fileBytes), "a file's hash is SHA-256 of its bytes, as sha256sum");
      assert.equal(file.metadata.type, "file");
      assert.equal(file.metadata.title, "Chapter scan");
      assert.equal(file.license, "all-rights-reserved");

      const bodies = sent.slice(from);
      assert.ok(bodies.length >= 2);
      for (const request of bodies) {
        assert.ok(!request.body.includes(secretText), "the text was sent");
        assert.ok(!request.body.includes(marker), "the file's bytes were sent");
      }
      assert.deepEqual(
        bodies.filter((r) => r.url.includes("/api/v1/protect")).map((r) => Object.keys(JSON.parse(r.body)).includes("contentHash")),
        [true, true],
      );

      // The same lookups by content, also without sending it.
      const foundText = await daon.verifyContent(secretText, { hashLocally: true });
      assert.equal(foundText.isValid && foundText.matchedBy, "canonical");
      const foundFile = await daon.verifyContent(fileBytes, { hashLocally: true });
      assert.equal(foundFile.isValid && foundFile.contentHash, file.contentHash);
      for (const request of sent.slice(from)) assert.ok(!request.body.includes(secretText) && !request.body.includes(marker));
    });

    test("a file can be uploaded instead; the server hashes the same bytes to the same hash", async () => {
      const bytes = new Uint8Array(randomBytes(2000));
      const from = sent.length;
      const work = await daon.protectFile(bytes, { title: "Upload", license: "cc0" }, { upload: true });
      assert.equal(work.contentHash, sha256(bytes));
      assert.equal(work.license, "cc0");
      assert.equal(sent[from].contentType, "application/octet-stream");
      const found = await daon.verifyContent(bytes);
      assert.equal(found.isValid && found.matchedBy, "file");
    });

    test("lookups: verify, verify by content, history, stats, service info, health", async () => {
      const text = unique("<h1>Title</h1><p>Body</p>");
      const work = await daon.protect(text);
      const verified = await daon.verify(`sha256:${work.contentHash.toUpperCase()}`);
      assert.ok(verified.isValid);
      assert.equal(verified.protectionId, work.protectionId);

      const unknown = await daon.verify("ab".repeat(32));
      assert.deepEqual(unknown, { isValid: false, contentHash: "ab".repeat(32) });
      const unknownContent = await daon.verifyContent(unique("never registered"));
      assert.equal(unknownContent.isValid, false);

      const byContent = await daon.verifyContent(text);
      assert.equal(byContent.isValid && byContent.matchedBy, "canonical");

      const history = await daon.history(work.contentHash);
      assert.equal(history.contentHash, work.contentHash);
      assert.equal(history.events[0].type, "registered");
      assert.equal(history.events[0].blockHeight, work.blockHeight);

      const { stats } = await daon.stats();
      assert.equal(stats.chainId, system.chainId);
      assert.ok(stats.totalProtected >= 5);
      assert.ok(stats.recentProtections.some((r) => r.contentHash === work.contentHash));
      assert.equal((await daon.info()).chainId, system.chainId);
      assert.equal((await daon.health()).checks.database.status, "up");
      const paths = Object.keys((await daon.openapi()).paths as object);
      assert.ok(paths.includes("/api/v1/chain/genesis-validators") && paths.includes("/api/v1/protect"));
    });

    test("bulk registers many works at once; an invalid item fails alone", async (t) => {
      const texts = [unique("bulk one"), unique("bulk two")];
      let result: BulkResult;
      try {
        result = await daon.bulk(
          [{ content: texts[0] }, { content: texts[1], license: "cc-by-sa" }, { contentHash: "not a hash" }],
          { ai_training_policy: "prohibited" },
          { hashLocally: true },
        );
      } catch (error) {
        // The bulk route is built apart from the SDK; until the API serves it there is nothing to call.
        if (error instanceof DaonApiError && error.code === "NOT_FOUND" && /no route/.test(error.message))
          return t.skip("the API does not serve POST /api/v1/protect/bulk yet");
        throw error;
      }
      assert.equal(result.total, 3);
      assert.equal(result.created, 2);
      assert.equal(result.failed, 1);
      const [first, second, third] = result.results;
      assert.ok(first.success && first.contentHash === hashText(texts[0]));
      assert.ok(second.success && second.license === "cc-by-sa");
      assert.ok(!third.success && third.error.code === "INVALID_HASH");
    });

    test("refusals are typed errors carrying the envelope's code, details and request id", async () => {
      await rejectsWith(daon.verify("not-a-hash"), 400, "INVALID_HASH");
      await rejectsWith(daon.protect("   \n\t "), 400, "NO_TEXT_CONTENT");
      const invalid = await rejectsWith(daon.protect({ content: unique("x"), license: "no-such-licence" }), 400, "VALIDATION_ERROR");
      assert.deepEqual(
        ((invalid.details?.fields ?? []) as { field: string }[]).map((f) => f.field),
        ["license"],
      );
      await rejectsWith(daon.proof("cd".repeat(32)), 404, "NOT_FOUND");
      await rejectsWith(new DaonClient({ baseUrl: system.apiUrl, accessToken: "not-a-token" }).protect(unique("y")), 401, "UNAUTHORIZED");
    });

    test("a proof from the API verifies offline against the genesis validator; a changed one does not", async () => {
      const work = await daon.protect(unique("proved work"));
      const bundle = await daon.proof(work.contentHash);
      const genesis = await daon.genesisValidators();
      assert.equal(genesis.chainId, system.chainId);
      const fromFile = JSON.parse(await readFile(join(system.dir, "node", "config", "genesis.json"), "utf8"));
      assert.deepEqual(genesis.validators[0].pub_key, fromFile.validators[0].pub_key, "the API names the validator of the genesis file");

      const verified = verifyProof(bundle, fromFile);
      assert.ok(verified.present);
      assert.equal(verified.height, work.blockHeight);
      assert.equal(verified.txHash, work.txHash);
      assert.equal(verified.record.license, "liberation_v1");

      const changed: ProofBundle = structuredClone(bundle);
      changed.record = { ...changed.record, license: "cc0" };
      assert.throws(() => verifyProof(changed, genesis), ProofError);
      const otherKey = {
        chainId: system.chainId,
        validators: [{ pub_key: { type: "tendermint/PubKeyEd25519", value: randomBytes(32).toString("base64") } }],
      };
      assert.throws(() => verifyProof(bundle, otherKey), ProofError);

      const absent = verifyProof(await daon.proof("ef".repeat(32), { absent: true }), genesis);
      assert.equal(absent.present, false);
    });

    test("accounts: sign-in by link and TOTP, my works, an expired token renewed, a transfer, sign-out everywhere", async () => {
      const alice = await enrol(system, mailbox, `alice-${storage}@daon.test`);
      const bob = await enrol(system, mailbox, `bob-${storage}@daon.test`);
      assert.equal((await alice.daon.me.get()).email, `alice-${storage}@daon.test`);

      const work = await alice.daon.protect({ content: unique("Alice's song"), metadata: { title: "Song" } }, { hashLocally: true });
      assert.equal(work.owner, alice.user.owner_id);
      const page = await alice.daon.me.works({ limit: 10 });
      assert.deepEqual(
        page.items.map((w) => w.contentHash),
        [work.contentHash],
      );
      assert.equal(page.nextCursor, null);

      // An access token past its expiry: the client renews it with the refresh token and repeats the call once.
      const current = alice.tokens.at(-1)!;
      const claims = JSON.parse(Buffer.from(current.access_token.split(".")[1], "base64url").toString());
      const expired = await new SignJWT({ sid: claims.sid, typ: "access" })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(claims.sub)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 1000)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
        .sign(new TextEncoder().encode(JWT_SECRET));
      const renewed: (Tokens | undefined)[] = [];
      const resumed = new DaonClient({
        baseUrl: system.apiUrl,
        accessToken: expired,
        refreshToken: current.refresh_token,
        onTokens: (t) => renewed.push(t),
      });
      assert.equal((await resumed.me.get()).owner_id, alice.user.owner_id);
      assert.equal(renewed.length, 1, "one refresh");
      assert.notEqual(renewed[0]?.refresh_token, current.refresh_token, "the refresh token was rotated");

      await rejectsWith(
        bob.daon.me.transfer(work.contentHash, { ownerId: alice.user.owner_id, code: await bob.app.nextCode() }),
        403,
        "NOT_OWNER",
      );
      await rejectsWith(resumed.me.transfer(work.contentHash, { ownerId: bob.user.owner_id, code: "000000" }), 401, "INVALID_CODE");
      const transfer = await resumed.me.transfer(work.contentHash, { ownerId: bob.user.owner_id, code: await alice.app.nextCode() });
      assert.equal(transfer.newOwner, bob.user.owner_id);
      assert.equal(transfer.previousOwner, alice.user.owner_id);
      assert.equal(transfer.status, "confirmed");
      assert.deepEqual(
        (await bob.daon.me.works()).items.map((w) => w.contentHash),
        [work.contentHash],
      );
      assert.equal((await resumed.me.works()).items.length, 0);

      await resumed.auth.logoutEverywhere({ backup_code: alice.backupCodes[0] });
      assert.equal(resumed.authenticated, false);
      await rejectsWith(alice.daon.me.get(), 401, "UNAUTHORIZED");
    });

    test("administration and platforms: approve, keys, a platform's works, webhooks signed for receivers, usage, audit", async () => {
      const admin = await enrol(system, mailbox, ADMIN_EMAIL);
      assert.equal(admin.user.role, "admin");
      const domain = `${storage}-gallery.example`;
      const created = await admin.daon.admin.createPlatform({
        domain,
        name: "Gallery",
        contact_email: "ops@gallery.example",
        certification_tier: "community",
      });
      assert.equal(created.broker.certification_status, "pending");
      assert.match(created.api_key, /^DAON_BR_[0-9a-f]{64}$/);
      const platform = new DaonClient({ baseUrl: system.apiUrl, apiKey: created.api_key });
      await rejectsWith(platform.platform.whoami(), 403, "PLATFORM_NOT_ACTIVE");
      assert.equal((await admin.daon.admin.approve(created.broker.id)).certification_status, "active");
      assert.equal((await platform.platform.whoami()).broker.domain, domain);
      assert.ok((await admin.daon.admin.platforms({ status: "active" })).items.some((p) => p.id === created.broker.id));

      const hook = await platform.webhooks.create({
        url: receiver.url,
        events: ["content.protected", "content.confirmed"],
        description: "gallery",
      });
      assert.ok(hook.secret, "a generated secret is shown once");
      const ping = await platform.webhooks.test(hook.webhook.id);
      assert.equal(ping.delivered, true);
      assert.equal(ping.status_code, 200);
      const delivered = await receiver.waitFor((r) => r.headers["x-daon-webhook-event"] === "webhook.test");
      const checked = await verifyWebhook({ secret: hook.secret!, body: delivered.body, headers: delivered.headers });
      assert.equal(checked.event, "webhook.test");
      assert.equal(checked.payload.broker_id, created.broker.id);
      await assert.rejects(
        verifyWebhook({ secret: hook.secret!, body: Buffer.concat([delivered.body, Buffer.from(" ")]), headers: delivered.headers }),
        (error: unknown) => error instanceof WebhookSignatureError && error.reason === "mismatch",
      );

      const work = await platform.platform.protect({
        username: "alice",
        contentHash: sha256(unique("gallery piece")),
        metadata: { title: "Piece" },
      });
      assert.equal(work.ownerIdentity, `alice@${domain}`);
      const looked = await platform.platform.content(work.contentHash);
      assert.ok(looked.isValid && looked.ownerIdentity === `alice@${domain}`);
      assert.deepEqual(
        (await platform.platform.worksOf("alice")).items.map((w) => w.contentHash),
        [work.contentHash],
      );
      const event = await receiver.waitFor((r) => r.headers["x-daon-webhook-event"] === "content.confirmed");
      const confirmed = await verifyWebhook<{ content_hash: string; block_height: number }>({
        secret: hook.secret!,
        body: event.body,
        headers: event.headers,
      });
      assert.ok(String(confirmed.payload.data.content_hash).endsWith(work.contentHash));
      const log = await platform.webhooks.deliveries(hook.webhook.id);
      assert.ok(log.items.some((d) => d.event === "content.confirmed" && d.status === "success"));
      const redelivered = await platform.webhooks.redeliver(hook.webhook.id, log.items[0].id);
      assert.equal(redelivered.id, log.items[0].id);

      const extra = await platform.platform.createKey({ name: "ci", scopes: ["broker:verify"] });
      assert.deepEqual(extra.key.scopes, ["broker:verify"]);
      const ci = new DaonClient({ baseUrl: system.apiUrl, apiKey: extra.api_key });
      await rejectsWith(ci.platform.protect({ username: "bob", contentHash: sha256(unique("z")) }), 403, "INSUFFICIENT_SCOPE");
      assert.equal((await platform.platform.revokeKey(extra.key.id)).status, "revoked");
      await rejectsWith(ci.platform.whoami(), 401, "UNAUTHORIZED");
      const rotated = await platform.platform.rotateKey();
      assert.ok(rotated.previous_key?.expires_at, "the rotated key expires after the overlap");
      assert.ok((await platform.platform.keys()).some((k) => k.id === rotated.key.id && k.status === "active"));

      const usage = await platform.platform.usage();
      assert.ok(usage.summary.total_requests >= 5);
      assert.ok(usage.usage.some((row) => row.endpoint === "/api/v1/broker/protect"));

      // A platform that must sign its requests: the SDK signs with its Ed25519 key.
      const keys = generateKeyPairSync("ed25519");
      const strict = await admin.daon.admin.createPlatform({
        domain: `${storage}-signed.example`,
        name: "Signed",
        contact_email: "ops@signed.example",
        certification_tier: "standard",
        public_key: keys.publicKey.export({ format: "der", type: "spki" }).toString("base64"),
        require_signature: true,
      });
      await admin.daon.admin.approve(strict.broker.id);
      const unsigned = new DaonClient({ baseUrl: system.apiUrl, apiKey: strict.api_key });
      await rejectsWith(unsigned.platform.whoami(), 401, "SIGNATURE_INVALID");
      const signer = ed25519Signer(keys.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64"));
      const signed = new DaonClient({ baseUrl: system.apiUrl, apiKey: strict.api_key, signer });
      assert.equal((await signed.platform.whoami()).broker.domain, `${storage}-signed.example`);
      const signedWork = await signed.platform.protect({ username: "carol", contentHash: sha256(unique("signed piece")) });
      assert.equal(signedWork.ownerIdentity, `carol@${storage}-signed.example`);

      await admin.daon.admin.suspend(created.broker.id, "test of suspension");
      await rejectsWith(platform.platform.whoami(), 403, "PLATFORM_NOT_ACTIVE");
      await admin.daon.admin.unsuspend(created.broker.id);
      const audit = await admin.daon.admin.auditLog({ target_id: created.broker.id });
      assert.ok(audit.items.some((entry) => /suspend/.test(entry.action)));
      assert.ok(audit.items.some((entry) => /approve/.test(entry.action)));
    });

    test("over the limit: RATE_LIMITED with the wait the server asks for", async () => {
      const impatient = new DaonClient({ baseUrl: system.apiUrl, retry: { retries: 0 } });
      let refusal: DaonApiError | undefined;
      for (let i = 0; i < 40 && !refusal; i++) {
        await impatient.verifyContent(unique("probe")).catch((error) => {
          refusal = error;
        });
      }
      assert.ok(refusal instanceof DaonApiError);
      assert.equal(refusal.code, "RATE_LIMITED");
      assert.equal(refusal.status, 429);
      assert.ok((refusal.retryAfterSeconds ?? 0) > 0);
    });
  });
}
