import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse } from "@daon/core";
import { decodeJwt, SignJWT } from "jose";
import { assertError, type Creator, call, enrol, linkToken, Mailbox, nextCode } from "./accounts-journey.js";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const JWT_SECRET = randomBytes(48).toString("base64url");
const unique = (label: string) => `${label} ${randomBytes(8).toString("hex")}`;

async function rpc<T>(system: TestSystem, method: string, params: Record<string, unknown>): Promise<T> {
  const response = await fetch(system.rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return ((await response.json()) as { result: T }).result;
}

/** The owner the ledger itself records for a work. */
async function ledgerOwner(system: TestSystem, contentHash: string): Promise<string> {
  const data = Buffer.from(QueryVerifyContentRequest.encode({ contentHash: `sha256:${contentHash}` }).finish()).toString("hex");
  const result = await rpc<{ response: { value: string } }>(system, "abci_query", { path: QUERY_VERIFY_CONTENT, data });
  return QueryVerifyContentResponse.decode(Buffer.from(result.response.value, "base64")).owner;
}

for (const storage of STORAGE_PATHS) {
  describe(`accounts (${storage})`, () => {
    let system: TestSystem;
    let mailbox: Mailbox;
    const domain = `${storage}.example.org`;
    const email = (name: string) => `${name}@${domain}`;
    let alice: Creator;
    let bob: Creator;
    const works: string[] = [];

    const mailedToken = (address: string, count: number) => async () => linkToken(await mailbox.message(address, count));
    const post = (path: string, body: unknown, token?: string, ip?: string) => call(system, "POST", path, { body, token, ip });
    const get = (path: string, token?: string) => call(system, "GET", path, { token });
    const protect = async (token: string | undefined, wait = "true") => {
      const answer = await post(`/api/v1/protect?wait=${wait}`, { content: unique("a work"), metadata: { type: "test" } }, token);
      assert.ok([201, 202].includes(answer.status), JSON.stringify(answer.body));
      return answer;
    };

    before(async () => {
      mailbox = await Mailbox.start();
      system = await startTestSystem(storage, {
        SMTP_URL: mailbox.url,
        JWT_SECRET,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        API_KEY_SECRET: randomBytes(48).toString("base64url"),
        VERIFICATION_BASE_URL: "https://portal.example.org",
        ADMIN_EMAILS: `someone@else.org, ${email("alice").toUpperCase()}`,
      });
    });
    after(async () => {
      await system.stop();
      await mailbox.stop();
    });

    test("a creator signs in with a mailed magic link and enrols TOTP: tokens, 10 backup codes, /me", async () => {
      alice = await enrol(system, email("alice"), "203.0.113.1", mailedToken(email("alice"), 1));
      bob = await enrol(system, email("bob"), "203.0.113.2", mailedToken(email("bob"), 1));
      assert.equal(alice.user.role, "admin"); // ADMIN_EMAILS, any case
      assert.equal(bob.user.role, "user");
      assert.notEqual(alice.user.owner_id, bob.user.owner_id);

      const mail = await mailbox.message(email("alice"), 1);
      assert.match(mail, /^Subject: Your DAON sign-in link/m);
      assert.match(mail, /^https:\/\/portal\.example\.org\/auth\/verify#token=[A-Za-z0-9_-]{43}$/m);

      const me = await get("/api/v1/me", alice.accessToken);
      assert.equal(me.status, 200);
      assert.equal(me.headers.get("cache-control"), "no-store");
      assert.deepEqual(Object.keys(me.body.user).sort(), ["created_at", "email", "id", "owner_id", "role"]);
      assert.equal(me.body.user.email, email("alice"));
      assert.equal(me.body.user.owner_id, alice.user.owner_id);
      assert.match(me.body.user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(decodeJwt(alice.accessToken).typ, "access");

      assertError(await get("/api/v1/me"), 401, "UNAUTHORIZED");
      assertError(await get("/api/v1/me", "not-a-token"), 401, "UNAUTHORIZED");
    });

    test("a magic link works once; unknown addresses get the same 202; the address limit is 3 per 15 minutes", async () => {
      const reused = await post("/api/v1/auth/verify", { token: linkToken(await mailbox.message(email("alice"), 1)) });
      assertError(reused, 401, "INVALID_TOKEN");
      assertError(await post("/api/v1/auth/verify", { token: randomBytes(32).toString("base64url") }), 401, "INVALID_TOKEN");
      assertError(await post("/api/v1/auth/magic-link", { email: "not an address" }, undefined, "203.0.113.9"), 400, "VALIDATION_ERROR");

      for (let i = 0; i < 3; i++)
        assert.equal((await post("/api/v1/auth/magic-link", { email: email("dora") }, undefined, `203.0.113.${10 + i}`)).status, 202);
      const fourth = await post("/api/v1/auth/magic-link", { email: email("dora") }, undefined, "203.0.113.13");
      assertError(fourth, 429, "RATE_LIMITED");
      assert.ok(Number(fourth.headers.get("retry-after")) > 0);
      // A newer link voids the older ones.
      assertError(await post("/api/v1/auth/verify", { token: linkToken(await mailbox.message(email("dora"), 1)) }), 401, "INVALID_TOKEN");
      assert.equal((await post("/api/v1/auth/verify", { token: linkToken(await mailbox.message(email("dora"), 3)) })).status, 200);
    });

    test("a signed-in creator's work is theirs: owner = their owner_id, listed newest first in /me/works", async () => {
      for (let i = 0; i < 3; i++) {
        const answer = await protect(alice.accessToken);
        assert.equal(answer.body.owner, alice.user.owner_id);
        assert.equal(answer.headers.get("ratelimit-limit"), "120"); // per account, not the anonymous 30 per IP
        works.unshift(answer.body.contentHash);
      }
      const anonymous = await protect(undefined);
      assert.equal(anonymous.body.owner, null);

      const first = await get("/api/v1/me/works?limit=2", alice.accessToken);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(
        first.body.items.map((w: { contentHash: string }) => w.contentHash),
        works.slice(0, 2),
      );
      assert.equal(first.body.items[0].owner, alice.user.owner_id);
      assert.equal(typeof first.body.nextCursor, "string");
      const second = await get(`/api/v1/me/works?limit=2&cursor=${first.body.nextCursor}`, alice.accessToken);
      assert.deepEqual(
        second.body.items.map((w: { contentHash: string }) => w.contentHash),
        works.slice(2),
      );
      assert.equal(second.body.nextCursor, null);
      assert.deepEqual((await get("/api/v1/me/works", bob.accessToken)).body.items, []);
      assertError(await get("/api/v1/me/works?cursor=bogus", alice.accessToken), 400, "VALIDATION_ERROR");
      assertError(await get("/api/v1/me/works?limit=101", alice.accessToken), 400, "VALIDATION_ERROR");
    });

    test("a transfer to another creator commits a MsgTransferOwnership: history, ledger record and /me/works follow", async () => {
      const [work] = works;
      const code = await nextCode(alice);
      const answer = await post(`/api/v1/me/works/${work}/transfer`, { to: bob.user.owner_id, code }, alice.accessToken);
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const { transfer } = answer.body;
      assert.match(transfer.id, /^t_[a-z2-7]{26}$/);
      assert.equal(transfer.contentHash, work);
      assert.equal(transfer.previousOwner, alice.user.owner_id);
      assert.equal(transfer.newOwner, bob.user.owner_id);
      assert.equal(transfer.status, "confirmed");
      assert.ok(transfer.blockHeight >= 1);
      assert.match(transfer.txHash, /^[0-9A-F]{64}$/);

      const history = await get(`/api/v1/content/${work}/history`);
      assert.equal(history.body.currentOwner, bob.user.owner_id);
      assert.deepEqual(
        history.body.events.map((e: Record<string, unknown>) => [e.type, e.owner ?? e.from, e.to, e.status]),
        [
          ["registered", alice.user.owner_id, undefined, "confirmed"],
          ["transferred", alice.user.owner_id, bob.user.owner_id, "confirmed"],
        ],
      );
      assert.equal(history.body.events[1].txHash, transfer.txHash);

      // The ledger itself: the record's owner, and the event tx_search finds.
      assert.equal(await ledgerOwner(system, work), bob.user.owner_id);
      const found = await rpc<{
        total_count: string;
        txs: { hash: string; tx_result: { events: { type: string; attributes: { key: string; value: string }[] }[] } }[];
      }>(system, "tx_search", { query: `ownership_transferred.content_hash='sha256:${work}'` });
      assert.equal(found.total_count, "1");
      assert.equal(found.txs[0].hash, transfer.txHash);
      const event = found.txs[0].tx_result.events.find((e) => e.type === "ownership_transferred")!;
      assert.deepEqual(
        Object.fromEntries(event.attributes.filter((a) => a.key === "from" || a.key === "to").map((a) => [a.key, a.value])),
        { from: alice.user.owner_id, to: bob.user.owner_id },
      );

      assert.deepEqual(
        (await get("/api/v1/me/works", bob.accessToken)).body.items.map((w: { contentHash: string }) => w.contentHash),
        [work],
      );
      assert.ok(
        !(await get("/api/v1/me/works", alice.accessToken)).body.items.some((w: { contentHash: string }) => w.contentHash === work),
      );
      assert.equal((await get(`/api/v1/verify/${work}`)).body.owner, bob.user.owner_id);
    });

    test("transfers are refused: not the owner, not confirmed yet, one already pending, bad recipient, replayed code", async () => {
      const [transferred, second] = works;
      const refuse = (hash: string, to: string, code: string, token = alice.accessToken) =>
        post(`/api/v1/me/works/${hash}/transfer`, { to, code }, token);
      assertError(await refuse(transferred, bob.user.owner_id, "000000"), 403, "NOT_OWNER");
      assertError(await refuse("ab".repeat(32), bob.user.owner_id, "000000"), 403, "NOT_OWNER");
      assertError(await refuse(second, "bob@example.org", "000000"), 400, "VALIDATION_ERROR");
      assertError(await refuse(second, alice.user.owner_id, "000000"), 400, "VALIDATION_ERROR");
      assertError(await refuse("xyz", bob.user.owner_id, "000000"), 400, "INVALID_HASH");
      assertError(await post(`/api/v1/me/works/${second}/transfer`, { to: bob.user.owner_id, code: "000000" }), 401, "UNAUTHORIZED");

      const pending = (await protect(alice.accessToken, "false")).body.contentHash;
      const notConfirmed = await refuse(pending, bob.user.owner_id, "000000");
      assertError(notConfirmed, 409, "NOT_CONFIRMED");
      assert.ok(notConfirmed.headers.get("retry-after"));

      // Bob sends the work back without waiting; a second transfer meanwhile is TRANSFER_PENDING.
      const bobCode = await nextCode(bob);
      const back = await post(
        `/api/v1/me/works/${transferred}/transfer?wait=false`,
        { to: alice.user.owner_id, code: bobCode },
        bob.accessToken,
      );
      assert.equal(back.status, 202, JSON.stringify(back.body));
      assert.equal(back.body.transfer.status, "pending");
      assert.equal(back.body.transfer.blockHeight, null);
      assertError(await refuse(transferred, alice.user.owner_id, "000000", bob.accessToken), 409, "TRANSFER_PENDING");
      for (let i = 0; i < 50 && (await get(`/api/v1/content/${transferred}/history`)).body.currentOwner !== alice.user.owner_id; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const history = await get(`/api/v1/content/${transferred}/history`);
      assert.equal(history.body.currentOwner, alice.user.owner_id);
      assert.deepEqual(
        history.body.events.map((e: { type: string; status: string }) => `${e.type}:${e.status}`),
        ["registered:confirmed", "transferred:confirmed", "transferred:confirmed"],
      );

      // The TOTP code of the transfer above is spent: using it again is a replay.
      assertError(await post("/api/v1/auth/2fa/backup-codes/regenerate", { code: bobCode }, bob.accessToken), 401, "INVALID_CODE");
    });

    test("backup codes: used and voided ones are refused; a second sign-in completes with one", async () => {
      const used = alice.backupCodes[0];
      const regenerated = await post("/api/v1/auth/2fa/backup-codes/regenerate", { code: used }, alice.accessToken);
      assert.equal(regenerated.status, 200, JSON.stringify(regenerated.body));
      assert.equal(regenerated.body.backup_codes.length, 10);
      assert.equal(regenerated.headers.get("cache-control"), "no-store");
      assertError(await post("/api/v1/auth/2fa/backup-codes/regenerate", { code: used }, alice.accessToken), 401, "INVALID_CODE");
      // The others of the old set are void after regeneration.
      assertError(
        await post("/api/v1/auth/2fa/backup-codes/regenerate", { code: alice.backupCodes[1] }, alice.accessToken),
        401,
        "INVALID_CODE",
      );
      alice.backupCodes = regenerated.body.backup_codes;

      // A second sign-in: stage verify, completed with a backup code (case and "-" insensitive), once.
      assert.equal((await post("/api/v1/auth/magic-link", { email: email("alice") }, undefined, alice.ip)).status, 202);
      const verified = await post("/api/v1/auth/verify", { token: linkToken(await mailbox.message(email("alice"), 2)) });
      assert.equal(verified.body.stage, "verify");
      assert.equal(verified.body.expires_in, 300);
      const backupCode = alice.backupCodes[0];
      const tokens = await post("/api/v1/auth/2fa/complete", {
        session_id: verified.body.session_id,
        backup_code: backupCode.toLowerCase().replace("-", ""),
      });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal(tokens.body.user.role, "admin");
      assert.equal(tokens.body.backup_codes, undefined);
      assertError(
        await post("/api/v1/auth/2fa/complete", { session_id: verified.body.session_id, backup_code: alice.backupCodes[1] }),
        401,
        "INVALID_TOKEN",
      );
      assertError(
        await post("/api/v1/auth/2fa/backup-codes/regenerate", { backup_code: backupCode }, alice.accessToken),
        401,
        "INVALID_CODE",
      );
      alice.accessToken = tokens.body.access_token;
      alice.refreshToken = tokens.body.refresh_token;
    });

    test("five wrong codes lock a sign-in session; ten per account in 15 minutes are the limit", async () => {
      assert.equal((await post("/api/v1/auth/magic-link", { email: email("bob") }, undefined, bob.ip)).status, 202);
      const verified = await post("/api/v1/auth/verify", { token: linkToken(await mailbox.message(email("bob"), 2)) });
      const sessionId = verified.body.session_id;
      for (let i = 0; i < 5; i++) {
        assertError(await post("/api/v1/auth/2fa/complete", { session_id: sessionId, backup_code: "AAAA-AAAA" }), 401, "INVALID_CODE");
      }
      assertError(
        await post("/api/v1/auth/2fa/complete", { session_id: sessionId, backup_code: bob.backupCodes[0] }),
        401,
        "INVALID_TOKEN",
      );
      assertError(await post("/api/v1/auth/2fa/complete", { session_id: sessionId }), 400, "VALIDATION_ERROR");

      // Bob has 6 wrong codes now (one replay earlier); at 10 in 15 minutes the account's code checks stop.
      const regenerate = (code: string) => post("/api/v1/auth/2fa/backup-codes/regenerate", { code }, bob.accessToken);
      for (let i = 0; i < 4; i++) assertError(await regenerate("BBBB-BBBB"), 401, "INVALID_CODE");
      const limited = await regenerate(bob.backupCodes[0]);
      assertError(limited, 429, "RATE_LIMITED");
      assert.ok(Number(limited.headers.get("retry-after")) > 800);
    });

    test("refresh rotates; replaying a spent refresh token revokes the session; expired access tokens say TOKEN_EXPIRED", async () => {
      const first = await post("/api/v1/auth/refresh", { refresh_token: alice.refreshToken });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.notEqual(first.body.refresh_token, alice.refreshToken);
      assert.equal((await get("/api/v1/me", first.body.access_token)).status, 200);

      assertError(await post("/api/v1/auth/refresh", { refresh_token: alice.refreshToken }), 401, "INVALID_TOKEN");
      // The replay ended the session: its newest tokens are dead too.
      assertError(await post("/api/v1/auth/refresh", { refresh_token: first.body.refresh_token }), 401, "INVALID_TOKEN");
      assertError(await get("/api/v1/me", first.body.access_token), 401, "UNAUTHORIZED");

      const { sub, sid } = decodeJwt(bob.accessToken);
      const now = Math.floor(Date.now() / 1000);
      const expired = await new SignJWT({ sid, typ: "access" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(sub!)
        .setIssuedAt(now - 1000)
        .setExpirationTime(now - 100)
        .sign(new TextEncoder().encode(JWT_SECRET));
      assertError(await get("/api/v1/me", expired), 401, "TOKEN_EXPIRED");
      const forged = await new SignJWT({ sid, typ: "access" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(sub!)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(randomBytes(32));
      assertError(await get("/api/v1/me", forged), 401, "UNAUTHORIZED");
    });

    test("logout ends a session; 2fa/reset enrols a new secret; logout-all ends every session", async () => {
      // Bob's first session ends with logout.
      assert.deepEqual((await post("/api/v1/auth/logout", { refresh_token: bob.refreshToken })).body, { success: true });
      assertError(await get("/api/v1/me", bob.accessToken), 401, "UNAUTHORIZED");
      assertError(await post("/api/v1/auth/refresh", { refresh_token: bob.refreshToken }), 401, "INVALID_TOKEN");

      const carol = await enrol(system, email("carol"), "203.0.113.3", mailedToken(email("carol"), 1));
      const reset = await post("/api/v1/auth/2fa/reset", { backup_code: carol.backupCodes[0] }, carol.accessToken);
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      assert.notEqual(reset.body.secret, carol.secret);
      assert.match(reset.body.qr_code, /^data:image\/png;base64,/);
      assert.equal(typeof reset.body.session_id, "string");
      carol.secret = reset.body.secret;
      const enrolled = await post("/api/v1/auth/2fa/verify-setup", { session_id: reset.body.session_id, code: await nextCode(carol) });
      assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
      assert.equal(enrolled.body.backup_codes.length, 10);
      assert.equal(enrolled.body.user.owner_id, carol.user.owner_id);
      // The enrolment replaced the backup codes.
      assertError(await post("/api/v1/auth/logout-all", { code: carol.backupCodes[1] }, carol.accessToken), 401, "INVALID_CODE");

      assert.deepEqual((await post("/api/v1/auth/logout-all", { code: enrolled.body.backup_codes[0] }, carol.accessToken)).body, {
        success: true,
      });
      assertError(await get("/api/v1/me", carol.accessToken), 401, "UNAUTHORIZED");
      assertError(await get("/api/v1/me", enrolled.body.access_token), 401, "UNAUTHORIZED");
    });

    test("without a reachable mail server a magic link is 503 email", async () => {
      await mailbox.stop();
      const answer = await post("/api/v1/auth/magic-link", { email: email("erin") }, undefined, "203.0.113.20");
      assertError(answer, 503, "SERVICE_UNAVAILABLE");
      assert.equal(answer.body.error.details.dependency, "email");
      assert.ok(answer.headers.get("retry-after"));
    });
  });
}
