/**
 * How the client behaves when the server is busy, slow or gone — retries with backoff on
 * 429/503 that honour Retry-After, timeouts, cancellation — against a real HTTP server in
 * this process that answers as an overloaded API would; and webhook signature checks against
 * signatures made by the API's own signer.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { webhookSignature as apiSignature } from "../../api/src/webhooks/attempt.js";
import {
  DaonAbortError,
  DaonApiError,
  DaonClient,
  DaonNetworkError,
  DaonTimeoutError,
  parseRetryAfter,
  verifyWebhook,
  WebhookSignatureError,
  webhookSignature,
} from "../src/index.js";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

const envelope = (code: string, message: string) => JSON.stringify({ success: false, error: { code, message, requestId: "req-1" } });
const registration = { success: true, isValid: true, contentHash: "ab".repeat(32), status: "confirmed" };

describe("retries, timeouts and cancellation", () => {
  let server: Server;
  let url: string;
  let script: Handler[] = [];
  const arrivals: number[] = [];
  before(async () => {
    server = createServer((request, response) => {
      arrivals.push(Date.now());
      request.resume();
      const next = script.shift();
      if (next) next(request, response);
      else response.writeHead(500).end(envelope("INTERNAL_ERROR", "unscripted"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const answer =
    (status: number, body: string, headers: Record<string, string> = {}): Handler =>
    (_request, response) =>
      response.writeHead(status, { "content-type": "application/json", ...headers }).end(body);
  const client = (options: ConstructorParameters<typeof DaonClient>[0] = {}) =>
    new DaonClient({ baseUrl: url, retry: { baseDelayMs: 50, maxDelayMs: 3000 }, ...options });

  test("429 then 503, each with Retry-After: the client waits as asked and then succeeds", async () => {
    arrivals.length = 0;
    script = [
      answer(429, envelope("RATE_LIMITED", "slow down"), { "retry-after": "1" }),
      answer(503, envelope("SERVICE_UNAVAILABLE", "db"), { "retry-after": "1" }),
      answer(200, JSON.stringify(registration)),
    ];
    const found = await client().verify("ab".repeat(32));
    assert.equal(found.isValid, true);
    assert.equal(arrivals.length, 3);
    // The waits are the server's: at least the second it asked for, each time.
    assert.ok(
      arrivals[1] - arrivals[0] >= 950 && arrivals[2] - arrivals[1] >= 950,
      `waited ${arrivals[1] - arrivals[0]} and ${arrivals[2] - arrivals[1]} ms`,
    );
  });

  test("without Retry-After the client backs off and gives up after its retries with the last error", async () => {
    arrivals.length = 0;
    script = Array.from({ length: 3 }, () => answer(503, envelope("SERVICE_UNAVAILABLE", "ledger")));
    await assert.rejects(client({ retry: { retries: 2, baseDelayMs: 50 } }).stats(), (error: unknown) => {
      assert.ok(error instanceof DaonApiError);
      assert.equal(error.code, "SERVICE_UNAVAILABLE");
      assert.equal(error.status, 503);
      assert.equal(error.requestId, "req-1");
      return true;
    });
    assert.equal(arrivals.length, 3, "the first try and two retries");
  });

  test("a Retry-After longer than the client will wait is not waited for: the error comes at once", async () => {
    arrivals.length = 0;
    script = [answer(429, envelope("QUOTA_EXCEEDED", "hourly quota"), { "retry-after": "3600" })];
    const error = await client()
      .stats()
      .catch((e: unknown) => e);
    assert.ok(error instanceof DaonApiError);
    assert.equal(error.code, "QUOTA_EXCEEDED");
    assert.equal(error.retryAfterSeconds, 3600);
    assert.equal(arrivals.length, 1);
  });

  test("other 4xx are never retried", async () => {
    arrivals.length = 0;
    script = [answer(400, envelope("VALIDATION_ERROR", "bad")), answer(200, JSON.stringify(registration))];
    await assert.rejects(
      client().verify("ab".repeat(32)),
      (error: unknown) => error instanceof DaonApiError && error.code === "VALIDATION_ERROR",
    );
    assert.equal(arrivals.length, 1);
    script = [];
  });

  test("no answer within the timeout: DaonTimeoutError", async () => {
    script = [(_request, response) => setTimeout(() => response.writeHead(200).end("{}"), 2000)];
    await assert.rejects(client({ timeoutMs: 200 }).stats({ retries: 0 }), DaonTimeoutError);
  });

  test("cancelling stops the call, also while it waits to retry", async () => {
    script = [(_request, response) => setTimeout(() => response.writeHead(200).end("{}"), 2000)];
    const inFlight = new AbortController();
    setTimeout(() => inFlight.abort(), 100);
    await assert.rejects(client().stats({ signal: inFlight.signal }), DaonAbortError);

    // Had the wait not been cut short, the retry would reach the server and get its unscripted 500.
    arrivals.length = 0;
    script = [answer(429, envelope("RATE_LIMITED", "wait"), { "retry-after": "3" })];
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(), 200);
    await assert.rejects(client().stats({ signal: waiting.signal }), DaonAbortError);
    assert.equal(arrivals.length, 1);
  });

  test("nothing listening: DaonNetworkError after the read's retries", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      new DaonClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { retries: 1, baseDelayMs: 10 } }).stats(),
      DaonNetworkError,
    );
  });

  test("Retry-After as delay-seconds and as an HTTP date", () => {
    assert.equal(parseRetryAfter("7"), 7);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1)), 30);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });
});

describe("webhook signatures for receivers", () => {
  const secret = `whsec_${"k".repeat(40)}`;
  const body = JSON.stringify({
    id: "evt_1",
    event: "content.confirmed",
    timestamp: "2030-01-01T00:00:00.000Z",
    broker_id: "p_1",
    data: { content_hash: "ab" },
  });
  const now = Date.UTC(2030, 0, 1, 0, 0, 10);
  const timestamp = Math.floor(now / 1000) - 5;
  const headers = (signature: string, at = timestamp) => ({
    "x-daon-webhook-event": "content.confirmed",
    "x-daon-webhook-id": "whd_1",
    "x-daon-webhook-timestamp": String(at),
    "x-daon-webhook-signature": signature,
  });

  test("a delivery signed by the API verifies: the payload and the delivery id to deduplicate on", async () => {
    assert.equal(await webhookSignature(secret, timestamp, body), apiSignature(secret, timestamp, body), "the SDK signs as the API does");
    const checked = await verifyWebhook({ secret, body, headers: headers(apiSignature(secret, timestamp, body)), now });
    assert.equal(checked.deliveryId, "whd_1");
    assert.equal(checked.event, "content.confirmed");
    assert.deepEqual(checked.payload.data, { content_hash: "ab" });
    // A Fetch Headers object and a body as bytes work too.
    const asBytes = await verifyWebhook({
      secret,
      body: new TextEncoder().encode(body),
      headers: new Headers(headers(apiSignature(secret, timestamp, body))),
      now,
    });
    assert.equal(asBytes.payload.id, "evt_1");
  });

  test("a changed body, another secret, a stale or future timestamp, or missing headers are refused, each saying why", async () => {
    const reason = (expected: WebhookSignatureError["reason"]) => (error: unknown) =>
      error instanceof WebhookSignatureError && error.reason === expected;
    const signed = apiSignature(secret, timestamp, body);
    await assert.rejects(verifyWebhook({ secret, body: body.replace("ab", "ac"), headers: headers(signed), now }), reason("mismatch"));
    await assert.rejects(verifyWebhook({ secret: `${secret}x`, body, headers: headers(signed), now }), reason("mismatch"));
    const old = timestamp - 400;
    await assert.rejects(verifyWebhook({ secret, body, headers: headers(apiSignature(secret, old, body), old), now }), reason("stale"));
    const future = timestamp + 400;
    await assert.rejects(
      verifyWebhook({ secret, body, headers: headers(apiSignature(secret, future, body), future), now }),
      reason("stale"),
    );
    await assert.rejects(verifyWebhook({ secret, body, headers: headers("sha256=xyz"), now }), reason("malformed"));
    await assert.rejects(verifyWebhook({ secret, body, headers: { "x-daon-webhook-id": "whd_1" }, now }), reason("missing_headers"));
  });
});
