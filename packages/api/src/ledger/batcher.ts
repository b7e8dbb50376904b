import { createHash } from "node:crypto";
import { licenceFromLedger, MsgRegisterContent, parseLicence, toLedgerHash } from "@daon/core";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../db/schema.js";
import type { Confirmations } from "./confirmations.js";
import type { LedgerClient } from "./ledger-client.js";
import { RepeatingCycle } from "./repeating-cycle.js";

const MAX_MESSAGES_PER_TX = 2000;
const INTERVAL_MS = 150;
const RECOVERY_INTERVAL_MS = 5000;
const ALREADY_EXISTS = { codespace: "contentregistry", code: 3 };
const WRONG_SEQUENCE = { codespace: "sdk", code: 32 };

/**
 * Moves the outbox to the ledger: packs pending registrations into one signed tx with many
 * messages, stores the signed bytes, then broadcasts. A restart re-sends stored txs that the
 * ledger has not committed, so an accepted registration is submitted until it lands.
 */
export class Batcher {
  #signer: { accountNumber: bigint; sequence: number } | undefined;
  #lastRecovery = 0;
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
    private readonly ledger: LedgerClient,
    private readonly log: Logger,
    private readonly confirmations: Confirmations,
  ) {}

  /** Last failure, for /health; cleared by a successful cycle. */
  get lastError(): string | undefined {
    return this.#loop.lastError;
  }

  start(): void {
    this.#loop.start();
  }

  /** Stops after the cycle in progress; with `flush`, first submits what is pending. */
  async stop(options: { flush?: boolean } = {}): Promise<void> {
    await this.#loop.stop();
    if (options.flush) await this.#cycle().catch(() => {});
  }

  async #cycle(): Promise<void> {
    if (!this.#signer || Date.now() - this.#lastRecovery > RECOVERY_INTERVAL_MS) await this.#recover();
    const pending = await this.db
      .selectFrom("outbox")
      .innerJoin("registrations", "registrations.content_hash", "outbox.content_hash")
      .select(["outbox.id", "outbox.content_hash", "license", "ai_training_policy", "fingerprint", "platform", "owner_id"])
      .where("outbox.status", "=", "pending")
      .orderBy("outbox.id")
      .limit(MAX_MESSAGES_PER_TX)
      .execute();
    if (pending.length === 0) return;
    const signer = this.#signer!;
    const messages = pending.map((row) => ({
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
    // Gas as the ledger charges it, with room for the tx's bytes (~250 per message).
    const raw = await this.ledger.sign(messages, signer, 50_000 + 5_000 * messages.length);
    const txHash = createHash("sha256").update(raw).digest("hex").toUpperCase();
    const ids = pending.map((row) => row.id);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto("submissions")
        .values({ tx_hash: txHash, sequence: signer.sequence, raw, status: "broadcast", created_at: new Date() })
        .execute();
      await trx.updateTable("outbox").set({ status: "submitted", tx_hash: txHash }).where("id", "in", ids).execute();
    });
    const outcome = await this.ledger.broadcastSync(raw);
    if (outcome.code === 0) {
      signer.sequence += 1;
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
    // The API checks what the ledger checks, so any other refusal is an operator incident.
    this.log.error(
      { txHash, code: outcome.code, codespace: outcome.codespace, log: outcome.log },
      "the ledger refused a batch of registrations",
    );
    throw new Error(`ledger refused batch: ${outcome.codespace}/${outcome.code} ${outcome.log}`);
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
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("submissions")
        .set({ status: "failed" })
        .where("tx_hash", "=", txHash)
        .where("status", "=", "broadcast")
        .execute();
      await trx
        .updateTable("outbox")
        .set({ status: "pending", tx_hash: null })
        .where("tx_hash", "=", txHash)
        .where("status", "=", "submitted")
        .execute();
    });
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
