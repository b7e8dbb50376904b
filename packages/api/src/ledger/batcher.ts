import { createHash } from "node:crypto";
import { licenceFromLedger, MsgRegisterContent, MsgTransferOwnership, parseLicence, toLedgerHash } from "@daon/core";
import type { Kysely, Transaction } from "kysely";
import type { Logger } from "pino";
import { pendingTransfers } from "../accounts/transfers.js";
import type { Database } from "../db/schema.js";
import type { Confirmations } from "./confirmations.js";
import type { LedgerClient } from "./ledger-client.js";
import { RepeatingCycle } from "./repeating-cycle.js";

const MAX_MESSAGES_PER_TX = 2000;
// Short cycles: a registration waits for the next batch and the next block, and this adds to both.
const INTERVAL_MS = 50;
const RECOVERY_INTERVAL_MS = 5000;
const ALREADY_EXISTS = { codespace: "contentregistry", code: 3 };
const WRONG_SEQUENCE = { codespace: "sdk", code: 32 };
/** Refusals only a transfer earns: the work unknown to the ledger, not the wallet's to move, a bad new owner. */
const TRANSFER_REFUSED = { codespace: "contentregistry", codes: [4, 5, 8] };

/** A failed tx's registrations and transfers go back to the queue for the next batch. */
export async function requeue(trx: Transaction<Database>, txHash: string): Promise<void> {
  for (const table of ["outbox", "transfers"] as const) {
    await trx
      .updateTable(table)
      .set({ status: "pending", tx_hash: null })
      .where("tx_hash", "=", txHash)
      .where("status", "=", "submitted")
      .execute();
  }
}

/**
 * Moves the outbox to the ledger: packs pending registrations into one signed tx with many
 * messages, stores the signed bytes, then broadcasts. A restart re-sends stored txs that the
 * ledger has not committed, so an accepted registration is submitted until it lands.
 */
