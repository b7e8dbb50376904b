import type { ColumnType } from "kysely";
import type { AdminTables } from "../admin/tables.js";
import type { Timestamp } from "../db/schema.js";

type NullableTimestamp = ColumnType<Date | null, Date | string | null, Date | string | null>;

export type CertificationTier = "community" | "standard" | "enterprise";
export type CertificationStatus = "pending" | "active" | "suspended";

/** A platform (broker) that registers works for its users (api.md §4). */
export interface PlatformsTable {
  id: string;
  /** Lowercase host name; its users are `username@domain`. */
  domain: string;
  name: string;
  contact_email: string;
  certification_tier: CertificationTier;
  certification_status: CertificationStatus;
  require_signature: boolean;
  /** Ed25519 public key, base64 SPKI DER. */
  public_key: string | null;
  /** Admin overrides of the tier's quotas; null = the tier's. */
  hourly_limit: number | null;
  daily_limit: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  approved_at: NullableTimestamp;
  suspended_at: NullableTimestamp;
  suspend_reason: string | null;
}

/** A platform key: only its HMAC is kept, under the API_KEY_SECRET named by `hash_key_id`. */
export interface PlatformKeysTable {
  /** The key's 16 hex id, also the visible prefix's tail. */
  id: string;
  platform_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  hash_key_id: string;
  /** Space-separated scopes. */
  scopes: string;
  created_at: Timestamp;
  expires_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
}

/** A platform's user `username@domain` and the opaque owner id that stands for them on the ledger. */
export interface PlatformUsersTable {
  platform_id: string;
  username: string;
  owner_id: string;
  created_at: Timestamp;
}

/** Quota units used per platform and UTC hour or day, shared by every API instance. */
export interface PlatformQuotaCountersTable {
  platform_id: string;
  period: "hour" | "day";
  period_start: Timestamp;
  used: number;
}

/** Platform-key calls per platform, UTC hour, route template and method. */
export interface PlatformUsageTable {
  platform_id: string;
  hour: Timestamp;
  endpoint: string;
  method: string;
  requests: number;
  successes: number;
  errors: number;
  total_ms: number;
}

/** Request signatures seen in the last minutes, so none is accepted twice. */
export interface PlatformSignaturesTable {
  digest: string;
  platform_id: string;
  seen_at: Timestamp;
}

/** This concept's tables, merged into db/schema.ts's Database (with the admin audit log). */
export interface PlatformTables extends AdminTables {
  platforms: PlatformsTable;
  platform_keys: PlatformKeysTable;
  platform_users: PlatformUsersTable;
  platform_quota_counters: PlatformQuotaCountersTable;
  platform_usage: PlatformUsageTable;
  platform_signatures: PlatformSignaturesTable;
}
