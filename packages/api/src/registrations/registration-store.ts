import { type Kysely, sql, type Transaction } from "kysely";
import { transfersOf } from "../accounts/transfers.js";
import { GroupCommit } from "../db/group-commit.js";
import type { Database } from "../db/schema.js";
import { opaqueId, type RegistrationRow } from "./registration.js";

export interface NewRegistration {
  contentHash: string;
  license: string;
  aiTrainingPolicy: string;
  licensingEmail: string | null;
  licensingUri: string | null;
  metadata: Record<string, unknown>;
  fingerprint: string;
  platform: string;
  ownerId: string | null;
  /** Test traffic tag (`loadtest:<runId>`, `smoke`); absent for real registrations. */
  source?: string | null;
}

export interface CreatedRegistration {
  row: RegistrationRow;
  created: boolean;
}

/** Work done inside the transaction that creates registrations (webhooks queue `content.protected` there). */
export type RegistrationsCreatedHook = (trx: Transaction<Database>, created: RegistrationRow[], now: Date) => Promise<unknown>;

/** Registrations and their outbox entries in the database. */
export class RegistrationStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly onCreated?: RegistrationsCreatedHook,
  ) {}

  async find(contentHash: string): Promise<RegistrationRow | undefined> {
    return this.db.selectFrom("registrations").selectAll().where("content_hash", "=", contentHash).executeTakeFirst();
  }

  /**
   * Records registrations that do not exist yet and queues each for the ledger, in one
   * transaction; a hash that exists (even from a concurrent twin, or earlier in the same
   * list) is returned as existing. Results are in the order given.
   */
  async createMany(registrations: NewRegistration[], now = new Date()): Promise<CreatedRegistration[]> {
    if (registrations.length === 0) return [];
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("registrations")
        .values(
          registrations.map((r) => ({
            content_hash: r.contentHash,
            protection_id: opaqueId("p"),
            status: "pending" as const,
            license: r.license,
            ai_training_policy: r.aiTrainingPolicy,
            licensing_email: r.licensingEmail,
            licensing_uri: r.licensingUri,
            metadata: JSON.stringify(r.metadata),
            fingerprint: r.fingerprint,
            platform: r.platform,
            owner_id: r.ownerId,
            created_at: now,
            source: r.source ?? null,
          })),
        )
        .onConflict((c) => c.column("content_hash").doNothing())
        .returningAll()
        .execute();
      if (inserted.length > 0) {
        await trx
          .insertInto("outbox")
          .values(inserted.map((row) => ({ content_hash: row.content_hash, status: "pending" as const, created_at: now })))
          .execute();
        await this.onCreated?.(trx, inserted, now);
      }
      const fresh = new Map(inserted.map((row) => [row.content_hash, row]));
      const others = registrations.map((r) => r.contentHash).filter((hash) => !fresh.has(hash));
      const existing =
        others.length === 0
          ? new Map<string, RegistrationRow>()
          : new Map(
              (await trx.selectFrom("registrations").selectAll().where("content_hash", "in", others).execute()).map((row) => [
                row.content_hash,
                row,
              ]),
            );
      return registrations.map((r) => {
        const row = fresh.get(r.contentHash);
        // The first of twins in one list is created; the later ones see it as existing.
        if (row) {
          fresh.delete(r.contentHash);
          existing.set(r.contentHash, row);
          return { row, created: true };
        }
        return { row: existing.get(r.contentHash)!, created: false };
      });
    });
  }

  /**
   * One registration, committed together with the others that arrive while a commit is in
   * flight: under load, many protect requests share one transaction and one fsync.
   */
  create(registration: NewRegistration): Promise<CreatedRegistration> {
    return this.#groups.submit(registration);
  }

  readonly #groups = new GroupCommit<NewRegistration, CreatedRegistration>((registrations) => this.createMany(registrations));

  /** The work's ownership transfers for its history, oldest first (accounts/transfers.ts). */
  transfersOf(contentHash: string) {
    return transfersOf(this.db, contentHash);
  }

  async statusOf(contentHashes: string[]): Promise<Map<string, RegistrationRow>> {
    if (contentHashes.length === 0) return new Map();
    const rows = await this.db.selectFrom("registrations").selectAll().where("content_hash", "in", contentHashes).execute();
    return new Map(rows.map((row) => [row.content_hash, row]));
  }

  async stats(since: Date) {
    const [totals, byLicense, byPolicy, recent, outbox] = await Promise.all([
      this.db
        .selectFrom("registrations")
        .select((eb) => [
          eb.fn.countAll<string>().as("total"),
          eb.fn.count<string>("content_hash").filterWhere("status", "=", "confirmed").as("confirmed"),
          eb.fn.count<string>("content_hash").filterWhere("created_at", ">=", since).as("last24h"),
        ])
        .executeTakeFirstOrThrow(),
      this.db
        .selectFrom("registrations")
        .select(["license", (eb) => eb.fn.countAll<string>().as("count")])
        .groupBy("license")
        .execute(),
      this.db
        .selectFrom("registrations")
        .select(["ai_training_policy", (eb) => eb.fn.countAll<string>().as("count")])
        .groupBy("ai_training_policy")
        .execute(),
      this.db
        .selectFrom("registrations")
        .select(["content_hash", "status", "license", "ai_training_policy", "created_at", "block_height"])
        .orderBy("created_at", "desc")
        .orderBy("content_hash", "desc")
        .limit(10)
        .execute(),
      this.outboxBacklog(),
    ]);
    return { totals, byLicense, byPolicy, recent, outbox };
  }

  async outboxBacklog(): Promise<{ pending: number; oldest: Date | null }> {
    const row = await this.db
      .selectFrom("outbox")
      .select((eb) => [eb.fn.countAll<string>().as("pending"), eb.fn.min("created_at").as("oldest")])
      .where("status", "!=", "done")
      .executeTakeFirstOrThrow();
    return { pending: Number(row.pending), oldest: row.oldest ? new Date(row.oldest as Date) : null };
  }
}

export { sql };
