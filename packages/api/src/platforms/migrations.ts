import type { Kysely, Migration } from "kysely";
import { adminMigrations } from "../admin/migrations.js";

/** This concept's part of the schema's history: see db/migrations.ts. */
export const platformMigrations: Record<string, Migration> = {
  "0003_platforms": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("platforms")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("domain", "text", (c) => c.notNull().unique())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("contact_email", "text", (c) => c.notNull())
        .addColumn("certification_tier", "text", (c) => c.notNull())
        .addColumn("certification_status", "text", (c) => c.notNull())
        .addColumn("require_signature", "boolean", (c) => c.notNull())
        .addColumn("public_key", "text")
        .addColumn("hourly_limit", "integer")
        .addColumn("daily_limit", "integer")
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("updated_at", "timestamptz", (c) => c.notNull())
        .addColumn("approved_at", "timestamptz")
        .addColumn("suspended_at", "timestamptz")
        .addColumn("suspend_reason", "text")
        .execute();
      await db.schema.createIndex("platforms_status_created").on("platforms").columns(["certification_status", "created_at"]).execute();

      await db.schema
        .createTable("platform_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("platform_id", "text", (c) => c.notNull().references("platforms.id"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("prefix", "text", (c) => c.notNull().unique())
        .addColumn("key_hash", "text", (c) => c.notNull())
        .addColumn("hash_key_id", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("expires_at", "timestamptz")
        .addColumn("revoked_at", "timestamptz")
        .addColumn("last_used_at", "timestamptz")
        .execute();
      await db.schema.createIndex("platform_keys_platform").on("platform_keys").columns(["platform_id", "created_at"]).execute();

      await db.schema
        .createTable("platform_users")
        .addColumn("platform_id", "text", (c) => c.notNull().references("platforms.id"))
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("owner_id", "text", (c) => c.notNull().unique())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addPrimaryKeyConstraint("platform_users_pk", ["platform_id", "username"])
        .execute();

      await db.schema
        .createTable("platform_quota_counters")
        .addColumn("platform_id", "text", (c) => c.notNull())
        .addColumn("period", "text", (c) => c.notNull())
        .addColumn("period_start", "timestamptz", (c) => c.notNull())
        .addColumn("used", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("platform_quota_counters_pk", ["platform_id", "period", "period_start"])
        .execute();

      await db.schema
        .createTable("platform_usage")
        .addColumn("platform_id", "text", (c) => c.notNull())
        .addColumn("hour", "timestamptz", (c) => c.notNull())
        .addColumn("endpoint", "text", (c) => c.notNull())
        .addColumn("method", "text", (c) => c.notNull())
        .addColumn("requests", "integer", (c) => c.notNull())
        .addColumn("successes", "integer", (c) => c.notNull())
        .addColumn("errors", "integer", (c) => c.notNull())
        .addColumn("total_ms", "double precision", (c) => c.notNull())
        .addPrimaryKeyConstraint("platform_usage_pk", ["platform_id", "hour", "endpoint", "method"])
        .execute();

      await db.schema
        .createTable("platform_signatures")
        .addColumn("digest", "text", (c) => c.primaryKey())
        .addColumn("platform_id", "text", (c) => c.notNull())
        .addColumn("seen_at", "timestamptz", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("platform_signatures_seen").on("platform_signatures").column("seen_at").execute();
      // A platform's page of its users' works (broker content?username=) uses the accounts' registrations_owner index.
    },
  },
  ...adminMigrations,
};
