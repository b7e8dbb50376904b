import { fromLedgerHash } from "@daon/core";
import type { Kysely, Selectable, Transaction } from "kysely";
import type { Database } from "../db/schema.js";
import { ApiError, validationError } from "../http/errors.js";
import type { Confirmations } from "../ledger/confirmations.js";
import { opaqueId } from "../registrations/registration.js";
import { queueContentTransferred } from "../webhooks/events.js";
import type { TransfersTable } from "./tables.js";

export type TransferRow = Selectable<TransfersTable>;

export interface TransferRequest {
  /** 64 lowercase hex. */
  contentHash: string;
  /** Who must own the work now (refused with NOT_OWNER otherwise). */
  previousOwner: string;
  newOwner: string;
  reason?: string | null;
}

/** What the ledger accepts as an owner: printable ASCII, at most 128 characters (chain.md). */
const LEDGER_OWNER = /^[\x21-\x7e]{1,128}$/;

/**
 * Queues a change of owner (api.md §3 and §4 `broker/transfer`): the transfer is the
 * outbox of a `MsgTransferOwnership` the batcher signs with the API wallet; the indexer
 * marks it confirmed and moves the registration to its new owner. Refuses with
 * NOT_OWNER (unknown work or another owner, revealing nothing), NOT_CONFIRMED (not on the
 * ledger yet), TRANSFER_PENDING (one is on its way) or VALIDATION_ERROR (`newOwner`).
 */
