import type { ColumnType, Generated } from "kysely";
import type { Timestamp } from "../db/schema.js";

type NullableTimestamp = ColumnType<Date | null, Date | string | null, Date | string | null>;

/** The events a webhook can subscribe to (api.md §5). */
export const WEBHOOK_EVENTS = ["content.protected", "content.confirmed", "content.transferred"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A platform's webhook: where its events go and how hard to try. */
export interface WebhooksTable {
  id: string;
  platform_id: string;
  url: string;
  events: ColumnType<WebhookEvent[], string, string>;
  /** The signing secret sealed under ENCRYPTION_KEY (secrets/sealing.ts); never shown after creation. */
  secret_sealed: string;
  description: string | null;
  custom_headers: ColumnType<Record<string, string>, string, string>;
  enabled: boolean;
  max_retries: number;
  retry_delay_seconds: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_triggered_at: NullableTimestamp;
}

export type DeliveryStatus = "pending" | "retrying" | "success" | "dead";

/**
 * The webhook outbox: one row per (event, webhook), written in the transaction that caused
 * the event. Its id is the delivery id receivers deduplicate on; `payload` holds the exact
 * body, so every attempt sends the same bytes.
 */
export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  platform_id: string;
  event: string;
  payload: string;
  status: DeliveryStatus;
  /** Attempts ever made, redeliveries included. */
  attempts: number;
  /** Failed attempts since the delivery was queued or last redelivered: retry n is failure n. */
  failures: number;
  next_attempt_at: Timestamp;
  /** A worker's claim on the next attempt, until this time; another worker may take it after (a crash). */
  claimed_until: NullableTimestamp;
  claimed_by: string | null;
  last_attempt_at: NullableTimestamp;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Timestamp;
  /** When it succeeded or went dead. */
  finished_at: NullableTimestamp;
}

/** Each HTTP attempt of a delivery, for the deliveries log, stats and the failure-rate checks. */
export interface WebhookAttemptsTable {
  id: Generated<string>;
  delivery_id: string;
  webhook_id: string;
  attempted_at: Timestamp;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  success: boolean;
}

/** This concept's tables, merged into db/schema.ts's Database. */
export interface WebhookTables {
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
}
