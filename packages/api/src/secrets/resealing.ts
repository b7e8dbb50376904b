import { type Kysely, sql } from "kysely";
import type { Logger } from "pino";
import type { Keyring } from "./keyring.js";
import type { SealingStatus } from "../operations/internal-routes.js";

/** A column holding values sealed by the keyring's Sealer, with the key that identifies its rows. */
export interface SealedColumn {
  table: string;
  key: string;
  column: string;
}

/** Every column sealed with ENCRYPTION_KEY (TOTP secrets, webhook signing secrets); absent tables are skipped. */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "webhooks", key: "id", column: "secret_sealed" },
  { table: "accounts", key: "id", column: "totp_secret" },
  { table: "sign_in_sessions", key: "id_hash", column: "pending_secret" },
];

const BATCH = 200;

/**
 * Re-seals values under the current ENCRYPTION_KEY while a previous key is configured
 * (ops.md §8 `totp-key`): batch by batch, each row updated only if it still holds the value
 * read, so several API instances may run it at once and a crash loses nothing (it resumes
 * on the next start or reload). `status` tells the CLI when none is left under the old key.
 */
export class Resealer {
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly db: Kysely<unknown>,
    private readonly keyring: Keyring,
    private readonly columns: readonly SealedColumn[],
    private readonly log: Logger,
  ) {}

  /** Starts a pass if there is a previous key and none is running. */
  kick(): void {
    if (this.#running || this.#stopped || !this.keyring.previousSealingKey) return;
    this.#running = this.#pass()
      .catch((error) => this.log.warn({ err: error }, "re-sealing under the new encryption key failed; retried on the next reload"))
      .finally(() => {
        this.#running = undefined;
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async status(): Promise<SealingStatus> {
    const current = this.keyring.sealer?.current.id ?? null;
    const remaining: Record<string, number> = {};
    for (const column of await this.#existing()) {
      const row = await sql<{ count: string | number }>`select count(*) as count from ${sql.table(column.table)}
        where ${sql.ref(column.column)} is not null and ${sql.ref(column.column)} not like ${`v1.${current ?? ""}.%`}`.execute(this.db);
      remaining[`${column.table}.${column.column}`] = Number(row.rows[0]?.count ?? 0);
    }
    return { currentKeyId: current, previousKeyId: this.keyring.previousSealingKey?.id ?? null, remaining };
  }

  async #pass(): Promise<void> {
    for (const column of await this.#existing()) {
      for (;;) {
        if (this.#stopped) return;
        const sealer = this.keyring.sealer;
        if (!sealer) return;
        const rows = await sql<{ id: unknown; sealed: string }>`select ${sql.ref(column.key)} as id, ${sql.ref(column.column)} as sealed
          from ${sql.table(column.table)}
          where ${sql.ref(column.column)} is not null and ${sql.ref(column.column)} not like ${`v1.${sealer.current.id}.%`}
          limit ${BATCH}`.execute(this.db);
        if (rows.rows.length === 0) break;
        let moved = 0;
        for (const row of rows.rows) {
          let plaintext: string;
          try {
            plaintext = sealer.open(row.sealed);
          } catch {
            continue; // sealed under a key neither current nor previous: left for the operator, counted by status
          }
          await sql`update ${sql.table(column.table)} set ${sql.ref(column.column)} = ${sealer.seal(plaintext)}
            where ${sql.ref(column.key)} = ${row.id} and ${sql.ref(column.column)} = ${row.sealed}`.execute(this.db);
          moved++;
        }
        this.log.info({ column: `${column.table}.${column.column}`, moved, keyId: sealer.current.id }, "re-sealed a batch");
        if (moved === 0) break;
      }
    }
  }

  /** Only the columns whose tables exist in this schema (a concept's migration may not have run). */
  async #existing(): Promise<SealedColumn[]> {
    const found = await sql<{ table_name: string; column_name: string }>`select table_name, column_name from information_schema.columns
      where table_schema = current_schema()`.execute(this.db);
    const present = new Set(found.rows.map((r) => `${r.table_name}.${r.column_name}`));
    return this.columns.filter((c) => present.has(`${c.table}.${c.column}`) && present.has(`${c.table}.${c.key}`));
  }
}
