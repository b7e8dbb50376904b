import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";
import { accountMigrations } from "../accounts/migrations.js";
import { operationsMigrations } from "../operations/migrations.js";
import { platformMigrations } from "../platforms/migrations.js";
import { webhookMigrations } from "../webhooks/migrations.js";

/** The registrations' part of the schema's history. */
const registrationMigrations: Record<string, Migration> = {
  "0001_registrations": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("registrations")
        .addColumn("content_hash", "char(64)", (c) => c.primaryKey())
        .addColumn("protection_id", "text", (c) => c.notNull().unique())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("license", "text", (c) => c.notNull())
        .addColumn("ai_training_policy", "text", (c) => c.notNull())
        .addColumn("licensing_email", "text")
        .addColumn("licensing_uri", "text")
        .addColumn("metadata", "jsonb", (c) => c.notNull())
        .addColumn("fingerprint", "text", (c) => c.notNull())
        .addColumn("platform", "text", (c) => c.notNull())
        .addColumn("owner_id", "text")
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("block_height", "bigint")
        .addColumn("tx_hash", "char(64)")
        .addColumn("block_time", "timestamptz")
        .addColumn("ledger_creator", "text")
        .execute();
      await db.schema.createIndex("registrations_created_at").on("registrations").columns(["created_at desc", "content_hash"]).execute();
      await db.schema.createIndex("registrations_status").on("registrations").column("status").execute();

      await db.schema
        .createTable("outbox")
        .addColumn("id", "bigserial", (c) => c.primaryKey())
        .addColumn("content_hash", "char(64)", (c) => c.notNull().unique().references("registrations.content_hash"))
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("tx_hash", "char(64)")
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("outbox_pending").on("outbox").columns(["status", "id"]).execute();

      await db.schema
        .createTable("submissions")
        .addColumn("tx_hash", "char(64)", (c) => c.primaryKey())
        .addColumn("sequence", "bigint", (c) => c.notNull())
        .addColumn("raw", "bytea", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("created_at", "timestamptz", (c) => c.notNull())
        .addColumn("committed_height", "bigint")
        .execute();

      await db.schema
        .createTable("indexer_cursor")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("height", "bigint", (c) => c.notNull())
        .execute();
      await sql`insert into indexer_cursor (id, height) values (1, 0)`.execute(db);
    },
  },
};

/** The schema's history, applied in name order; the same migrations run on PostgreSQL and PGlite. */
const migrations: Record<string, Migration> = {
  ...registrationMigrations,
  ...accountMigrations,
  ...platformMigrations,
  ...webhookMigrations,
  ...operationsMigrations,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw new Error(`migration failed: ${(error as Error).message ?? error}`);
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

export async function pendingMigrations(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
}
