import type { Kysely } from "kysely";
import type { AuditActor, AuditLog } from "../admin/audit-log.js";
import type { PlatformScope } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { ApiError, validationError } from "../http/errors.js";
import { opaqueId } from "../registrations/registration.js";
import type { PlatformRow } from "./platform.js";
import { type IssuedKey, keyObject, type PlatformKeyRow, type PlatformKeys, SCOPES } from "./platform-keys.js";
import type { CertificationStatus, CertificationTier } from "./tables.js";

export interface NewPlatform {
  domain: string;
  name: string;
  contactEmail: string;
  tier: CertificationTier;
  publicKey: string | null;
  requireSignature: boolean;
}

export interface PlatformChanges {
  name?: string;
  contactEmail?: string;
  tier?: CertificationTier;
  hourlyLimit?: number | null;
  dailyLimit?: number | null;
  publicKey?: string | null;
  requireSignature?: boolean;
}

const notFound = () => new ApiError(404, "NOT_FOUND", "no such platform");

/**
 * Platforms and their lifecycle (pending → active ⇄ suspended). Every administrator
 * change commits together with its audit entry.
 */
export class PlatformStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly keys: PlatformKeys,
    private readonly audit: AuditLog,
  ) {}

  find(id: string, db: Kysely<Database> = this.db): Promise<PlatformRow | undefined> {
    return db.selectFrom("platforms").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async get(id: string): Promise<PlatformRow> {
    const row = await this.find(id);
    if (!row) throw notFound();
    return row;
  }

  async page(status: CertificationStatus | undefined, limit: number, cursor?: string) {
    let query = this.db
      .selectFrom("platforms")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(limit + 1);
    if (status) query = query.where("certification_status", "=", status);
    if (cursor !== undefined) {
      const [at, id] = decodeCursor(cursor);
      query = query.where((eb) => eb.or([eb("created_at", "<", at), eb.and([eb("created_at", "=", at), eb("id", "<", id)])]));
    }
    const rows = await query.execute();
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(new Date(last.created_at), last.id) : null };
  }

  /** A pending platform and its first key (all scopes), shown once. */
  async create(spec: NewPlatform, actor: AuditActor, now = new Date()): Promise<{ platform: PlatformRow; issued: IssuedKey }> {
    return this.db.transaction().execute(async (trx) => {
      const platform = await trx
        .insertInto("platforms")
        .values({
          id: opaqueId("pl"),
          domain: spec.domain,
          name: spec.name,
          contact_email: spec.contactEmail,
          certification_tier: spec.tier,
          certification_status: "pending",
          require_signature: spec.requireSignature,
          public_key: spec.publicKey,
          hourly_limit: null,
          daily_limit: null,
          created_at: now,
          updated_at: now,
        })
        .onConflict((c) => c.column("domain").doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!platform) throw new ApiError(409, "PLATFORM_EXISTS", `a platform is already registered for ${spec.domain}`);
      const issued = await this.keys.issue({ platformId: platform.id, name: "initial key", scopes: SCOPES, expiresAt: null }, trx, now);
      await this.audit.append(
        trx,
        actor,
        {
          action: "platform.create",
          targetType: "platform",
          targetId: platform.id,
          details: { domain: spec.domain, certification_tier: spec.tier, key_id: issued.row.id },
        },
        now,
      );
      return { platform, issued };
    });
  }

  async update(id: string, changes: PlatformChanges, actor: AuditActor, now = new Date()): Promise<PlatformRow> {
    return this.db.transaction().execute(async (trx) => {
      const before = await this.find(id, trx);
      if (!before) throw notFound();
      const publicKey = changes.publicKey !== undefined ? changes.publicKey : before.public_key;
      const requireSignature = changes.requireSignature ?? before.require_signature;
      if (requireSignature && !publicKey) {
        throw validationError([{ field: "body.require_signature", message: "needs a public_key to check signatures against" }]);
      }
      const platform = await trx
        .updateTable("platforms")
        .set({
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.contactEmail !== undefined ? { contact_email: changes.contactEmail } : {}),
          ...(changes.tier !== undefined ? { certification_tier: changes.tier } : {}),
          ...(changes.hourlyLimit !== undefined ? { hourly_limit: changes.hourlyLimit } : {}),
          ...(changes.dailyLimit !== undefined ? { daily_limit: changes.dailyLimit } : {}),
          public_key: publicKey,
          require_signature: requireSignature,
          updated_at: now,
        })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
      // The audit entry names what changed, never a contact address (api.md §7 privacy).
      const changed = Object.entries(changes)
        .filter(([, value]) => value !== undefined)
        .map(([name, value]) => [name, name === "contactEmail" ? "(changed)" : value]);
      await this.audit.append(
        trx,
        actor,
        { action: "platform.update", targetType: "platform", targetId: id, details: Object.fromEntries(changed) },
        now,
      );
      return platform;
    });
  }

  /** pending → active. */
  approve(id: string, actor: AuditActor, now = new Date()) {
    return this.transition(id, actor, "platform.approve", ["pending"], { certification_status: "active", approved_at: now }, {}, now);
  }

  /** pending or active → suspended: its keys are refused with PLATFORM_NOT_ACTIVE. */
  suspend(id: string, reason: string, actor: AuditActor, now = new Date()) {
    return this.transition(
      id,
      actor,
      "platform.suspend",
      ["pending", "active"],
      { certification_status: "suspended", suspended_at: now, suspend_reason: reason },
      { reason },
      now,
    );
  }

  /** suspended → active (or back to pending if it was never approved). */
  async unsuspend(id: string, actor: AuditActor, now = new Date()) {
    const platform = await this.get(id);
    const status = platform.approved_at ? "active" : "pending";
    return this.transition(
      id,
      actor,
      "platform.unsuspend",
      ["suspended"],
      { certification_status: status, suspended_at: null, suspend_reason: null },
      {},
      now,
    );
  }

  private async transition(
    id: string,
    actor: AuditActor,
    action: string,
    from: CertificationStatus[],
    set: Partial<Pick<PlatformRow, "certification_status" | "approved_at" | "suspended_at" | "suspend_reason">>,
    details: Record<string, unknown>,
    now: Date,
  ): Promise<PlatformRow> {
    return this.db.transaction().execute(async (trx) => {
      const before = await this.find(id, trx);
      if (!before) throw notFound();
      if (!from.includes(before.certification_status)) {
        throw validationError([
          { field: "status", message: `the platform is ${before.certification_status}; this needs ${from.join(" or ")}` },
        ]);
      }
      const platform = await trx
        .updateTable("platforms")
        .set({ ...set, updated_at: now })
        .where("id", "=", id)
        .where("certification_status", "=", before.certification_status)
        .returningAll()
        .executeTakeFirst();
      // A concurrent change won the race: answer as if it had happened first.
      if (!platform) throw validationError([{ field: "status", message: "the platform changed meanwhile; read it again" }]);
      await this.audit.append(
        trx,
        actor,
        {
          action,
          targetType: "platform",
          targetId: id,
          details: { from: before.certification_status, to: platform.certification_status, ...details },
        },
        now,
      );
      return platform;
    });
  }

  /** An administrator issues a key for a platform. */
  async issueKey(
    id: string,
    spec: { name: string; scopes: PlatformScope[]; expiresAt: Date | null },
    actor: AuditActor,
    now = new Date(),
  ): Promise<IssuedKey> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await this.find(id, trx))) throw notFound();
      const issued = await this.keys.issue({ platformId: id, ...spec }, trx, now);
      await this.audit.append(
        trx,
        actor,
        { action: "platform.key.issue", targetType: "platform", targetId: id, details: { key_id: issued.row.id, scopes: spec.scopes } },
        now,
      );
      return issued;
    });
  }

  /** An administrator revokes a platform's key. */
  async revokeKey(id: string, keyId: string, actor: AuditActor, now = new Date()): Promise<PlatformKeyRow> {
    return this.db.transaction().execute(async (trx) => {
      const key = await this.keys.revoke(id, keyId, trx, now);
      if (!key) throw new ApiError(404, "NOT_FOUND", "no such key for this platform");
      await this.audit.append(
        trx,
        actor,
        { action: "platform.key.revoke", targetType: "platform", targetId: id, details: { key_id: keyId } },
        now,
      );
      return key;
    });
  }

  /** The platform's keys, without secrets. */
  async keyObjects(id: string) {
    return (await this.keys.list(id)).map((row) => keyObject(row));
  }
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString("base64url");
}

function decodeCursor(cursor: string): [Date, string] {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const date = new Date(at);
    if (typeof id === "string" && !Number.isNaN(date.getTime())) return [date, id];
  } catch {}
  throw validationError([{ field: "querystring.cursor", message: "is not a cursor from this list" }]);
}
