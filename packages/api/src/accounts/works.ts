import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { validationError } from "../http/errors.js";
import type { RegistrationRow } from "../registrations/registration.js";

/** The cursor of a page (api.md §1): where the last item stood, opaque to clients. */
function encodeCursor(row: RegistrationRow): string {
  return Buffer.from(JSON.stringify([new Date(row.created_at).toISOString(), row.content_hash])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; contentHash: string } {
  try {
    const [createdAt, contentHash] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const date = new Date(createdAt);
    if (typeof createdAt === "string" && !Number.isNaN(date.getTime()) && /^[0-9a-f]{64}$/.test(contentHash))
      return { createdAt: date, contentHash };
  } catch {
    // falls through to the refusal
  }
  throw validationError([{ field: "cursor", message: "is not a cursor this API gave out" }]);
}

/** One page of the works an owner holds now, newest first. */
export async function worksOf(db: Kysely<Database>, ownerId: string, page: { limit: number; cursor?: string }) {
  const after = page.cursor ? decodeCursor(page.cursor) : undefined;
  let query = db.selectFrom("registrations").selectAll().where("owner_id", "=", ownerId);
  if (after) {
    query = query.where((eb) =>
      eb.or([
        eb("created_at", "<", after.createdAt),
        eb.and([eb("created_at", "=", after.createdAt), eb("content_hash", "<", after.contentHash)]),
      ]),
    );
  }
  const rows = await query
    .orderBy("created_at", "desc")
    .orderBy("content_hash", "desc")
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit);
  return { items, nextCursor: rows.length > page.limit ? encodeCursor(items[items.length - 1]) : null };
}