export async function requestTransfer(db: Kysely<Database>, request: TransferRequest, now = new Date()): Promise<TransferRow> {
  if (!LEDGER_OWNER.test(request.newOwner)) {
    throw validationError([{ field: "newOwner", message: "must be an owner id (printable ASCII, at most 128 characters)" }]);
  }
  if (request.newOwner === request.previousOwner) throw validationError([{ field: "newOwner", message: "is already the owner" }]);
  try {
    return await db.transaction().execute(async (trx) => {
      const registration = await trx
        .selectFrom("registrations")
        .select(["owner_id", "status"])
        .where("content_hash", "=", request.contentHash)
        .forUpdate()
        .executeTakeFirst();
      if (!registration || registration.owner_id !== request.previousOwner) {
        throw new ApiError(403, "NOT_OWNER", "the work is not owned by the account that asks to transfer it");
      }
      if (registration.status !== "confirmed") {
        throw new ApiError(409, "NOT_CONFIRMED", "the work is not on the ledger yet; try again shortly", undefined, { "Retry-After": "2" });
      }
      const inFlight = await trx
        .selectFrom("transfers")
        .select("id")
        .where("content_hash", "=", request.contentHash)
        .where("status", "in", ["pending", "submitted"])
        .executeTakeFirst();
      if (inFlight) throw transferPending();
      return trx
        .insertInto("transfers")
        .values({
          id: opaqueId("t"),
          content_hash: request.contentHash,
          previous_owner: request.previousOwner,
          new_owner: request.newOwner,
          reason: request.reason ?? null,
          status: "pending",
          tx_hash: null,
          block_height: null,
          block_time: null,
          created_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  } catch (error) {
    // A concurrent twin won the one-in-flight index.
    if ((error as { code?: string }).code === "23505") throw transferPending();
    throw error;
  }
}

const transferPending = () =>
  new ApiError(409, "TRANSFER_PENDING", "a transfer of this work is already on its way to the ledger", undefined, { "Retry-After": "2" });

/**
 * Waits up to `waitMs` for the transfer to be confirmed (protect's `wait`), not at all while
 * the ledger is known to be down; answers the latest state either way.
 */
export async function awaitTransfer(
  context: { db: Kysely<Database>; confirmations: Confirmations; ledgerDown: boolean },
  transfer: TransferRow,
  waitMs: number,
): Promise<TransferRow> {
  const { db, confirmations } = context;
  if (waitMs <= 0 || context.ledgerDown) return transfer;
  const confirmed = await confirmations.waitFor([transfer.id], waitMs, async (ids) => {
    const rows = await db.selectFrom("transfers").select("id").where("id", "in", ids).where("status", "=", "confirmed").execute();
    return new Set(rows.map((row) => row.id));
  });
  if (!confirmed) return transfer;
  return (await db.selectFrom("transfers").selectAll().where("id", "=", transfer.id).executeTakeFirst()) ?? transfer;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** The transfer object of api.md §3 (a platform's answer adds `reason`). */
export function transferObject(row: TransferRow) {
  return {
    id: row.id,
    contentHash: row.content_hash,
    previousOwner: row.previous_owner,
    newOwner: row.new_owner,
    status: publicStatus(row.status),
    blockHeight: row.block_height === null ? null : Number(row.block_height),
    txHash: row.tx_hash,
    timestamp: new Date(row.created_at).toISOString(),
  };
}

/** Outside, a transfer is pending until it is on the ledger (submitted is an internal stage). */
function publicStatus(status: TransferRow["status"]): "pending" | "confirmed" | "failed" {
  return status === "submitted" ? "pending" : status;
}

/** A work's transfers for its history, oldest first; refused ones are not part of it. */
export async function transfersOf(db: Kysely<Database>, contentHash: string) {
  const rows = await db
    .selectFrom("transfers")
    .selectAll()
    .where("content_hash", "=", contentHash)
    .where("status", "!=", "failed")
    .orderBy("created_at")
    .orderBy("id")
    .execute();
  return rows.map((row) => ({
    type: "transferred" as const,
    from: row.previous_owner,
    to: row.new_owner,
    status: row.status === "confirmed" ? ("confirmed" as const) : ("pending" as const),
    blockHeight: row.block_height === null ? null : Number(row.block_height),
    txHash: row.tx_hash,
    blockTime: iso(row.block_time),
  }));
}

/**
 * The indexer's part: transfers committed in a block. Ours become confirmed; a transfer
 * another submitter made is recorded as it stands on the ledger; either way the work moves
 * to its new owner and `content.transferred` is queued for webhooks, in the block's
 * transaction. Returns the ids confirmed, for waiting requests.
 */
export async function recordCommittedTransfers(
  trx: Transaction<Database>,
  transfers: { ledgerContentHash: string; newOwner: string }[],
  block: { height: number; txHash: string; blockTime: Date },
): Promise<string[]> {
  const confirmed: string[] = [];
  for (const transfer of transfers) {
    const contentHash = fromLedgerHash(transfer.ledgerContentHash);
    const registration = await trx
      .selectFrom("registrations")
      .select("owner_id")
      .where("content_hash", "=", contentHash)
      .executeTakeFirst();
    if (!registration) continue;
    // A replayed block (reindex) finds its transfer recorded: nothing to apply, and no pending twin to claim.
    const recorded = await trx
      .selectFrom("transfers")
      .select("id")
      .where("content_hash", "=", contentHash)
      .where("tx_hash", "=", block.txHash)
      .where("new_owner", "=", transfer.newOwner)
      .where("status", "=", "confirmed")
      .executeTakeFirst();
    if (recorded) continue;
    let committed = await trx
      .updateTable("transfers")
      .set({ status: "confirmed", tx_hash: block.txHash, block_height: block.height, block_time: block.blockTime })
      .where("content_hash", "=", contentHash)
      .where("new_owner", "=", transfer.newOwner)
      .where("status", "in", ["pending", "submitted"])
      .returningAll()
      .executeTakeFirst();
    if (committed) confirmed.push(committed.id);
    else {
      // Moved by another submitter: recorded from the ledger.
      committed = await trx
        .insertInto("transfers")
        .values({
          id: opaqueId("t"),
          content_hash: contentHash,
          previous_owner: registration.owner_id,
          new_owner: transfer.newOwner,
          reason: null,
          status: "confirmed",
          tx_hash: block.txHash,
          block_height: block.height,
          block_time: block.blockTime,
          created_at: block.blockTime,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    await trx.updateTable("registrations").set({ owner_id: transfer.newOwner }).where("content_hash", "=", contentHash).execute();
    if (committed) {
      await queueContentTransferred(trx, {
        contentHash,
        transferId: committed.id,
        previousOwner: committed.previous_owner,
        newOwner: committed.new_owner,
        reason: committed.reason,
        blockHeight: block.height,
        txHash: block.txHash,
        blockTime: block.blockTime,
      });
    }
  }
  return confirmed;
}

/** The batcher's part: transfers waiting for the next transaction, oldest first. */
export function pendingTransfers(db: Kysely<Database>, limit: number) {
  return db
    .selectFrom("transfers")
    .select(["id", "content_hash", "new_owner"])
    .where("status", "=", "pending")
    .orderBy("created_at")
    .orderBy("id")
    .limit(limit)
    .execute();
}
