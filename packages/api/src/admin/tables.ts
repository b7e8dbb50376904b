import type { ColumnType, Generated } from "kysely";
import type { Timestamp } from "../db/schema.js";

/** One administrator change (api.md §6): written in the change's transaction, never updated or deleted. */
export interface AdminAuditLogTable {
  /** Insertion order: the log's pages follow it. */
  seq: Generated<string>;
  id: string;
  at: Timestamp;
  actor_id: string;
  action: string;
  target_type: string;
  target_id: string;
  details: ColumnType<Record<string, unknown>, string, string>;
  ip: string | null;
  request_id: string | null;
}

/** The admin concept's tables, merged into db/schema.ts's Database through the platforms' tables. */
export interface AdminTables {
  admin_audit_log: AdminAuditLogTable;
}
