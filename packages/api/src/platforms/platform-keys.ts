import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type { PlatformScope } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { ApiError, validationError } from "../http/errors.js";
import { fingerprint } from "../secrets/strength.js";
import type { PlatformKeysTable } from "./tables.js";

export type PlatformKeyRow = Selectable<PlatformKeysTable>;

export const SCOPES: readonly PlatformScope[] = ["broker:register", "broker:verify", "broker:transfer", "broker:webhooks"];

/** `DAON_BR_` + 16 hex id + 48 hex secret; the first 24 characters are the visible prefix. */
const KEY_FORMAT = /^DAON_BR_([0-9a-f]{16})[0-9a-f]{48}$/;
const PREFIX_LENGTH = 24;

/** API_KEY_SECRET and, while rotating, its predecessor: read at each use, so a reload takes effect at once. */
export interface ApiKeySecrets {
  current: string | undefined;
  previous: string | undefined;
}

export interface IssuedKey {
  /** The whole key: shown once, never stored. */
  key: string;
  row: PlatformKeyRow;
}

export interface NewKey {
  platformId: string;
  name: string;
  scopes: readonly PlatformScope[];
  expiresAt: Date | null;
}

/** The key object answers show: everything but the secret. */
export function keyObject(row: PlatformKeyRow, now = new Date()) {
  const expiresAt = row.expires_at ? new Date(row.expires_at) : null;
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: scopesOf(row),
    created_at: new Date(row.created_at).toISOString(),
    expires_at: expiresAt?.toISOString() ?? null,
    last_used_at: row.last_used_at ? new Date(row.last_used_at).toISOString() : null,
    revoked_at: row.revoked_at ? new Date(row.revoked_at).toISOString() : null,
    status: row.revoked_at ? "revoked" : expiresAt && expiresAt <= now ? "expired" : "active",
  };
}

export const scopesOf = (row: Pick<PlatformKeyRow, "scopes">) => row.scopes.split(" ").filter(Boolean) as PlatformScope[];

/** Checks requested scopes (default: all four); unknown ones are a validation error. */
export function parseScopes(requested: readonly string[] | undefined, field = "scopes"): PlatformScope[] {
  if (requested === undefined) return [...SCOPES];
  const unknown = requested.filter((s) => !SCOPES.includes(s as PlatformScope));
  if (unknown.length > 0) throw validationError([{ field, message: `unknown scope ${unknown[0]}; use ${SCOPES.join(", ")}` }]);
  if (requested.length === 0) throw validationError([{ field, message: "must name at least one scope" }]);
  return SCOPES.filter((s) => requested.includes(s));
}

/**
 * Platform keys in the database: issued, listed, revoked, rotated, and resolved from a
 * presented key. Only an HMAC-SHA-256 under API_KEY_SECRET is kept, with the id of the
 * secret it was made under; a key still hashed under the previous secret is re-hashed
 * under the current one on use (ops.md §8 `secrets`).
 */
