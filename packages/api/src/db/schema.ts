import type { ColumnType, Generated } from "kysely";
import type { AccountTables } from "../accounts/tables.js";
import type { OperationsTables } from "../operations/tables.js";
import type { PlatformTables } from "../platforms/tables.js";
import type { WebhookTables } from "../webhooks/tables.js";

export type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** One row per content hash ever accepted: the read model the API answers from. */
export interface RegistrationsTable {
  content_hash: string;
  protection_id: string;
  status: "pending" | "confirmed";
  license: string;
  ai_training_policy: string;
  licensing_email: string | null;
  licensing_uri: string | null;
  metadata: ColumnType<Record<string, unknown>, string, string>;
  fingerprint: string;
  platform: string;
  owner_id: string | null;
  created_at: Timestamp;
  block_height: ColumnType<string | null, number | null, number | null>;
  tx_hash: string | null;
  block_time: ColumnType<Date | null, Date | string | null, Date | string | null>;
  ledger_creator: string | null;
  /** Test traffic tag (`loadtest:<runId>`, `smoke`), null for real registrations (ops.md §13). */
  source: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Registrations waiting to reach the ledger, written in the same transaction as the registration. */
export interface OutboxTable {
  id: Generated<string>;
  content_hash: string;
  status: "pending" | "submitted" | "done";
  tx_hash: string | null;
  created_at: Timestamp;
}

/** Signed transactions, stored before they are broadcast so a restart re-sends the same bytes. */
export interface SubmissionsTable {
  tx_hash: string;
  sequence: ColumnType<string, number, number>;
  raw: Uint8Array;
  status: "broadcast" | "committed" | "failed";
  created_at: Timestamp;
  committed_height: ColumnType<string | null, number | null, number | null>;
}

/** How far the indexer has read the ledger. */
export interface IndexerCursorTable {
  id: number;
  height: ColumnType<string, number, number>;
}

/** Every table; each concept declares its own in its folder's `tables.ts`. */
export interface Database extends AccountTables, PlatformTables, WebhookTables, OperationsTables {
  registrations: RegistrationsTable;
  outbox: OutboxTable;
  submissions: SubmissionsTable;
  indexer_cursor: IndexerCursorTable;
}
