import { hashRawText, hashText, parseContentHash, type ProofBundle } from "@daon/core";
import { AdminApi } from "./admin.js";
import { AuthApi, MeApi } from "./accounts.js";
import { bytesOf, type FileInput, hashFile } from "./content.js";
import { DaonApiError } from "./errors.js";
import { PlatformApi, type RequestSigner, WebhooksApi } from "./platforms.js";
import { type Answer, type CallOptions, type Request, type RetryPolicy, send, type TransportSettings } from "./transport.js";
import type {
  AiTrainingPolicy,
  BulkItem,
  BulkResult,
  GenesisValidators,
  Health,
  History,
  Licence,
  ProtectFields,
  ProtectResult,
  Registration,
  ServiceInfo,
  Stats,
  Tokens,
  Verification,
  Wait,
} from "./types.js";

export interface DaonClientOptions {
  /** Where the API is, e.g. `https://daon.example`; default the page's origin in a browser, else `http://localhost:3000`. */
  baseUrl?: string;
  /** A platform key `DAON_BR_…` (api.md §4). */
  apiKey?: string;
  /** A signed-in account's access token, and its refresh token to renew it when it expires. */
  accessToken?: string;
  refreshToken?: string;
  /** Told whenever the client's tokens change (sign-in, refresh, sign-out), so an app can keep them. */
  onTokens?: (tokens: Tokens | undefined) => void;
  /** Signs platform requests (X-DAON-Timestamp, X-DAON-Signature) for platforms that require it; see `ed25519Signer`. */
  signer?: RequestSigner;
  /** Per-attempt timeout in ms (default 30 000). */
  timeoutMs?: number;
  /** Retries on 429/503 (honouring Retry-After) and on network errors for reads (default 3, from 500 ms, at most 30 s a wait). */
  retry?: Partial<RetryPolicy>;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch implementation (default the global one). */
  fetch?: typeof fetch;
}

export interface ProtectOptions extends CallOptions {
  /** Wait for the ledger: true (server default, 10 s), false, or up to 30 seconds. */
  wait?: Wait;
  /** Hash here and send only the hash, so the content never leaves this machine (default false: send the content). */
  hashLocally?: boolean;
}

export interface TextWork extends ProtectFields {
  content: string;
}

export interface HashWork extends ProtectFields {
  contentHash: string;
}

/** Fields of a file registration; with `upload` they go as query parameters (api.md §2.2). */
export interface FileFields {
  title?: string;
  type?: string;
  description?: string;
  license?: Licence;
  ai_training_policy?: AiTrainingPolicy;
  licensing_email?: string;
  licensing_uri?: string;
}

const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelayMs: 500, maxDelayMs: 30_000 };

function defaultBaseUrl(): string {
  const location = (globalThis as { location?: { origin?: string } }).location;
  return location?.origin && location.origin !== "null" ? location.origin : "http://localhost:3000";
}

const waitQuery = (wait: Wait | undefined) => (wait === undefined ? undefined : String(wait));

/** Drops the envelope's `success` flag: answers are returned as their data. */
function data<T>(answer: Answer<T & { success?: boolean }>): T {
  const { success: _success, ...rest } = answer.body as T & { success?: boolean };
  return rest as T;
}

/**
 * A typed client for the DAON API. Content calls work without credentials; account calls need
 * `accessToken` (or a sign-in through `auth`), platform calls an `apiKey`.
 *
 * ```ts
 * const daon = new DaonClient({ baseUrl: "https://daon.example" });
 * const work = await daon.protect("My poem", { license: "cc-by", ai_training_policy: "prohibited" });
 * console.log(work.verificationUrl);
 * ```
 */
export class DaonClient {
  readonly baseUrl: string;
  /** Sign-in by e-mail link and TOTP; sessions and tokens. */
  readonly auth: AuthApi;
  /** The signed-in account: profile, works, transfers. */
  readonly me: MeApi;
  /** What a platform key can do under `/api/v1/broker`. */
  readonly platform: PlatformApi;
  /** A platform's webhooks. */
  readonly webhooks: WebhooksApi;
  /** Administrators: platforms and the audit log. */
  readonly admin: AdminApi;
  #apiKey: string | undefined;
  #tokens: { access?: string; refresh?: string; tokens?: Tokens };
  readonly #settings: TransportSettings;
  readonly #onTokens: ((tokens: Tokens | undefined) => void) | undefined;

