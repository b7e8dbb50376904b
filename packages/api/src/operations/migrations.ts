import type { Migration } from "kysely";

/** This concept's part of the schema's history ("0005_operations", …): see db/migrations.ts. */
export const operationsMigrations: Record<string, Migration> = {};
