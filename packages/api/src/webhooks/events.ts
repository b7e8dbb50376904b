import { type Kysely, sql, type Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { opaqueId, type RegistrationRow } from "../registrations/registration.js";
import type { WebhookEvent } from "./tables.js";

type Queryable = Kysely<Database> | Transaction<Database>;

/** A committed ownership transfer, as `content.transferred` reports it. */
export interface CommittedTransfer {
  contentHash: string;
  transferId: string;
  previousOwner: string | null;
  newOwner: string;
  reason: string | null;
  blockHeight: number;
  txHash: string;
  blockTime: Date;
}

export interface ConfirmingBlock {
  height: number;
  txHash: string;
  blockTime: Date;
}

const iso = (value: Date | string) => new Date(value).toISOString();
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * What of a registration's metadata a webhook carries: everything but titles and e-mail
 * addresses (api.md §7: webhooks never carry them).
 */
function publicMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata ?? {}).filter(([key, value]) => key !== "title" && !(typeof value === "string" && EMAIL.test(value.trim()))),
  );
}

function registrationData(row: RegistrationRow) {
  return {
    content_hash: row.content_hash,
    protection_id: row.protection_id,
    owner: row.owner_id,
    license: row.license,
    ai_training_policy: row.ai_training_policy,
    metadata: publicMetadata(row.metadata),
    status: row.status,
    timestamp: iso(row.created_at),
  };
}

/** The body of one event for one platform (api.md §5): the same bytes on every attempt. */
export function eventBody(eventId: string, event: string, platformId: string, now: Date, data: Record<string, unknown>): string {
  return JSON.stringify({ id: eventId, event, timestamp: now.toISOString(), broker_id: platformId, data });
}

/**
 * Which (webhook, registration) pairs an event reaches: enabled webhooks subscribed to the
 * event, of platforms through which the work was registered (the registration's `platform`
 * is the platform's domain) or whose users own it (`owners` adds the owners a transfer
 * involves).
 */
async function matches(
  db: Queryable,
  event: WebhookEvent,
  contentHashes: string[],
  options: { onlyPending?: boolean; owners?: string[] } = {},
): Promise<{ webhook_id: string; platform_id: string; content_hash: string }[]> {
  if (contentHashes.length === 0) return [];
  const owners = options.owners ?? [];
  const works = sql`select content_hash, platform, owner_id from registrations
    where content_hash in (${sql.join(contentHashes)}) ${options.onlyPending ? sql`and status = 'pending'` : sql``}
      ${owners.length > 0 ? sql`` : sql`and (platform <> 'api' or owner_id is not null)`}`;
  // Each way a platform is concerned, as its own index lookup: by domain, by its user owning the work, by a transfer's owners.
  const result = await sql<{ webhook_id: string; platform_id: string; content_hash: string }>`
    with works as (${works}),
    concerned as (
      select p.id as platform_id, r.content_hash from works r join platforms p on p.domain = r.platform
      union
      select u.platform_id, r.content_hash from works r join platform_users u on u.owner_id = r.owner_id
      ${owners.length > 0 ? sql`union select u.platform_id, r.content_hash from works r cross join platform_users u where u.owner_id in (${sql.join(owners)})` : sql``}
    )
    select w.id as webhook_id, w.platform_id, c.content_hash
    from concerned c join webhooks w on w.platform_id = c.platform_id
    where w.enabled and w.events @> ${JSON.stringify([event])}::jsonb
    order by w.id, c.content_hash`.execute(db);
  return result.rows;
}

async function queue(
  db: Queryable,
  event: WebhookEvent,
  pairs: { webhook_id: string; platform_id: string; content_hash: string }[],
  dataOf: (contentHash: string) => Record<string, unknown>,
  now: Date,
): Promise<number> {
  if (pairs.length === 0) return 0;
  // One event id per (work, platform): a platform's webhooks receive the same event.
  const eventIds = new Map<string, string>();
  const rows = pairs.map((pair) => {
    const key = `${pair.platform_id} ${pair.content_hash}`;
    if (!eventIds.has(key)) eventIds.set(key, opaqueId("evt"));
    return {
      id: opaqueId("whd"),
      webhook_id: pair.webhook_id,
      platform_id: pair.platform_id,
      event,
      payload: eventBody(eventIds.get(key)!, event, pair.platform_id, now, dataOf(pair.content_hash)),
      status: "pending" as const,
      attempts: 0,
      failures: 0,
      next_attempt_at: now,
      created_at: now,
    };
  });
  await db.insertInto("webhook_deliveries").values(rows).execute();
  return rows.length;
}

/**
 * `content.protected` for newly created registrations, in the registration's own
 * transaction. Works registered anonymously (platform "api", no owner) cost no query.
 */
export async function queueContentProtected(trx: Queryable, created: RegistrationRow[], now = new Date()): Promise<number> {
  const candidates = created.filter((row) => row.platform !== "api" || row.owner_id !== null);
  const pairs = await matches(
    trx,
    "content.protected",
    candidates.map((row) => row.content_hash),
  );
  const byHash = new Map(candidates.map((row) => [row.content_hash, row]));
  return queue(trx, "content.protected", pairs, (hash) => registrationData(byHash.get(hash)!), now);
}

/**
 * `content.confirmed` for registrations a block confirms, in the indexer's transaction:
 * called before the indexer marks them confirmed, so only the first confirmation (not a
 * re-index) queues an event.
 */
export async function queueContentConfirmed(
  trx: Queryable,
  contentHashes: string[],
  block: ConfirmingBlock,
  now = new Date(),
): Promise<number> {
  const pairs = await matches(trx, "content.confirmed", contentHashes, { onlyPending: true });
  if (pairs.length === 0) return 0;
  const rows = await trx
    .selectFrom("registrations")
    .selectAll()
    .where("content_hash", "in", [...new Set(pairs.map((p) => p.content_hash))])
    .execute();
  const byHash = new Map(rows.map((row) => [row.content_hash, row]));
  return queue(
    trx,
    "content.confirmed",
    pairs,
    (hash) => ({
      ...registrationData(byHash.get(hash)!),
      status: "confirmed",
      block_height: block.height,
      tx_hash: block.txHash,
      block_time: block.blockTime.toISOString(),
    }),
    now,
  );
}

/**
 * `content.transferred` for a transfer the ledger committed, in the transaction that records
 * the commit: for the platform the work was registered through and the platforms whose users
 * gave or received it. Transfers (accounts/) call this.
 */
export async function queueContentTransferred(trx: Queryable, transfer: CommittedTransfer, now = new Date()): Promise<number> {
  const owners = [transfer.previousOwner, transfer.newOwner].filter((o): o is string => o !== null);
  const pairs = await matches(trx, "content.transferred", [transfer.contentHash], { owners });
  return queue(
    trx,
    "content.transferred",
    pairs,
    () => ({
      content_hash: transfer.contentHash,
      transfer_id: transfer.transferId,
      previous_owner: transfer.previousOwner,
      new_owner: transfer.newOwner,
      reason: transfer.reason,
      block_height: transfer.blockHeight,
      tx_hash: transfer.txHash,
      block_time: transfer.blockTime.toISOString(),
    }),
    now,
  );
}