export class PlatformKeys {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly secrets: () => ApiKeySecrets,
  ) {}

  /** Set at start (development without one runs on a random one for the run: see accounts/secrets.ts). */
  private currentSecret(): string {
    const current = this.secrets().current;
    if (!current) throw new Error("API_KEY_SECRET is not set");
    return current;
  }

  private hash(key: string, secret: string): { key_hash: string; hash_key_id: string } {
    return { key_hash: createHmac("sha256", secret).update(key).digest("hex"), hash_key_id: fingerprint(secret) };
  }

  async issue(spec: NewKey, db: Kysely<Database> = this.db, now = new Date()): Promise<IssuedKey> {
    const id = randomBytes(8).toString("hex");
    const key = `DAON_BR_${id}${randomBytes(24).toString("hex")}`;
    const row = await db
      .insertInto("platform_keys")
      .values({
        id,
        platform_id: spec.platformId,
        name: spec.name,
        prefix: key.slice(0, PREFIX_LENGTH),
        ...this.hash(key, this.currentSecret()),
        scopes: spec.scopes.join(" "),
        created_at: now,
        expires_at: spec.expiresAt,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { key, row };
  }

  list(platformId: string): Promise<PlatformKeyRow[]> {
    return this.db.selectFrom("platform_keys").selectAll().where("platform_id", "=", platformId).orderBy("created_at", "desc").execute();
  }

  find(platformId: string, keyId: string, db: Kysely<Database> = this.db): Promise<PlatformKeyRow | undefined> {
    return db.selectFrom("platform_keys").selectAll().where("platform_id", "=", platformId).where("id", "=", keyId).executeTakeFirst();
  }

  /** Revokes a key of this platform; undefined when it has no such key. Revoking twice keeps the first time. */
  async revoke(platformId: string, keyId: string, db: Kysely<Database> = this.db, now = new Date()): Promise<PlatformKeyRow | undefined> {
    await db
      .updateTable("platform_keys")
      .set({ revoked_at: now })
      .where("platform_id", "=", platformId)
      .where("id", "=", keyId)
      .where("revoked_at", "is", null)
      .execute();
    return this.find(platformId, keyId, db);
  }

  /** A new key with the caller's scopes and name; the caller's key then expires after the overlap. */
  async rotate(caller: PlatformKeyRow, overlapHours: number, now = new Date()): Promise<{ issued: IssuedKey; previous: PlatformKeyRow }> {
    return this.db.transaction().execute(async (trx) => {
      const issued = await this.issue(
        { platformId: caller.platform_id, name: caller.name, scopes: scopesOf(caller), expiresAt: caller.expires_at },
        trx,
        now,
      );
      const overlapEnd = new Date(now.getTime() + overlapHours * 3600_000);
      const expiresAt = caller.expires_at && new Date(caller.expires_at) < overlapEnd ? new Date(caller.expires_at) : overlapEnd;
      const previous = await trx
        .updateTable("platform_keys")
        .set({ expires_at: expiresAt })
        .where("id", "=", caller.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { issued, previous };
    });
  }

  /**
   * The key row a presented key stands for, if it is well formed, known, matches its
   * hash, and is neither revoked nor expired; else undefined.
   */
  async resolve(presented: string, now = new Date()): Promise<PlatformKeyRow | undefined> {
    const id = KEY_FORMAT.exec(presented)?.[1];
    if (!id) return undefined;
    const row = await this.db.selectFrom("platform_keys").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row || row.prefix !== presented.slice(0, PREFIX_LENGTH)) return undefined;
    const current = this.currentSecret();
    const candidates = [current, this.secrets().previous].filter((s): s is string => Boolean(s));
    const secret = candidates.find((s) => fingerprint(s) === row.hash_key_id);
    if (!secret || !equalHex(this.hash(presented, secret).key_hash, row.key_hash)) return undefined;
    if (row.revoked_at || (row.expires_at && new Date(row.expires_at) <= now)) return undefined;
    const rehash = secret !== current;
    const stale = !row.last_used_at || now.getTime() - new Date(row.last_used_at).getTime() > 60_000;
    if (rehash || stale) {
      // Re-hashed under the current secret once seen under the previous one; last use kept to the minute.
      await this.db
        .updateTable("platform_keys")
        .set({ last_used_at: now, ...(rehash ? this.hash(presented, current) : {}) })
        .where("id", "=", row.id)
        .execute();
    }
    return row;
  }
}

function equalHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** A key issued by someone without all of the given scopes is refused (api.md §4: scopes ⊆ the caller's). */
export function requireScopesWithin(requested: readonly PlatformScope[], allowed: readonly PlatformScope[]): void {
  const missing = requested.filter((s) => !allowed.includes(s));
  if (missing.length > 0) {
    throw new ApiError(403, "INSUFFICIENT_SCOPE", `a key cannot grant scopes its creator lacks: ${missing.join(", ")}`, {
      required: missing.join(" "),
    });
  }
}
