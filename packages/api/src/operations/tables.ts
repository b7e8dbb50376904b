import type { ColumnType } from "kysely";
import type { Timestamp } from "../db/schema.js";

/**
 * What one API instance served in one minute (ops.md §13), apart for live and test traffic
 * (requests made with a load-test key): the source of `daon report`, no Prometheus needed.
 */
export interface ApiMinuteStatsTable {
  instance: string;
  minute: Timestamp;
  traffic: "live" | "test";
  requests: number;
  status_2xx: number;
  status_3xx: number;
  status_4xx: number;
  status_5xx: number;
  /** Requests by HTTP status, e.g. {"200": 12, "429": 1}. */
  statuses: ColumnType<Record<string, number>, string, string>;
  /** Requests by latency bucket: upper bound in ms ("+Inf" last) → count, not cumulative. */
  latency_buckets: ColumnType<Record<string, number>, string, string>;
  latency_sum_ms: number;
  max_in_flight: number;
  /** The instance was serving (its database answered) when the minute closed; a minute without a row was down. */
  healthy: boolean;
  outbox_pending: number | null;
}

/** Short-lived credentials for one load test or smoke run (ops.md §4): tag, quota and expiry. */
export interface LoadTestKeysTable {
  id: string;
  /** SHA-256 of the whole key: the secret part is 192 random bits, so no slow hash is needed. */
  key_hash: string;
  /** The source tag its registrations carry: `loadtest:<runId>` or `smoke`. */
  tag: string;
  run_id: string | null;
  quota_per_minute: number;
  created_at: Timestamp;
  expires_at: Timestamp;
}

/** Maintenance mode (ops.md §6): one row, shared by every API instance of the deployment. */
export interface OperationsMaintenanceTable {
  id: number;
  enabled: boolean;
  since: ColumnType<Date | null, Date | string | null, Date | string | null>;
  reason: string | null;
}

/** This concept's tables, merged into db/schema.ts's Database. */
export interface OperationsTables {
  operations_maintenance: OperationsMaintenanceTable;
  api_minute_stats: ApiMinuteStatsTable;
  loadtest_keys: LoadTestKeysTable;
}
