import type { Call } from "./accounts.js";
import type { Answer, CallOptions } from "./transport.js";
import type {
  CreatedWebhook,
  IssuedPlatformKey,
  NewWebhook,
  Page,
  PageQuery,
  PlatformIdentity,
  PlatformKey,
  PlatformScope,
  ProtectFields,
  ProtectResult,
  Registration,
  Transfer,
  Usage,
  Verification,
  Wait,
  Webhook,
  WebhookDelivery,
  WebhookStats,
  WebhookTestResult,
} from "./types.js";

/** Computes the signature headers of one platform request from its method, path and query, and exact body bytes. */
export type RequestSigner = (method: string, pathAndQuery: string, body: Uint8Array) => Promise<Record<string, string>>;

const data = <T>(answer: Answer<T>): T => {
  const { success: _success, ...rest } = answer.body as T & { success?: boolean };
  return rest as T;
};

const hex = (bytes: ArrayBuffer) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const base64 = (bytes: ArrayBuffer) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const fromBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * Signs platform requests with an Ed25519 key (api.md §4): `X-DAON-Signature` over
 * `<timestamp>\n<METHOD>\n<path?query>\n<hex SHA-256 of the body>`. The key is a Web Crypto
 * key or a base64 PKCS#8 DER private key; register its public half (base64 SPKI DER) with DAON.
 */
export function ed25519Signer(privateKey: CryptoKey | string, now: () => number = Date.now): RequestSigner {
  const key =
    typeof privateKey === "string"
      ? crypto.subtle.importKey("pkcs8", fromBase64(privateKey), { name: "Ed25519" }, false, ["sign"])
      : Promise.resolve(privateKey);
  return async (method, pathAndQuery, body) => {
    const timestamp = String(Math.floor(now() / 1000));
    const bodyHash = hex(await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>));
    const text = `${timestamp}\n${method.toUpperCase()}\n${pathAndQuery}\n${bodyHash}`;
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, await key, new TextEncoder().encode(text));
    return { "X-DAON-Timestamp": timestamp, "X-DAON-Signature": base64(signature) };
  };
}

export interface PlatformWork extends ProtectFields {
  /** The platform's user, `name` or `name@<domain>`. */
  username: string;
  content?: string;
  contentHash?: string;
}

/** What a platform key does under `/api/v1/broker` (api.md §4); the client must hold the key (`apiKey`). */
export class PlatformApi {
  constructor(private readonly call: Call) {}

  /** Who am I: the platform, this key and the quota left. */
  async whoami(options?: CallOptions): Promise<PlatformIdentity> {
    return data(await this.call<PlatformIdentity>({ method: "GET", path: "/api/v1/broker/verify", idempotent: true }, options));
  }

  /** Registers a work for one of the platform's users. */
  async protect(work: PlatformWork, options: CallOptions & { wait?: Wait } = {}): Promise<ProtectResult & { broker?: string }> {
    const answer = await this.call<ProtectResult & { broker?: string }>(
      {
        method: "POST",
        path: "/api/v1/broker/protect",
        query: { wait: options.wait === undefined ? undefined : String(options.wait) },
        json: work,
        idempotent: true,
      },
      { ...options, timeoutMs: options.timeoutMs ?? 60_000 },
    );
    return { ...data(answer), httpStatus: answer.status as ProtectResult["httpStatus"] };
  }

  /** A registration, with `ownerIdentity` when one of this platform's users owns it; `isValid: false` when unknown. */
  async content(hash: string, options?: CallOptions): Promise<Verification & { ownerIdentity?: string | null }> {
    const answer = await this.call<Verification>(
      { method: "GET", path: `/api/v1/broker/content/${encodeURIComponent(hash)}`, accept: [404], idempotent: true },
      options,
    );
    if (answer.status === 404) {
      const details = (answer.body as { error?: { details?: { contentHash?: string } } }).error?.details;
      return { isValid: false, contentHash: details?.contentHash ?? hash };
    }
    return data(answer);
  }

  /** A page of the works one of this platform's users owns. */
  async worksOf(username: string, page: PageQuery = {}, options?: CallOptions): Promise<Page<Registration> & { ownerIdentity: string }> {
    return data(
      await this.call<Page<Registration> & { ownerIdentity: string }>(
        { method: "GET", path: "/api/v1/broker/content", query: { username, ...page }, idempotent: true },
        options,
      ),
    );
  }

  /** Moves a work between two of this platform's users. */
  async transfer(
    transfer: { contentHash: string; currentOwner: string; newOwner: string; reason?: string },
    options: CallOptions & { wait?: Wait } = {},
  ): Promise<Transfer & { previousOwnerIdentity: string; newOwnerIdentity: string }> {
    const answer = await this.call<{ transfer: Transfer & { previousOwnerIdentity: string; newOwnerIdentity: string } }>(
      {
        method: "POST",
        path: "/api/v1/broker/transfer",
        query: { wait: options.wait === undefined ? undefined : String(options.wait) },
        json: transfer,
      },
      { ...options, timeoutMs: options.timeoutMs ?? 60_000 },
    );
    return data(answer).transfer;
  }

