import { type Kysely, type Migration, sql } from "kysely";

/** This concept's part of the schema's history: see db/migrations.ts. */
export const accountMigrations: Record<string, Migration> = {
  "0002_accounts": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("accounts")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("email", "text", (c) => c.notNull().unique())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("owner_id", "text", (c) => c.notNull().unique())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("totp_secret", "text")
        .addColumn("totp_last_step", "bigint")
        .execute();

      await db.schema
        .createTable("magic_links")
        .addColumn("token_hash", "char(64)", (c) => c.primaryKey())
        .addColumn("email", "text", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("expires_at", "timestamptz", (c) => c.notNull())
        .addColumn("used_at", "timestamptz")
        .execute();
      await db.schema.createIndex("magic_links_email").on("magic_links").columns(["email", "created_at"]).execute();

      await db.schema
        .createTable("sign_in_sessions")
        .addColumn("id_hash", "char(64)", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("stage", "text", (c) => c.notNull())
        .addColumn("purpose", "text", (c) => c.notNull())
        .addColumn("pending_secret", "text")
        .addColumn("failed_codes", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("expires_at", "timestamptz", (c) => c.notNull())
        .addColumn("completed_at", "timestamptz")
        .execute();

      await db.schema
        .createTable("sessions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("revoked_at", "timestamptz")
        .execute();
      await db.schema.createIndex("sessions_account").on("sessions").column("account_id").execute();

      await db.schema
        .createTable("refresh_tokens")
        .addColumn("token_hash", "char(64)", (c) => c.primaryKey())
        .addColumn("session_id", "text", (c) => c.notNull().references("sessions.id"))
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("expires_at", "timestamptz", (c) => c.notNull())
        .addColumn("spent_at", "timestamptz")
        .execute();

      await db.schema
        .createTable("backup_codes")
        .addColumn("id", "bigserial", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("salt", "text", (c) => c.notNull())
        .addColumn("code_hash", "text", (c) => c.notNull())
        .addColumn("used_at", "timestamptz")
        .execute();
      await db.schema.createIndex("backup_codes_account").on("backup_codes").column("account_id").execute();

      await db.schema
        .createTable("code_failures")
        .addColumn("id", "bigserial", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("failed_at", "timestamptz", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("code_failures_account").on("code_failures").columns(["account_id", "failed_at"]).execute();

      // A creator's works (/me/works), newest first.
      await db.schema
        .createIndex("registrations_owner")
        .on("registrations")
        .columns(["owner_id", "created_at desc", "content_hash"])
        .execute();

      await db.schema
        .createTable("transfers")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("content_hash", "char(64)", (c) => c.notNull().references("registrations.content_hash"))
        .addColumn("previous_owner", "text")
        .addColumn("new_owner", "text", (c) => c.notNull())
        .addColumn("reason", "text")
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("tx_hash", "char(64)")
        .addColumn("block_height", "bigint")
        .addColumn("block_time", "timestamptz")
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("transfers_content").on("transfers").columns(["content_hash", "created_at"]).execute();
      await db.schema.createIndex("transfers_outbox").on("transfers").columns(["status", "created_at"]).execute();
      // At most one transfer per work on its way to the ledger: a second one is TRANSFER_PENDING.
      await sql`create unique index transfers_one_in_flight on transfers (content_hash) where status in ('pending', 'submitted')`.execute(
        db,
      );
    },
  },
};
