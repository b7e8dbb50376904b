import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import pg from "pg";
import { migrateToLatest } from "../db/migrations.js";
import type { Database } from "../db/schema.js";

/**
 * What the operators' tools (`daon backup`, `backup verify`, `restore`, `wipe-and-reset`) do to
 * a DAON database directly, outside a running API: count, snapshot, reset, migrate, reconcile.
 */

/** Rows of every table of the DAON schema (the connection's current schema), by table name. */
export async function tableRows(db: Kysely<unknown> | Kysely<Database>): Promise<Record<string, number>> {
  const runner = db as Kysely<unknown>;
  const { rows: tables } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(runner);
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const { rows } = await sql<{ n: string | number }>`select count(*) as n from ${sql.table(name)}`.execute(runner);
    counts[name] = Number(rows[0].n);
  }
  return counts;
}

/** A DAON database opened for an operator's tool, without migrating it. */
export interface OpsDatabase {
  db: Kysely<Database>;
  engine: "postgresql" | "pglite";
  close(): Promise<void>;
}

/** Opens PostgreSQL by URL, an embedded data directory, or an embedded dump (`database.pglite.tar.gz`) in memory. */
export async function openOpsDatabase(
  target: { url: string } | { pgliteDir: string } | { pgliteArchive: Uint8Array },
): Promise<OpsDatabase> {
  if ("url" in target) {
    const pool = new pg.Pool({ connectionString: target.url, max: 2, connectionTimeoutMillis: 5000 });
    pool.on("error", () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, engine: "postgresql", close: () => db.destroy() };
  }
  const pglite =
    "pgliteDir" in target
      ? new PGlite(target.pgliteDir)
      : new PGlite({ loadDataDir: new Blob([Buffer.from(target.pgliteArchive)], { type: "application/x-gzip" }) });
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return {
    db,
    engine: "pglite",
    async close() {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

/** An embedded data directory of a stopped API, dumped with the row counts read in the same moment. */
export async function dumpEmbeddedDirectory(pgliteDir: string): Promise<{ archive: Buffer; rows: Record<string, number> }> {
  const pglite = new PGlite(pgliteDir);
  try {
    const db = new Kysely<unknown>({ dialect: new PGliteDialect(pglite) });
    const rows = await tableRows(db);
    const archive = Buffer.from(await (await pglite.dumpDataDir("gzip")).arrayBuffer());
    return { archive, rows };
  } finally {
    await pglite.close();
  }
}

/**
 * A PostgreSQL snapshot held open for `pg_dump --snapshot`: the row counts are read in the same
 * snapshot, so they describe exactly what the dump contains. `release` ends it.
 */
export async function exportPostgresSnapshot(url: string): Promise<{
  id: string;
  schema: string;
  database: string;
  rows: Record<string, number>;
  release(): Promise<void>;
}> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("begin isolation level repeatable read, read only");
    const { rows: exported } = await client.query<{ id: string; schema: string; database: string }>(
      "select pg_export_snapshot() as id, current_schema() as schema, current_database() as database",
    );
    const { rows: tables } = await client.query<{ name: string }>(
      "select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name",
    );
    const rows: Record<string, number> = {};
    for (const { name } of tables) {
      const { rows: counted } = await client.query<{ n: string }>(`select count(*) as n from "${name.replaceAll('"', '""')}"`);
      rows[name] = Number(counted[0].n);
    }
    return {
      ...exported[0],
      rows,
      async release() {
        await client.query("commit").catch(() => {});
        await client.end().catch(() => {});
      },
    };
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
}

/**
 * Empties the DAON schema (the connection's current schema) of everything DAON made: tables
 * (with their indexes, sequences and triggers), views, functions and types. Extension objects
 * that live there (compose's pg_stat_statements) and the schema itself stay; nothing outside
 * it is touched. What a wipe does, and what a restore starts from.
 */
export async function emptyPostgresSchema(url: string): Promise<{ schema: string; dropped: number }> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  const notExtension = (oid: string, catalog: string) =>
    `not exists (select 1 from pg_depend d where d.classid = '${catalog}'::regclass and d.objid = ${oid} and d.deptype = 'e')`;
  try {
    const { rows: schemas } = await client.query<{ schema: string }>("select current_schema() as schema");
    const schema = schemas[0]?.schema;
    if (!schema) throw new Error("the database has no current schema to empty");
    const drops: string[] = [];
    const relations = await client.query<{ statement: string }>(
      `select format('drop %s if exists %I.%I cascade',
                     case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                                    when 'f' then 'foreign table' else 'table' end, n.nspname, c.relname) as statement
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and ${notExtension("c.oid", "pg_class")}
        order by case c.relkind when 'r' then 0 when 'p' then 0 else 1 end`,
      [schema],
    );
    drops.push(...relations.rows.map((row) => row.statement));
    const functions = await client.query<{ statement: string }>(
      `select format('drop routine if exists %s cascade', p.oid::regprocedure) as statement
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = $1 and ${notExtension("p.oid", "pg_proc")}`,
      [schema],
    );
    drops.push(...functions.rows.map((row) => row.statement));
    const types = await client.query<{ statement: string }>(
      `select format('drop type if exists %I.%I cascade', n.nspname, t.typname) as statement
         from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = $1 and t.typtype in ('e', 'd', 'r', 'm') and ${notExtension("t.oid", "pg_type")}`,
      [schema],
    );
    drops.push(...types.rows.map((row) => row.statement));
    await client.query("begin");
    for (const statement of drops) await client.query(statement);
    await client.query("commit");
    return { schema, dropped: drops.length };
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Applies pending migrations; returns their names. */
export async function migrateOpsDatabase(db: Kysely<Database>): Promise<string[]> {
  return migrateToLatest(db as Kysely<unknown>);
}

/**
 * After a restore, makes the read model agree with the restored ledger (ops.md §5):
 * registrations confirmed above its height go back to pending and into the outbox (the
 * batcher submits them again), their transactions are forgotten, and the indexer cursor drops
 * to the ledger height. Maintenance mode is set as asked (the set may have been taken in it):
 * on until the restore's checks pass, when the tool can lift it through the API.
 */
export async function reconcileWithLedger(
  db: Kysely<Database>,
  ledgerHeight: number,
  options: { maintenance: boolean },
): Promise<{ requeued: number; indexedHeight: number }> {
  return db.transaction().execute(async (trx) => {
    const above = await trx
      .selectFrom("registrations")
      .select("content_hash")
      .where("status", "=", "confirmed")
      .where("block_height", ">", String(ledgerHeight) as never)
      .execute();
    const hashes = above.map((row) => row.content_hash);
    if (hashes.length > 0) {
      await trx
        .updateTable("registrations")
        .set({ status: "pending", block_height: null, tx_hash: null, block_time: null, ledger_creator: null })
        .where("content_hash", "in", hashes)
        .execute();
      const now = new Date();
      for (const contentHash of hashes) {
        await trx
          .insertInto("outbox")
          .values({ content_hash: contentHash, status: "pending", tx_hash: null, created_at: now })
          .onConflict((c) => c.column("content_hash").doUpdateSet({ status: "pending", tx_hash: null }))
          .execute();
      }
    }
    await trx
      .updateTable("submissions")
      .set({ status: "failed" })
      .where("committed_height", ">", String(ledgerHeight) as never)
      .execute();
    await trx
      .updateTable("indexer_cursor")
      .set({ height: sql`least(height, ${ledgerHeight})` as never })
      .where("id", "=", 1)
      .execute();
    await trx
      .updateTable("operations_maintenance")
      .set(options.maintenance ? { enabled: true, since: new Date(), reason: "restore" } : { enabled: false, since: null, reason: null })
      .execute();
    const cursor = await trx.selectFrom("indexer_cursor").select("height").where("id", "=", 1).executeTakeFirst();
    return { requeued: hashes.length, indexedHeight: Number(cursor?.height ?? 0) };
  });
}
