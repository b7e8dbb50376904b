import { DaonAbortError, DaonApiError, DaonError, DaonNetworkError, DaonTimeoutError } from "./errors.js";

/** Options every call accepts. */
export interface CallOptions {
  /** Cancels the call, including any wait between retries. */
  signal?: AbortSignal;
  /** Per attempt; default the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Retries after 429/503 (and network errors on reads); default the client's `retries`. */
  retries?: number;
  /** Extra request headers (e.g. `X-Request-Id`). */
  headers?: Record<string, string>;
}

export interface RetryPolicy {
  /** Attempts after the first; 0 disables retries. */
  retries: number;
  /** First backoff delay when the server gives no `Retry-After`; doubled each attempt, with jitter. */
  baseDelayMs: number;
  /** Longest single wait; a `Retry-After` longer than this is not waited for (the error is thrown). */
  maxDelayMs: number;
}

export interface Request {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  bytes?: Uint8Array;
  /** Send no Authorization header even if the client has a credential. */
  anonymous?: boolean;
  /** Statuses returned as answers instead of thrown (e.g. 404 for a lookup that may find nothing). */
  accept?: number[];
  /** Safe to repeat after a network error (no side effects, or idempotent by design). */
  idempotent?: boolean;
}

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TransportSettings {
  baseUrl: string;
  fetch: typeof fetch;
  timeoutMs: number;
  retry: RetryPolicy;
  headers: Record<string, string>;
  /** Authorization header value for this request, or undefined. */
  authorization: () => string | undefined;
  /** Extra headers computed from the exact bytes sent (platform request signatures). */
  sign?: (method: string, pathAndQuery: string, body: Uint8Array) => Promise<Record<string, string>>;
  /** Called on 401 TOKEN_EXPIRED; resolves true when a fresh credential is in place and the call may be repeated once. */
  refresh?: () => Promise<boolean>;
}

const RETRIED_STATUSES = new Set([429, 503]);

/** Seconds from a `Retry-After` header: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function urlOf(baseUrl: string, path: string, query: Request["query"]): { url: string; pathAndQuery: string } {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  const pathAndQuery = `${path}${text ? `?${text}` : ""}`;
  return { url: `${baseUrl}${pathAndQuery}`, pathAndQuery };
}

/**
 * One API call: JSON in and out, the error envelope turned into DaonApiError, per-attempt
 * timeout, cancellation, and retries with backoff on 429/503 that honour `Retry-After`.
 */
export async function send<T>(settings: TransportSettings, request: Request, options: CallOptions = {}): Promise<Answer<T>> {
  const retries = options.retries ?? settings.retry.retries;
  const { url, pathAndQuery } = urlOf(settings.baseUrl, request.path, request.query);
  const body = request.bytes ?? (request.json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(request.json)));
  let refreshed = false;
  for (let attempt = 0; ; attempt++) {
    let answer: Answer<T>;
    try {
      answer = await attemptOnce<T>(settings, request, options, url, pathAndQuery, body);
    } catch (error) {
      // A read may be repeated after a lost connection; a write may not, unless it is idempotent.
      if (error instanceof DaonNetworkError && request.idempotent && attempt < retries) {
        await wait(backoff(settings.retry, attempt), options.signal);
        continue;
      }
      throw error;
    }
    if (answer.status < 400 || request.accept?.includes(answer.status)) return answer;
    const failure = apiError(answer);
    if (failure.code === "TOKEN_EXPIRED" && settings.refresh && !refreshed) {
      refreshed = true;
      if (await settings.refresh()) {
        attempt--;
        continue;
      }
    }
    if (RETRIED_STATUSES.has(answer.status) && attempt < retries) {
      const asked = failure.retryAfterSeconds;
      const delay = asked === undefined ? backoff(settings.retry, attempt) : asked * 1000;
      if (delay <= settings.retry.maxDelayMs) {
        await wait(delay, options.signal);
        continue;
      }
    }
    throw failure;
  }
}

async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, signal);
  } catch (reason) {
    throw new DaonAbortError("the call was cancelled", { cause: reason });
  }
}

function backoff(policy: RetryPolicy, attempt: number): number {
  const full = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(full / 2 + Math.random() * (full / 2));
}

async function attemptOnce<T>(
  settings: TransportSettings,
  request: Request,
  options: CallOptions,
  url: string,
  pathAndQuery: string,
  body: Uint8Array | undefined,
): Promise<Answer<T>> {
  if (options.signal?.aborted) throw new DaonAbortError("the call was cancelled", { cause: options.signal.reason });
  const timeoutMs = options.timeoutMs ?? settings.timeoutMs;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const signal = options.signal ? anySignal([options.signal, timeout.signal]) : timeout.signal;
  const headers: Record<string, string> = { accept: "application/json", ...settings.headers, ...options.headers };
  if (body !== undefined) headers["content-type"] = request.bytes ? "application/octet-stream" : "application/json";
  const authorization = request.anonymous ? undefined : settings.authorization();
  if (authorization) headers.authorization = authorization;
  try {
    if (settings.sign && authorization?.startsWith("Bearer DAON_BR_")) {
      Object.assign(headers, await settings.sign(request.method, pathAndQuery, body ?? new Uint8Array()));
    }
    const response = await settings.fetch(url, { method: request.method, headers, body: body as BodyInit | undefined, signal });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new DaonNetworkError(`${request.method} ${request.path}: HTTP ${response.status} with a body that is not JSON`);
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  } catch (error) {
    if (error instanceof DaonError) throw error;
    if (options.signal?.aborted) throw new DaonAbortError("the call was cancelled", { cause: options.signal.reason });
    if (timeout.signal.aborted) throw new DaonTimeoutError(`${request.method} ${request.path}: no answer within ${timeoutMs} ms`);
    throw new DaonNetworkError(`${request.method} ${request.path}: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

function apiError(answer: Answer<unknown>): DaonApiError {
  const envelope = answer.body as { error?: { code?: string; message?: string; details?: Record<string, unknown>; requestId?: string } };
  const error = envelope?.error;
  return new DaonApiError({
    status: answer.status,
    code: error?.code ?? (answer.status >= 500 ? "INTERNAL_ERROR" : "UNKNOWN"),
    message: error?.message ?? `HTTP ${answer.status}`,
    details: error?.details,
    requestId: error?.requestId ?? answer.headers.get("x-request-id") ?? undefined,
    retryAfterSeconds: parseRetryAfter(answer.headers.get("retry-after")),
    body: answer.body,
  });
}

/** AbortSignal.any where it exists (Node ≥ 20.3, current browsers), else a small equivalent. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === "function") return AbortSignal.any(signals);
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}
