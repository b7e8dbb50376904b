import { type Kysely, type Migration, sql } from "kysely";

/** This concept's part of the schema's history ("0004_webhooks", …): see db/migrations.ts. */
export const webhookMigrations: Record<string, Migration> = {
  "0004_webhooks": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("webhooks")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("platform_id", "text", (c) => c.notNull())
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("events", "jsonb", (c) => c.notNull())
        .addColumn("secret_sealed", "text", (c) => c.notNull())
        .addColumn("description", "text")
        .addColumn("custom_headers", "jsonb", (c) => c.notNull())
        .addColumn("enabled", "boolean", (c) => c.notNull())
        .addColumn("max_retries", "integer", (c) => c.notNull())
        .addColumn("retry_delay_seconds", "integer", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("updated_at", "timestamptz", (c) => c.notNull())
        .addColumn("last_triggered_at", "timestamptz")
        .execute();
      await db.schema.createIndex("webhooks_platform").on("webhooks").columns(["platform_id", "created_at"]).execute();

      await db.schema
        .createTable("webhook_deliveries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("webhook_id", "text", (c) => c.notNull().references("webhooks.id").onDelete("cascade"))
        .addColumn("platform_id", "text", (c) => c.notNull())
        .addColumn("event", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("failures", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_attempt_at", "timestamptz", (c) => c.notNull())
        .addColumn("claimed_until", "timestamptz")
        .addColumn("claimed_by", "text")
        .addColumn("last_attempt_at", "timestamptz")
        .addColumn("last_status_code", "integer")
        .addColumn("last_error", "text")
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("finished_at", "timestamptz")
        .execute();
      // The worker's claim scans due work; the log lists a webhook's deliveries newest first.
      await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status in ('pending', 'retrying')`.execute(
        db,
      );
      await db.schema
        .createIndex("webhook_deliveries_webhook")
        .on("webhook_deliveries")
        .columns(["webhook_id", "created_at desc", "id"])
        .execute();
      await db.schema.createIndex("webhook_deliveries_finished").on("webhook_deliveries").columns(["status", "finished_at"]).execute();

      await db.schema
        .createTable("webhook_attempts")
        .addColumn("id", "bigserial", (c) => c.primaryKey())
        .addColumn("delivery_id", "text", (c) => c.notNull().references("webhook_deliveries.id").onDelete("cascade"))
        .addColumn("webhook_id", "text", (c) => c.notNull())
        .addColumn("attempted_at", "timestamptz", (c) => c.notNull())
        .addColumn("status_code", "integer")
        .addColumn("error", "text")
        .addColumn("duration_ms", "integer", (c) => c.notNull())
        .addColumn("success", "boolean", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("webhook_attempts_delivery").on("webhook_attempts").columns(["delivery_id", "id"]).execute();
      await db.schema.createIndex("webhook_attempts_time").on("webhook_attempts").columns(["attempted_at"]).execute();
    },
  },
};
