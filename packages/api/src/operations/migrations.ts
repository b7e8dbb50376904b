import { type Kysely, type Migration, sql } from "kysely";

/** This concept's part of the schema's history ("0005_operations", …): see db/migrations.ts. */
export const operationsMigrations: Record<string, Migration> = {
  // Maintenance mode, one row every instance reads (ops.md §6 step 2).
  "0005_operations_maintenance": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("operations_maintenance")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("enabled", "boolean", (c) => c.notNull())
        .addColumn("since", "timestamptz")
        .addColumn("reason", "text")
        .execute();
      await sql`insert into operations_maintenance (id, enabled) values (1, false)`.execute(db);
    },
  },
  // Minute statistics for `daon report`, load-test keys, and the source tag of test registrations (ops.md §4, §9, §13).
  "0005_operations_minute_stats": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("api_minute_stats")
        .addColumn("instance", "text", (c) => c.notNull())
        .addColumn("minute", "timestamptz", (c) => c.notNull())
        .addColumn("traffic", "text", (c) => c.notNull())
        .addColumn("requests", "integer", (c) => c.notNull())
        .addColumn("status_2xx", "integer", (c) => c.notNull())
        .addColumn("status_3xx", "integer", (c) => c.notNull())
        .addColumn("status_4xx", "integer", (c) => c.notNull())
        .addColumn("status_5xx", "integer", (c) => c.notNull())
        .addColumn("statuses", "jsonb", (c) => c.notNull())
        .addColumn("latency_buckets", "jsonb", (c) => c.notNull())
        .addColumn("latency_sum_ms", "double precision", (c) => c.notNull())
        .addColumn("max_in_flight", "integer", (c) => c.notNull())
        .addColumn("healthy", "boolean", (c) => c.notNull())
        .addColumn("outbox_pending", "integer")
        .addPrimaryKeyConstraint("api_minute_stats_pkey", ["minute", "instance", "traffic"])
        .execute();

      await db.schema
        .createTable("loadtest_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("key_hash", "text", (c) => c.notNull())
        .addColumn("tag", "text", (c) => c.notNull())
        .addColumn("run_id", "text")
        .addColumn("quota_per_minute", "integer", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("expires_at", "timestamptz", (c) => c.notNull())
        .execute();

      await db.schema.alterTable("registrations").addColumn("source", "text").execute();
      // Few registrations are tagged; the report counts the untagged ones by creation time.
      await sql`create index registrations_source on registrations (source) where source is not null`.execute(db);
    },
  },
};
