/** Every `error.code` the API documents (api.md §1); a newer server may send others, so the type stays open. */
export type ApiErrorCode =
  | "VALIDATION_ERROR"
  | "MALFORMED_JSON"
  | "INVALID_HASH"
  | "NO_TEXT_CONTENT"
  | "EMPTY_FILE"
  | "UNAUTHORIZED"
  | "TOKEN_EXPIRED"
  | "INVALID_TOKEN"
  | "INVALID_CODE"
  | "SIGNATURE_INVALID"
  | "FORBIDDEN"
  | "INSUFFICIENT_SCOPE"
  | "PLATFORM_NOT_ACTIVE"
  | "NOT_OWNER"
  | "NOT_FOUND"
  | "NOT_CONFIRMED"
  | "PLATFORM_EXISTS"
  | "TRANSFER_PENDING"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "RATE_LIMITED"
  | "QUOTA_EXCEEDED"
  | "INTERNAL_ERROR"
  | "SERVICE_UNAVAILABLE"
  | "MAINTENANCE"
  | (string & {});

/** Base class of everything the SDK throws, so one `instanceof` catches them all. */
export class DaonError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The API answered with its error envelope: `code` is stable, branch on it (never on `message`). */
export class DaonApiError extends DaonError {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfterSeconds: number | undefined;
  /** The whole JSON body, for fields beside `error` (e.g. `isValid`, `contentHash` on a 404 lookup). */
  readonly body: unknown;

  constructor(init: {
    status: number;
    code: ApiErrorCode;
    message: string;
    details?: Record<string, unknown>;
    requestId?: string;
    retryAfterSeconds?: number;
    body?: unknown;
  }) {
    super(`${init.code}: ${init.message}`);
    this.status = init.status;
    this.code = init.code;
    this.details = init.details;
    this.requestId = init.requestId;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.body = init.body;
  }
}

/** No answer within the client's timeout (after any retries). */
export class DaonTimeoutError extends DaonError {}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class DaonAbortError extends DaonError {}

/** The request never got an HTTP answer (connection refused, DNS, reset) or the answer was not the API's JSON. */
export class DaonNetworkError extends DaonError {}

/** A webhook delivery whose signature or timestamp does not hold; `reason` says which. */
export class WebhookSignatureError extends DaonError {
  constructor(
    readonly reason: "missing_headers" | "malformed" | "stale" | "mismatch",
    message: string,
  ) {
    super(message);
  }
}
