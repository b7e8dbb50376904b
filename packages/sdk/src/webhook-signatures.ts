import { WebhookSignatureError } from "./errors.js";
import type { WebhookEvent } from "./types.js";

/** A webhook request's body (api.md §5). */
export interface WebhookPayload<Data = Record<string, unknown>> {
  id: string;
  event: WebhookEvent | (string & {});
  timestamp: string;
  broker_id: string;
  data: Data;
}

/** Request headers as a receiver has them: a Fetch `Headers`, or Node's lowercase header object. */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

/** What `verifyWebhook` found: the payload, and the delivery id to deduplicate on (the same on retries and redeliveries). */
export interface VerifiedWebhook<Data = Record<string, unknown>> {
  deliveryId: string;
  event: string;
  payload: WebhookPayload<Data>;
}

const encoder = new TextEncoder();

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** The bytes DAON signs: the timestamp, a dot, and the exact body. */
function signedBytes(timestamp: string, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${timestamp}.`);
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const bytes = new Uint8Array(head.length + tail.length);
  bytes.set(head);
  bytes.set(tail, head.length);
  return bytes;
}

/** `sha256=<hex>` as DAON sends it in `X-DAON-Webhook-Signature`: for tests of a receiver. */
export async function webhookSignature(secret: string, timestamp: number | string, body: string | Uint8Array): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), signedBytes(String(timestamp), body));
  return `sha256=${Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Checks a webhook delivery as a receiver should (api.md §5): the HMAC-SHA-256 of
 * `<X-DAON-Webhook-Timestamp>.<raw body>` under the webhook's secret, compared in constant time,
 * and a timestamp no more than `toleranceSeconds` (300) away. Pass the raw body bytes or text
 * exactly as received, before any JSON parsing. Throws WebhookSignatureError otherwise.
 */
export async function verifyWebhook<Data = Record<string, unknown>>(options: {
  secret: string;
  body: string | Uint8Array;
  headers: HeadersLike;
  toleranceSeconds?: number;
  /** Current time in ms (tests). */
  now?: number;
}): Promise<VerifiedWebhook<Data>> {
  const timestamp = header(options.headers, "x-daon-webhook-timestamp");
  const signature = header(options.headers, "x-daon-webhook-signature");
  const deliveryId = header(options.headers, "x-daon-webhook-id");
  if (!timestamp || !signature || !deliveryId) {
    throw new WebhookSignatureError("missing_headers", "X-DAON-Webhook-Timestamp, -Signature and -ID are required");
  }
  const match = /^sha256=([0-9a-f]{64})$/.exec(signature.trim());
  if (!/^\d{1,12}$/.test(timestamp) || !match) throw new WebhookSignatureError("malformed", "the signature or timestamp is malformed");
  const tolerance = options.toleranceSeconds ?? 300;
  const age = (options.now ?? Date.now()) / 1000 - Number(timestamp);
  if (Math.abs(age) > tolerance)
    throw new WebhookSignatureError("stale", `the timestamp is ${Math.round(age)} s away (at most ${tolerance})`);
  const expected = Uint8Array.from(match[1].match(/../g)!, (pair) => Number.parseInt(pair, 16));
  // crypto.subtle.verify compares in constant time.
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(options.secret, "verify"), expected, signedBytes(timestamp, options.body));
  if (!valid) throw new WebhookSignatureError("mismatch", "the signature does not match the body and secret");
  const text = typeof options.body === "string" ? options.body : new TextDecoder().decode(options.body);
  let payload: WebhookPayload<Data>;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new WebhookSignatureError("malformed", "the signed body is not JSON");
  }
  return { deliveryId, event: header(options.headers, "x-daon-webhook-event") ?? payload.event, payload };
}
