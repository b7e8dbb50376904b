import type { Selectable } from "kysely";
import type { WebhookAttemptsTable, WebhookDeliveriesTable, WebhooksTable } from "./tables.js";

export type WebhookRow = Selectable<WebhooksTable>;
export type DeliveryRow = Selectable<WebhookDeliveriesTable>;
export type AttemptRow = Selectable<WebhookAttemptsTable>;

export const MAX_CUSTOM_HEADERS = 10;
export const MIN_SECRET_LENGTH = 32;
export const RETRIES = { min: 0, max: 20, default: 5 };
export const RETRY_DELAY_SECONDS = { min: 10, max: 3600, default: 60 };

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const HEADER_VALUE = /^[\t\x20-\x7e]{0,1024}$/;

/** Why a custom header may not be set (api.md §5), or undefined. The API sets these itself. */
export function customHeaderProblem(name: string, value: unknown): string | undefined {
  if (!HEADER_NAME.test(name)) return "is not a valid header name";
  const lower = name.toLowerCase();
  if (lower.startsWith("x-daon-") || lower.startsWith("content-") || lower === "host" || lower === "user-agent") {
    return "is set by DAON and cannot be overridden (X-DAON-*, Content-*, Host, User-Agent)";
  }
  if (typeof value !== "string" || !HEADER_VALUE.test(value)) return "must be a string of printable ASCII, at most 1024 characters";
  return undefined;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** The webhook object of api.md §5: never the secret, nor the custom headers (they may hold credentials). */
export function webhookObject(row: WebhookRow) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    enabled: row.enabled,
    description: row.description,
    created_at: new Date(row.created_at).toISOString(),
    last_triggered_at: iso(row.last_triggered_at),
    max_retries: row.max_retries,
    retry_delay_seconds: row.retry_delay_seconds,
  };
}

/** One entry of a webhook's deliveries log: where the delivery stands and what each attempt met. */
export function deliveryObject(row: DeliveryRow, attempts: AttemptRow[]) {
  const open = row.status === "pending" || row.status === "retrying";
  return {
    id: row.id,
    event: row.event,
    status: row.status,
    attempts: row.attempts,
    created_at: iso(row.created_at),
    last_attempt_at: iso(row.last_attempt_at),
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    next_attempt_at: open ? iso(row.next_attempt_at) : null,
    finished_at: iso(row.finished_at),
    attempt_log: attempts.map((a) => ({
      attempted_at: iso(a.attempted_at),
      success: a.success,
      status_code: a.status_code,
      error: a.error,
      duration_ms: a.duration_ms,
    })),
  };
}
