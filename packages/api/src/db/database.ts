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
  /** PostgreSQL only: new connections use this URL (a rotated role password); open ones stay. */
  reconnectAs?: (databaseUrl: string) => void;
  /** Round trip time of a trivial query; throws when the database does not answer. */
  ping(): Promise<number>;
  /** Connection pool occupancy for metrics (PGlite: its one in-process connection). */
  poolStats(): { inUse: number; idle: number; waiting: number; max: number };
  close(): Promise<void>;
  /** The embedded engine itself, when it is PGlite (ops snapshots dump its data directory). */
  pglite?: PGlite;
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
  let opened: Omit<OpenDatabase, "ping" | "poolStats">;
  let poolStats: OpenDatabase["poolStats"] = () => ({ inUse: 1, idle: 0, waiting: 0, max: 1 });
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolMax,
      // Long enough to queue behind a busy pool under load; an unreachable server fails sooner (refused).
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    // A dropped connection while idle must not take the process down; the next query reconnects.
    pool.on("error", () => {});
    // Nor while checked out: pg then fails the query (→ 503) and also emits "error" on the client,
    // which without a listener is an uncaught exception that ends the process.
    pool.on("connect", (client) => client.on("error", () => {}));
    poolStats = () => ({
      inUse: pool.totalCount - pool.idleCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolMax,
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    // SIGHUP after `rotate-keys database`: connections opened from now on use the new password.
    const reconnectAs = (url: string) => {
      (pool as unknown as { options: { connectionString?: string } }).options.connectionString = url;
    };
    opened = { db, engine: "postgresql", close: () => db.destroy(), reconnectAs };
  } else {
    let dataDir: string | undefined;
    if (!options.inMemory) {
      dataDir = join(options.stateDir, "db");
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    }
    const pglite = new PGlite(dataDir);
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    opened = { db, engine: "pglite", pglite, close: () => db.destroy() };
  }
  await migrateToLatest(opened.db as Kysely<unknown>);
  return {
    ...opened,
    poolStats,
    async ping() {
      const started = performance.now();
      await sql`select 1`.execute(opened.db);
      return performance.now() - started;
    },
  };
}
