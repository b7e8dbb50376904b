import { createHash } from "node:crypto";
import { fromLedgerHash, licenceFromLedger, MsgRegisterContent, MsgTransferOwnership } from "@daon/core";
import { TxBody, TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import type { Kysely, Transaction } from "kysely";
import type { Logger } from "pino";
import { recordCommittedTransfers } from "../accounts/transfers.js";
import type { Database } from "../db/schema.js";
import { opaqueId } from "../registrations/registration.js";
import { requeue } from "./batcher.js";
import type { Confirmations } from "./confirmations.js";
import type { LedgerClient } from "./ledger-client.js";
import { RepeatingCycle } from "./repeating-cycle.js";

// A confirmation is seen within one cycle of its block (a status call to the node; cheap).
const INTERVAL_MS = 50;
const MAX_BLOCKS_PER_CYCLE = 50;

interface Registered {
  ledgerHash: string;
  license: string;
  aiTrainingPolicy: string;
  owner: string;
  creator: string;
  fingerprint: string;
  platform: string;
}

/** Work done in the block's transaction just before registrations are marked confirmed (webhooks queue `content.confirmed`). */
export type ConfirmingHook = (
  trx: Transaction<Database>,
  contentHashes: string[],
  block: { height: number; txHash: string; blockTime: Date },
) => Promise<unknown>;

/**
 * Follows committed blocks into the read model: registrations become confirmed with their
 * height, tx and block time, in one database transaction per block together with the cursor.
 */
export class Indexer {
  #stopped = true;
  indexedHeight = 0;
  ledgerHeight = 0;
  readonly #loop = new RepeatingCycle(
    () => this.#cycle(),
    (error) => {
      this.confirmations.stopWaiting(); // api.md §2.2: no wait while the node is known down
      this.log.warn({ err: error }, "indexer cycle failed; retrying");
    },
    INTERVAL_MS,
  );

  constructor(
    private readonly db: Kysely<Database>,
    private readonly ledger: LedgerClient,
    private readonly log: Logger,
    private readonly confirmations: Confirmations,
    private readonly onConfirming?: ConfirmingHook,
  ) {}

  /** Last failure (the ledger or the database unreachable); cleared by a successful cycle. */
  get lastError(): string | undefined {
    return this.#loop.lastError;
  }

  start(): void {
    this.#stopped = false;
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop.stop();
  }

  /**
   * One block in its own transaction, outside the background loop: how `daon reindex` replays
   * the ledger. Idempotent: indexing a block again leaves the read model as it was.
   */
  indexBlock(height: number): Promise<void> {
    return this.#indexBlock(height);
  }

  async #cycle(): Promise<void> {
    const cursor = await this.db.selectFrom("indexer_cursor").select("height").where("id", "=", 1).executeTakeFirstOrThrow();
    this.indexedHeight = Number(cursor.height);
    this.ledgerHeight = (await this.ledger.status()).height;
    const until = Math.min(this.ledgerHeight, this.indexedHeight + MAX_BLOCKS_PER_CYCLE);
    for (let height = this.indexedHeight + 1; height <= until && !this.#stopped; height++) {
      await this.#indexBlock(height);
      this.indexedHeight = height;
    }
  }

  async #indexBlock(height: number): Promise<void> {
    const [{ block }, results] = await Promise.all([this.ledger.block(height), this.ledger.blockResults(height)]);
    const blockTime = new Date(block.header.time.getTime());
    const confirmed: string[] = [];
    const transfersConfirmed: string[] = [];
    /** Works whose owner a transfer in this block changed. */
    const moved: string[] = [];
    await this.db.transaction().execute(async (trx) => {
      for (const [index, raw] of block.txs.entries()) {
        const txHash = createHash("sha256").update(raw).digest("hex").toUpperCase();
        const result = results.results[index];
        if (result.code !== 0) {
          // Our tx failed as a whole: its registrations go back to the queue.
          await trx.updateTable("submissions").set({ status: "failed" }).where("tx_hash", "=", txHash).execute();
          await requeue(trx, txHash);
          continue;
        }
        const registered = registrationsIn(raw);
        const transferred = transfersIn(raw);
        const block = { height, txHash, blockTime };
        if (registered.length === 0) {
          // A tx of ownership transfers only (accounts/transfers.ts).
          if (transferred.length > 0) {
            transfersConfirmed.push(...(await recordCommittedTransfers(trx, transferred, block)));
            moved.push(...transferred.map((t) => fromLedgerHash(t.ledgerContentHash)));
            await trx
              .updateTable("submissions")
              .set({ status: "committed", committed_height: height })
              .where("tx_hash", "=", txHash)
              .execute();
          }
          continue;
        }
        const hashes = registered.map((r) => fromLedgerHash(r.ledgerHash));
        await this.onConfirming?.(trx, hashes, { height, txHash, blockTime });
        await trx
          .updateTable("registrations")
          .set({ status: "confirmed", block_height: height, tx_hash: txHash, block_time: blockTime, ledger_creator: registered[0].creator })
          .where("content_hash", "in", hashes)
          .execute();
        // Registrations submitted by someone else than this API are added from the ledger's record.
        const known = new Set(
          (await trx.selectFrom("registrations").select("content_hash").where("content_hash", "in", hashes).execute()).map(
            (r) => r.content_hash,
          ),
        );
        for (const r of registered) {
          const contentHash = fromLedgerHash(r.ledgerHash);
          if (known.has(contentHash)) continue;
          await trx
            .insertInto("registrations")
            .values({
              content_hash: contentHash,
              protection_id: opaqueId("p"),
              status: "confirmed",
              license: licenceFromLedger(r.license),
              ai_training_policy: r.aiTrainingPolicy || "prohibited",
              licensing_email: null,
              licensing_uri: null,
              metadata: JSON.stringify({ title: "Untitled Work", type: "ledger" }),
              fingerprint: r.fingerprint,
              platform: r.platform,
              owner_id: r.owner || null,
              created_at: blockTime,
              block_height: height,
              tx_hash: txHash,
              block_time: blockTime,
              ledger_creator: r.creator,
            })
            .onConflict((c) => c.column("content_hash").doNothing())
            .execute();
        }
        await trx.updateTable("outbox").set({ status: "done" }).where("content_hash", "in", hashes).execute();
        await trx.updateTable("submissions").set({ status: "committed", committed_height: height }).where("tx_hash", "=", txHash).execute();
        confirmed.push(...hashes);
        // Transfers in the same tx come after its registrations.
        if (transferred.length > 0) {
          transfersConfirmed.push(...(await recordCommittedTransfers(trx, transferred, block)));
          moved.push(...transferred.map((t) => fromLedgerHash(t.ledgerContentHash)));
        }
      }
      await trx.updateTable("indexer_cursor").set({ height }).where("id", "=", 1).execute();
    });
    this.confirmations.announce(confirmed);
    this.confirmations.announce(transfersConfirmed);
    this.confirmations.changed([...confirmed, ...moved]);
  }
}

function transfersIn(raw: Uint8Array): { ledgerContentHash: string; newOwner: string }[] {
  try {
    const body = TxBody.decode(TxRaw.decode(raw).bodyBytes);
    return body.messages
      .filter((any) => any.typeUrl === MsgTransferOwnership.typeUrl)
      .map((any) => {
        const msg = MsgTransferOwnership.decode(any.value);
        return { ledgerContentHash: msg.contentHash, newOwner: msg.newOwner };
      });
  } catch {
    return [];
  }
}

function registrationsIn(raw: Uint8Array): Registered[] {
  try {
    const body = TxBody.decode(TxRaw.decode(raw).bodyBytes);
    return body.messages
      .filter((any) => any.typeUrl === MsgRegisterContent.typeUrl)
      .map((any) => {
        const msg = MsgRegisterContent.decode(any.value);
        return {
          ledgerHash: msg.contentHash,
          license: msg.license,
          aiTrainingPolicy: msg.aiTrainingPolicy,
          owner: msg.owner,
          creator: msg.creator,
          fingerprint: msg.fingerprint,
          platform: msg.platform,
        };
      });
  } catch {
    return [];
  }
}
