import { type Kysely, sql } from "kysely";
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
}

/** Registrations and their outbox entries in the database. */
export class RegistrationStore {
  constructor(private readonly db: Kysely<Database>) {}

  async find(contentHash: string): Promise<RegistrationRow | undefined> {
    return this.db.selectFrom("registrations").selectAll().where("content_hash", "=", contentHash).executeTakeFirst();
  }

  /**
   * Records registrations that do not exist yet and queues each for the ledger, in one
   * transaction; a hash that exists (even from a concurrent twin) is returned as existing.
   */
  async createMany(registrations: NewRegistration[], now = new Date()): Promise<{ row: RegistrationRow; created: boolean }[]> {
    return this.db.transaction().execute(async (trx) => {
      const results: { row: RegistrationRow; created: boolean }[] = [];
      for (const r of registrations) {
        const inserted = await trx
          .insertInto("registrations")
          .values({
            content_hash: r.contentHash,
            protection_id: opaqueId("p"),
            status: "pending",
            license: r.license,
            ai_training_policy: r.aiTrainingPolicy,
            licensing_email: r.licensingEmail,
            licensing_uri: r.licensingUri,
            metadata: JSON.stringify(r.metadata),
            fingerprint: r.fingerprint,
            platform: r.platform,
            owner_id: r.ownerId,
            created_at: now,
          })
          .onConflict((c) => c.column("content_hash").doNothing())
          .returningAll()
          .executeTakeFirst();
        if (inserted) {
          await trx.insertInto("outbox").values({ content_hash: r.contentHash, status: "pending", created_at: now }).execute();
          results.push({ row: inserted, created: true });
        } else {
          const existing = await trx
            .selectFrom("registrations")
            .selectAll()
            .where("content_hash", "=", r.contentHash)
            .executeTakeFirstOrThrow();
          results.push({ row: existing, created: false });
        }
      }
      return results;
    });
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
