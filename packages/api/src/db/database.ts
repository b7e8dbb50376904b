import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import pg from "pg";
import { migrateToLatest } from "./migrations.js";
import type { Database } from "./schema.js";

export type DatabaseEngine = "postgresql" | "pglite";

export interface OpenDatabase {
  db: Kysely<Database>;
  engine: DatabaseEngine;
  /** Round trip time of a trivial query; throws when the database does not answer. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

// bigint columns (heights, sequences) fit in a JS number for any realistic chain; keep them as strings in rows.
pg.types.setTypeParser(20, (value) => value);

/**
 * PostgreSQL through node-postgres when DATABASE_URL is set, else PGlite under the state
 * directory: one typed schema and the same migrations on both.
 */
export async function openDatabase(options: {
  databaseUrl?: string;
  stateDir: string;
  poolMax: number;
  inMemory?: boolean;
}): Promise<OpenDatabase> {
  let opened: Omit<OpenDatabase, "ping">;
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolMax,
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 30_000,
    });
    // A dropped connection while idle must not take the process down; the next query reconnects.
    pool.on("error", () => {});
    // Nor while checked out: pg then fails the query (→ 503) and also emits "error" on the client,
    // which without a listener is an uncaught exception that ends the process.
    pool.on("connect", (client) => client.on("error", () => {}));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    opened = { db, engine: "postgresql", close: () => db.destroy() };
  } else {
    let dataDir: string | undefined;
    if (!options.inMemory) {
      dataDir = join(options.stateDir, "db");
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    }
    const pglite = new PGlite(dataDir);
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    opened = { db, engine: "pglite", close: () => db.destroy() };
  }
  await migrateToLatest(opened.db as Kysely<unknown>);
  return {
    ...opened,
    async ping() {
      const started = performance.now();
      await sql`select 1`.execute(opened.db);
      return performance.now() - started;
    },
  };
}
