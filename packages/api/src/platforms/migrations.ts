import type { Migration } from "kysely";

/** This concept's part of the schema's history ("0003_platforms", …): see db/migrations.ts. */
export const platformMigrations: Record<string, Migration> = {};