  /** Calls made with this platform's keys over a window of at most 31 days (default the last 7). */
  async usage(range: { start_date?: string; end_date?: string } = {}, options?: CallOptions): Promise<Usage> {
    return data(await this.call<Usage>({ method: "GET", path: "/api/v1/broker/usage", query: range, idempotent: true }, options));
  }

  /** This platform's keys (never their secrets). */
  async keys(options?: CallOptions): Promise<PlatformKey[]> {
    return data(await this.call<{ keys: PlatformKey[] }>({ method: "GET", path: "/api/v1/broker/keys", idempotent: true }, options)).keys;
  }

  /** A new key with at most the caller's scopes; `api_key` is shown this once. */
  async createKey(
    key: { name: string; scopes?: PlatformScope[]; expires_in_days?: number },
    options?: CallOptions,
  ): Promise<IssuedPlatformKey> {
    return data(await this.call<IssuedPlatformKey>({ method: "POST", path: "/api/v1/broker/keys", json: key }, options));
  }

  /** Revokes one of this platform's keys at once. */
  async revokeKey(id: string, options?: CallOptions): Promise<PlatformKey> {
    return data(await this.call<{ key: PlatformKey }>({ method: "DELETE", path: `/api/v1/broker/keys/${encodeURIComponent(id)}` }, options))
      .key;
  }

  /** A new key with the caller's scopes; the caller's key keeps working for `overlap_hours` (24). */
  async rotateKey(rotation: { overlap_hours?: number } = {}, options?: CallOptions): Promise<IssuedPlatformKey> {
    return data(await this.call<IssuedPlatformKey>({ method: "POST", path: "/api/v1/broker/keys/rotate", json: rotation }, options));
  }
}

/** A platform's webhooks (api.md §5); the key needs the `broker:webhooks` scope. */
export class WebhooksApi {
  constructor(private readonly call: Call) {}

  async create(webhook: NewWebhook, options?: CallOptions): Promise<CreatedWebhook> {
    return data(await this.call<CreatedWebhook>({ method: "POST", path: "/api/v1/broker/webhooks", json: webhook }, options));
  }

  async list(page: PageQuery = {}, options?: CallOptions): Promise<Page<Webhook>> {
    return data(
      await this.call<Page<Webhook>>({ method: "GET", path: "/api/v1/broker/webhooks", query: { ...page }, idempotent: true }, options),
    );
  }

  async get(id: string, options?: CallOptions): Promise<Webhook> {
    return data(await this.call<{ webhook: Webhook }>({ method: "GET", path: this.#path(id), idempotent: true }, options)).webhook;
  }

  async update(
    id: string,
    changes: Partial<Omit<NewWebhook, "secret">> & { enabled?: boolean; secret?: string },
    options?: CallOptions,
  ): Promise<Webhook> {
    return data(await this.call<{ webhook: Webhook }>({ method: "PATCH", path: this.#path(id), json: changes }, options)).webhook;
  }

  async delete(id: string, options?: CallOptions): Promise<void> {
    await this.call({ method: "DELETE", path: this.#path(id) }, options);
  }

  async stats(id: string, options?: CallOptions): Promise<WebhookStats> {
    return data(await this.call<{ stats: WebhookStats }>({ method: "GET", path: `${this.#path(id)}/stats`, idempotent: true }, options))
      .stats;
  }

  /** The delivery log, newest first, optionally of one status. */
  async deliveries(
    id: string,
    query: PageQuery & { status?: WebhookDelivery["status"] } = {},
    options?: CallOptions,
  ): Promise<Page<WebhookDelivery>> {
    return data(
      await this.call<Page<WebhookDelivery>>(
        { method: "GET", path: `${this.#path(id)}/deliveries`, query: { ...query }, idempotent: true },
        options,
      ),
    );
  }

  /** Queues a delivery again: same delivery id and body, a fresh round of retries. */
  async redeliver(
    id: string,
    deliveryId: string,
    options?: CallOptions,
  ): Promise<Pick<WebhookDelivery, "id" | "event" | "status" | "attempts" | "next_attempt_at">> {
    const path = `${this.#path(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`;
    return data(await this.call<{ delivery: WebhookDelivery }>({ method: "POST", path }, options)).delivery;
  }

  /** Sends one `webhook.test` event now and says what the receiver answered. */
  async test(id: string, options?: CallOptions): Promise<WebhookTestResult> {
    return data(await this.call<WebhookTestResult>({ method: "POST", path: `${this.#path(id)}/test` }, options));
  }

  #path(id: string): string {
    return `/api/v1/broker/webhooks/${encodeURIComponent(id)}`;
  }
}