  constructor(options: DaonClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#tokens = { access: options.accessToken, refresh: options.refreshToken };
    this.#onTokens = options.onTokens;
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#settings = {
      baseUrl: this.baseUrl,
      fetch: fetchImpl,
      timeoutMs: options.timeoutMs ?? 30_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      headers: options.headers ?? {},
      authorization: () => {
        const credential = this.#apiKey ?? this.#tokens.access;
        return credential ? `Bearer ${credential}` : undefined;
      },
      sign: options.signer ? (method, path, body) => options.signer!(method, path, body) : undefined,
      refresh: () => this.#refresh(),
    };
    const call = this.call.bind(this);
    this.auth = new AuthApi(call, {
      set: (tokens) => this.setTokens(tokens),
      refreshToken: () => this.#tokens.refresh,
    });
    this.me = new MeApi(call);
    this.platform = new PlatformApi(call);
    this.webhooks = new WebhooksApi(call);
    this.admin = new AdminApi(call);
  }

  /** Uses these tokens from now on (or none: signed out), and tells `onTokens`. */
  setTokens(tokens: Tokens | undefined): void {
    this.#tokens = { access: tokens?.access_token, refresh: tokens?.refresh_token, tokens };
    this.#onTokens?.(tokens);
  }

  /** Uses this platform key from now on (or none). */
  setApiKey(apiKey: string | undefined): void {
    this.#apiKey = apiKey;
  }

  /** True when the client holds an access token or a platform key. */
  get authenticated(): boolean {
    return Boolean(this.#apiKey ?? this.#tokens.access);
  }

  /** A raw call: JSON in and out with this client's credentials, retries and timeouts. For endpoints the SDK does not wrap. */
  call<T>(request: Request, options?: CallOptions): Promise<Answer<T>> {
    return send<T>(this.#settings, request, options);
  }

  async #refresh(): Promise<boolean> {
    const refreshToken = this.#tokens.refresh;
    if (!refreshToken || this.#apiKey) return false;
    try {
      const answer = await send<Tokens>(this.#settings, {
        method: "POST",
        path: "/api/v1/auth/refresh",
        json: { refresh_token: refreshToken },
        anonymous: true,
      });
      this.setTokens(data(answer));
      return true;
    } catch (error) {
      // A spent or revoked refresh token: the account is signed out here.
      if (error instanceof DaonApiError && error.status === 401) this.setTokens(undefined);
      return false;
    }
  }

  // Content (api.md §2).

  /** Registers a text (canonicalised and hashed by the server, or here with `hashLocally`). */
  async protect(work: string | TextWork, options: ProtectOptions = {}): Promise<ProtectResult> {
    const { content, ...fields } = typeof work === "string" ? { content: work } : work;
    if (options.hashLocally) {
      const metadata = { ...fields.metadata, type: fields.metadata?.type ?? "text" };
      return this.protectHash({ ...fields, metadata, contentHash: hashText(content) }, options);
    }
    return this.#protect({ json: { ...fields, content } }, options);
  }

  /** Registers a file: only its hash is sent unless `upload` (then the bytes go, and the server hashes them). */
  async protectFile(
    file: FileInput,
    fields: FileFields & { metadata?: ProtectFields["metadata"] } = {},
    options: ProtectOptions & { upload?: boolean } = {},
  ): Promise<ProtectResult> {
    if (options.upload) {
      const { metadata: _metadata, ...query } = fields;
      return this.#protect({ bytes: await bytesOf(file), query }, options);
    }
    const { title, type, description, metadata, ...terms } = fields;
    const contentHash = await hashFile(file);
    const merged = { ...metadata, ...defined({ title, description }), type: type ?? metadata?.type ?? "file" };
    return this.protectHash({ ...terms, metadata: merged, contentHash }, options);
  }

  /** Registers a hash computed elsewhere (64 hex, optionally `sha256:`); the content stays with the creator. */
  async protectHash(work: string | HashWork, options: ProtectOptions = {}): Promise<ProtectResult> {
    const { contentHash, ...fields } = typeof work === "string" ? { contentHash: work } : work;
    return this.#protect({ json: { ...fields, contentHash } }, options);
  }

  async #protect(
    body: { json?: unknown; bytes?: Uint8Array; query?: Record<string, string | undefined> },
    options: ProtectOptions,
  ): Promise<ProtectResult> {
    const answer = await this.call<Registration & { success: true }>(
      {
        method: "POST",
        path: "/api/v1/protect",
        query: { ...body.query, wait: waitQuery(options.wait) },
        json: body.json,
        bytes: body.bytes,
        idempotent: true, // one registration per hash, ever (api.md §2.2)
      },
      withWaitTimeout(options),
    );
    return { ...data(answer), httpStatus: answer.status as ProtectResult["httpStatus"] };
  }

  /** Registers up to 100 works in one call; each item succeeds or fails alone. */
  async bulk(works: BulkItem[], defaults: ProtectFields = {}, options: ProtectOptions = {}): Promise<BulkResult> {
    const items = options.hashLocally
      ? works.map(({ content, ...item }) =>
          content === undefined ? item : { ...item, contentHash: hashText(content), metadata: { type: "text", ...item.metadata } },
        )
      : works;
    const answer = await this.call<BulkResult>(
      {
        method: "POST",
        path: "/api/v1/protect/bulk",
        query: { wait: waitQuery(options.wait) },
        json: { ...defaults, works: items },
        idempotent: true,
      },
      withWaitTimeout(options),
    );
    return data(answer);
  }

  /** Looks a hash up: `isValid: false` when nothing is registered under it. */
  async verify(hash: string, options?: CallOptions): Promise<Verification> {
    const answer = await this.call<Verification>(
      { method: "GET", path: `/api/v1/verify/${encodeURIComponent(hash)}`, accept: [404], idempotent: true },
      options,
    );
    return notFoundAsInvalid(answer, hash);
  }

  /**
   * Looks content up. Text matches by its canonical hash, then by the hash of its raw UTF-8; a
   * file by its bytes. With `hashLocally` the hashes are computed here and only they are sent.
   */
  async verifyContent(content: string | FileInput, options: CallOptions & { hashLocally?: boolean } = {}): Promise<Verification> {
    if (options.hashLocally) return this.#verifyLocally(content, options);
    const request: Request =
      typeof content === "string"
        ? { method: "POST", path: "/api/v1/verify-content", json: { content } }
        : { method: "POST", path: "/api/v1/verify-content", bytes: await bytesOf(content) };
    const answer = await this.call<Verification>({ ...request, accept: [404], idempotent: true }, options);
    return notFoundAsInvalid(answer, "");
  }

  async #verifyLocally(content: string | FileInput, options: CallOptions): Promise<Verification> {
    const candidates: { hash: string; matchedBy: "canonical" | "raw" | "file" }[] = [];
    if (typeof content === "string") {
      const canonical = attempt(() => hashText(content));
      if (canonical) candidates.push({ hash: canonical, matchedBy: "canonical" });
      const raw = attempt(() => hashRawText(content));
      if (raw && raw !== canonical) candidates.push({ hash: raw, matchedBy: "raw" });
      // Text that is no text at all is refused as the server refuses it.
      if (!canonical) hashText(content);
    } else {
      candidates.push({ hash: await hashFile(content), matchedBy: "file" });
    }
    for (const { hash, matchedBy } of candidates) {
      const found = await this.verify(hash, options);
      if (found.isValid) return { ...found, matchedBy };
    }
    return { isValid: false, contentHash: candidates[0].hash };
  }

  /** The proof bundle of a confirmed registration (or, with `absent`, of a hash's absence), for `verifyProofBundle`. */
  async proof(hash: string, options: CallOptions & { absent?: boolean } = {}): Promise<ProofBundle> {
    const answer = await this.call<ProofBundle & { success?: true }>(
      {
        method: "GET",
        path: `/api/v1/proof/${encodeURIComponent(hash)}`,
        query: { absent: options.absent || undefined },
        idempotent: true,
      },
      options,
    );
    return data(answer) as ProofBundle;
  }

  /** A work's registration and transfers, oldest first. */
  async history(hash: string, options?: CallOptions): Promise<History> {
    return data(
      await this.call<History>({ method: "GET", path: `/api/v1/content/${encodeURIComponent(hash)}/history`, idempotent: true }, options),
    );
  }

  /** Registration counts and the ledger's position. */
  async stats(options?: CallOptions): Promise<Stats> {
    return data(await this.call<Stats>({ method: "GET", path: "/api/v1/stats", idempotent: true }, options));
  }

  /** Health of the API and its dependencies; answered (not thrown) when unhealthy. */
  async health(options?: CallOptions): Promise<Health> {
    return (await this.call<Health>({ method: "GET", path: "/health", accept: [503], idempotent: true }, { retries: 0, ...options })).body;
  }

  /** Name, version and chain of the API. */
  async info(options?: CallOptions): Promise<ServiceInfo> {
    return data(await this.call<ServiceInfo>({ method: "GET", path: "/api/v1", idempotent: true }, options));
  }

  /** The OpenAPI 3.1 document of the API (every public endpoint, from the route schemas). */
  async openapi(options?: CallOptions): Promise<Record<string, unknown>> {
    return (await this.call<Record<string, unknown>>({ method: "GET", path: "/api/v1/openapi.json", idempotent: true }, options)).body;
  }

  /**
   * The validators the chain's genesis names. Trusting this answer is trusting the server: for an
   * independent check, compare the key with one published elsewhere, or read the genesis file.
   */
  async genesisValidators(options?: CallOptions): Promise<GenesisValidators> {
    return data(await this.call<GenesisValidators>({ method: "GET", path: "/api/v1/chain/genesis-validators", idempotent: true }, options));
  }
}

/** Waiting protect calls get the wait on top of the timeout, so a 30 s wait is not cut short. */
function withWaitTimeout(options: ProtectOptions): CallOptions {
  const waitSeconds = options.wait === false ? 0 : typeof options.wait === "number" ? options.wait : 10;
  return { ...options, timeoutMs: options.timeoutMs ?? 30_000 + waitSeconds * 1000 };
}

function notFoundAsInvalid(answer: Answer<Verification>, hash: string): Verification {
  if (answer.status !== 404) return data(answer);
  const body = answer.body as { contentHash?: string; error?: { code?: string } };
  if (body?.error?.code !== "NOT_FOUND")
    throw new DaonApiError({ status: 404, code: body?.error?.code ?? "NOT_FOUND", message: "not found", body });
  let contentHash = body.contentHash ?? hash;
  try {
    contentHash = parseContentHash(contentHash);
  } catch {}
  return { isValid: false, contentHash };
}

function attempt(hash: () => string): string | undefined {
  try {
    return hash();
  } catch {
    return undefined;
  }
}

function defined<T extends Record<string, unknown>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}