export class Batcher {
  #signer: { accountNumber: bigint; sequence: number } | undefined;
  #lastRecovery = 0;
  #ledger: LedgerClient;
  #paused = false;
  /** Txs this batcher broadcast and has not yet seen committed: what a stop or a pause waits for. */
  readonly #unconfirmed = new Map<string, string>();
  #lastCommitted: { txHash: string; address: string } | undefined;
  readonly #loop = new RepeatingCycle(
    () => this.#cycle(),
    (error) => {
      this.confirmations.stopWaiting(); // api.md §2.2: no wait while the node is known down
      this.#signer = undefined;
      this.log.warn({ err: error }, "batcher cycle failed; retrying");
    },
    INTERVAL_MS,
  );

  constructor(
    private readonly db: Kysely<Database>,
    ledger: LedgerClient,
    private readonly log: Logger,
    private readonly confirmations: Confirmations,
  ) {
    this.#ledger = ledger;
  }

  private get ledger(): LedgerClient {
    return this.#ledger;
  }

  /** The wallet that signs the next batch. */
  get address(): string {
    return this.#ledger.address;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The latest tx of this batcher seen committed, with the wallet that signed it (wallet rotation checks it). */
  get lastCommitted(): { txHash: string; address: string } | undefined {
    return this.#lastCommitted;
  }

  /** Txs broadcast and not yet seen committed. */
  get unconfirmedTxs(): string[] {
    return [...this.#unconfirmed.keys()];
  }

  /** Last failure, for /health; cleared by a successful cycle. */
  get lastError(): string | undefined {
    return this.#loop.lastError;
  }

  start(): void {
    this.#loop.start();
  }

  /**
   * Stops after the cycle in progress; with `flush`, first submits what is pending (unless
   * paused for a wallet switch) and, with `waitForBlockMs`, waits for the block holding it.
   * Rejects naming the txs still uncommitted when that wait runs out.
   */
  async stop(options: { flush?: boolean; waitForBlockMs?: number } = {}): Promise<void> {
    await this.#loop.stop();
    if (options.flush && !this.#paused) await this.#cycle().catch(() => {});
    if (options.waitForBlockMs) await this.#waitCommitted(options.waitForBlockMs);
  }

  /**
   * Stops signing (wallet rotation, ops.md §8): the cycle in progress ends, then this waits
   * until every tx already broadcast is committed, so the old wallet has nothing in flight.
   */
  async pause(timeoutMs = 30_000): Promise<void> {
    this.#paused = true;
    await this.#loop.stop();
    await this.#waitCommitted(timeoutMs);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#loop.start();
  }

  /** Signs from now on with another wallet (SIGHUP after `rotate-keys wallet`); its sequence is read afresh. */
  switchWallet(ledger: LedgerClient): void {
    this.#ledger = ledger;
    this.#signer = undefined;
  }

  async #waitCommitted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const [txHash, address] of this.#unconfirmed) {
        const committed = await this.ledger.isCommitted(txHash).catch((error: Error) => {
          // Nothing will commit while the node is unreachable: say so now rather than at the deadline.
          throw new Error(
            `batcher: the ledger node is unreachable (${error.message.slice(0, 120)}); ${this.#unconfirmed.size} submitted tx(s) unconfirmed, re-sent on the next start`,
          );
        });
        if (committed) {
          this.#unconfirmed.delete(txHash);
          this.#lastCommitted = { txHash, address };
        }
      }
      if (this.#unconfirmed.size === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `batcher: ${this.#unconfirmed.size} submitted tx(s) not committed after ${Math.round(timeoutMs / 1000)} s (${this.unconfirmedTxs.join(", ").slice(0, 200)})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async #cycle(): Promise<void> {
    await this.#noteCommitted();
    if (!this.#signer || Date.now() - this.#lastRecovery > RECOVERY_INTERVAL_MS) await this.#recover();
    const pending = await this.db
      .selectFrom("outbox")
      .innerJoin("registrations", "registrations.content_hash", "outbox.content_hash")
      .select(["outbox.id", "outbox.content_hash", "license", "ai_training_policy", "fingerprint", "platform", "owner_id"])
      .where("outbox.status", "=", "pending")
      .orderBy("outbox.id")
      .limit(MAX_MESSAGES_PER_TX)
      .execute();
    // Ownership transfers (accounts/transfers.ts) ride in the same tx, after the registrations.
    const transfers = await pendingTransfers(this.db, MAX_MESSAGES_PER_TX - pending.length);
    if (pending.length === 0 && transfers.length === 0) return;
    const signer = this.#signer!;
    const registrationMessages = pending.map((row) => ({
      typeUrl: MsgRegisterContent.typeUrl,
      value: MsgRegisterContent.fromPartial({
        creator: this.ledger.address,
        contentHash: toLedgerHash(row.content_hash),
        license: parseLicence(row.license).ledger,
        fingerprint: row.fingerprint,
        platform: row.platform,
        owner: row.owner_id ?? "",
        aiTrainingPolicy: row.ai_training_policy,
      }),
    }));
    const transferMessages = transfers.map((row) => ({
      typeUrl: MsgTransferOwnership.typeUrl,
      value: MsgTransferOwnership.fromPartial({
        creator: this.ledger.address,
        contentHash: toLedgerHash(row.content_hash),
        newOwner: row.new_owner,
      }),
    }));
    const messages = [...registrationMessages, ...transferMessages];
    // Gas as the ledger charges it, with room for the tx's bytes (~250 per message).
    const raw = await this.ledger.sign(messages, signer, 50_000 + 5_000 * messages.length);
    const txHash = createHash("sha256").update(raw).digest("hex").toUpperCase();
    const ids = pending.map((row) => row.id);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto("submissions")
        .values({ tx_hash: txHash, sequence: signer.sequence, raw, status: "broadcast", created_at: new Date() })
        .execute();
      if (ids.length > 0) await trx.updateTable("outbox").set({ status: "submitted", tx_hash: txHash }).where("id", "in", ids).execute();
      if (transfers.length > 0) {
        await trx
          .updateTable("transfers")
          .set({ status: "submitted", tx_hash: txHash })
          .where(
            "id",
            "in",
            transfers.map((t) => t.id),
          )
          .execute();
      }
    });
    const outcome = await this.ledger.broadcastSync(raw);
    if (outcome.code === 0) {
      signer.sequence += 1;
      this.#unconfirmed.set(txHash, this.ledger.address);
      this.log.debug({ txHash, messages: messages.length }, "submitted registrations");
      return;
    }
    await this.#markFailed(txHash);
    if (outcome.codespace === WRONG_SEQUENCE.codespace && outcome.code === WRONG_SEQUENCE.code) {
      this.#signer = undefined;
      return;
    }
    if (outcome.codespace === ALREADY_EXISTS.codespace && outcome.code === ALREADY_EXISTS.code) {
      await this.#settleRegisteredElsewhere(pending.map((row) => row.content_hash));
      return;
    }
    if (transfers.length > 0 && outcome.codespace === TRANSFER_REFUSED.codespace && TRANSFER_REFUSED.codes.includes(outcome.code)) {
      await this.#refuseTransfers(transfers, outcome);
      return;
    }
    // The API checks what the ledger checks, so any other refusal is an operator incident.
    this.log.error(
      { txHash, code: outcome.code, codespace: outcome.codespace, log: outcome.log },
      "the ledger refused a batch of registrations",
    );
    throw new Error(`ledger refused batch: ${outcome.codespace}/${outcome.code} ${outcome.log}`);
  }

  /** Forgets txs seen committed; checks at most a few per cycle, oldest first. */
  async #noteCommitted(): Promise<void> {
    for (const [txHash, address] of [...this.#unconfirmed].slice(0, 4)) {
      if (!(await this.ledger.isCommitted(txHash).catch(() => false))) return;
      this.#unconfirmed.delete(txHash);
      this.#lastCommitted = { txHash, address };
    }
  }

  /** Re-sends stored txs the ledger has not committed; resumes the wallet's sequence after them. */
  async #recover(): Promise<void> {
    this.#lastRecovery = Date.now();
    const account = await this.ledger.account();
    const inFlight = await this.db
      .selectFrom("submissions")
      .select(["tx_hash", "sequence", "raw"])
      .where("status", "=", "broadcast")
      .orderBy("sequence")
      .execute();
    let next = account.sequence;
    for (const submission of inFlight) {
      const sequence = Number(submission.sequence);
      if (await this.ledger.isCommitted(submission.tx_hash)) continue; // the indexer records it
      if (sequence < account.sequence) {
        // Its sequence was spent without it: it can never be committed, so its registrations go back to the queue.
        await this.#markFailed(submission.tx_hash);
        continue;
      }
      const outcome = await this.ledger.broadcastSync(new Uint8Array(submission.raw));
      if (outcome.code === 0 || /already exists in cache/.test(outcome.log)) next = Math.max(next, sequence + 1);
      else await this.#markFailed(submission.tx_hash);
    }
    this.#signer = { accountNumber: account.accountNumber, sequence: next };
  }

  async #markFailed(txHash: string): Promise<void> {
    this.#unconfirmed.delete(txHash);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("submissions")
        .set({ status: "failed" })
        .where("tx_hash", "=", txHash)
        .where("status", "=", "broadcast")
        .execute();
      await requeue(trx, txHash);
    });
  }

  /**
   * The ledger refused a transfer (the refusal names its work when it can): that transfer
   * fails, so the registrations and other transfers of the batch go in the next tx.
   */
  async #refuseTransfers(transfers: { id: string; content_hash: string }[], outcome: { code: number; log: string }): Promise<void> {
    const named = /sha256:([0-9a-f]{64})/.exec(outcome.log)?.[1];
    const refused = transfers.some((t) => t.content_hash === named) ? transfers.filter((t) => t.content_hash === named) : transfers;
    this.log.error(
      { code: outcome.code, log: outcome.log, transfers: refused.map((t) => t.id) },
      "the ledger refused an ownership transfer",
    );
    await this.db
      .updateTable("transfers")
      .set({ status: "failed", tx_hash: null })
      .where(
        "id",
        "in",
        refused.map((t) => t.id),
      )
      .where("status", "=", "pending")
      .execute();
  }

  /** Some hashes of a refused batch are on the ledger already (its record wins); the rest are retried. */
  async #settleRegisteredElsewhere(contentHashes: string[]): Promise<void> {
    for (const contentHash of contentHashes) {
      const { response } = await this.ledger.verifyContent(toLedgerHash(contentHash));
      if (!response.verified) continue;
      await this.db.transaction().execute(async (trx) => {
        await trx.updateTable("outbox").set({ status: "done" }).where("content_hash", "=", contentHash).execute();
        await trx
          .updateTable("registrations")
          .set({
            status: "confirmed",
            license: licenceFromLedger(response.license),
            ai_training_policy: response.aiTrainingPolicy || "prohibited",
            owner_id: response.owner || null,
            block_height: Number(response.height),
            tx_hash: response.txHash,
            block_time: new Date(Number(response.timestamp) * 1000),
            ledger_creator: response.creator,
          })
          .where("content_hash", "=", contentHash)
          .execute();
      });
      this.confirmations.announce([contentHash]);
    }
  }
}
