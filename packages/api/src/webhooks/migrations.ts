import type { Migration } from "kysely";

/** This concept's part of the schema's history ("0004_webhooks", …): see db/migrations.ts. */
export const webhookMigrations: Record<string, Migration> = {};
