import type { Migration } from "kysely";

/** This concept's part of the schema's history ("0002_accounts", …): see db/migrations.ts. */
export const accountMigrations: Record<string, Migration> = {};
