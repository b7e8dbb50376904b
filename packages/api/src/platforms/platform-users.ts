import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { opaqueId } from "../registrations/registration.js";

/**
 * A platform's users (`username@domain`) and their owner ids: random (`o_` + 26 base32),
 * made on first use, never derived from the name, so the ledger never learns who they are.
 */
export class PlatformUsers {
  constructor(private readonly db: Kysely<Database>) {}

  /** The user's owner id, created on first use (concurrent first uses agree on one). */
  async ownerOf(platformId: string, username: string, now = new Date()): Promise<string> {
    const known = await this.find(platformId, username);
    if (known) return known;
    await this.db
      .insertInto("platform_users")
      .values({ platform_id: platformId, username, owner_id: opaqueId("o"), created_at: now })
      .onConflict((c) => c.columns(["platform_id", "username"]).doNothing())
      .execute();
    return (await this.find(platformId, username))!;
  }

  /** The user's owner id, if the platform has ever named this user. */
  async find(platformId: string, username: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("platform_users")
      .select("owner_id")
      .where("platform_id", "=", platformId)
      .where("username", "=", username)
      .executeTakeFirst();
    return row?.owner_id;
  }

  /** The username behind an owner id, if that owner is one of this platform's users. */
  async usernameOf(platformId: string, ownerId: string | null): Promise<string | undefined> {
    if (!ownerId) return undefined;
    const row = await this.db
      .selectFrom("platform_users")
      .select("username")
      .where("platform_id", "=", platformId)
      .where("owner_id", "=", ownerId)
      .executeTakeFirst();
    return row?.username;
  }
}
