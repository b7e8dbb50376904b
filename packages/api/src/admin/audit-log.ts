import type { FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { UserCaller } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { validationError } from "../http/errors.js";
import { opaqueId } from "../registrations/registration.js";

/** Who made an administrator change, and from where: what each audit entry records besides the change. */
export interface AuditActor {
  actorId: string;
  ip: string | null;
  requestId: string | null;
}

export interface AuditEntry {
  action: string;
  targetType: string;
  targetId: string;
  details?: Record<string, unknown>;
}

export interface AuditFilters {
  action?: string;
  targetId?: string;
  since?: Date;
  limit: number;
  cursor?: string;
}

export const auditActor = (request: FastifyRequest, admin: UserCaller): AuditActor => ({
  actorId: admin.accountId,
  ip: request.ip ?? null,
  requestId: request.id,
});

/** The append-only record of administrator changes (api.md §6). */
export class AuditLog {
  constructor(private readonly db: Kysely<Database>) {}

  /** Appends an entry; pass the change's transaction so both commit or neither does. */
  async append(db: Kysely<Database>, actor: AuditActor, entry: AuditEntry, now = new Date()): Promise<void> {
    await db
      .insertInto("admin_audit_log")
      .values({
        id: opaqueId("au"),
        at: now,
        actor_id: actor.actorId,
        action: entry.action,
        target_type: entry.targetType,
        target_id: entry.targetId,
        details: JSON.stringify(entry.details ?? {}),
        ip: actor.ip,
        request_id: actor.requestId,
      })
      .execute();
  }

  /** Newest first, filtered; the cursor is the last entry's position. */
  async page(filters: AuditFilters) {
    let query = this.db
      .selectFrom("admin_audit_log")
      .selectAll()
      .orderBy("seq", "desc")
      .limit(filters.limit + 1);
    if (filters.action) query = query.where("action", "=", filters.action);
    if (filters.targetId) query = query.where("target_id", "=", filters.targetId);
    if (filters.since) query = query.where("at", ">=", filters.since);
    if (filters.cursor !== undefined) {
      if (!/^\d{1,18}$/.test(filters.cursor))
        throw validationError([{ field: "querystring.cursor", message: "is not a cursor from this list" }]);
      query = query.where("seq", "<", filters.cursor);
    }
    const rows = await query.execute();
    const items = rows.slice(0, filters.limit);
    return {
      items: items.map((row) => ({
        id: row.id,
        at: new Date(row.at).toISOString(),
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        details: row.details,
        ip: row.ip,
        request_id: row.request_id,
      })),
      nextCursor: rows.length > filters.limit ? String(items.at(-1)!.seq) : null,
    };
  }
}
