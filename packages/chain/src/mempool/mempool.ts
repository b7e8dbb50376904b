import type { CheckedTx } from "../state/app.js";
import { txHashHex } from "../state/digest.js";

export interface PendingTx extends CheckedTx {
  raw: Uint8Array;
  hash: string;
}

/**
 * Transactions admitted by CheckTx and waiting for a block, in arrival order. It tracks each
 * signer's next sequence so a signer can queue several txs before the next block.
 */
export class Mempool {
  readonly #txs = new Map<string, PendingTx>();
  readonly #nextSequence = new Map<string, bigint>();
  #bytes = 0;

  constructor(private readonly limits: { size: number; maxTxsBytes: number }) {}

  get size(): number {
    return this.#txs.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  has(hash: string): boolean {
    return this.#txs.has(hash);
  }

  isFull(txBytes: number): boolean {
    return this.#txs.size >= this.limits.size || this.#bytes + txBytes > this.limits.maxTxsBytes;
  }

  nextSequence(signer: string): bigint | undefined {
    return this.#nextSequence.get(signer);
  }

  add(raw: Uint8Array, checked: CheckedTx): PendingTx {
    const pending: PendingTx = { ...checked, raw, hash: hashOf(raw) };
    this.#txs.set(pending.hash, pending);
    this.#bytes += raw.length;
    this.#nextSequence.set(checked.signer, checked.sequence + 1n);
    return pending;
  }

  /** The oldest txs that fit in a block's byte and gas limits. */
  reap(maxBytes: number, maxGas: bigint): PendingTx[] {
    const picked: PendingTx[] = [];
    let bytes = 0;
    let gas = 0n;
    for (const tx of this.#txs.values()) {
      if (bytes + tx.raw.length > maxBytes || (maxGas >= 0n && gas + tx.gasWanted > maxGas)) break;
      picked.push(tx);
      bytes += tx.raw.length;
      gas += tx.gasWanted;
    }
    return picked;
  }

  list(limit: number): PendingTx[] {
    return [...this.#txs.values()].slice(0, limit);
  }

  /**
   * After a block: drops the committed txs, then re-admits the rest through `recheck`
   * (in order, so sequences stay contiguous); those that no longer pass are dropped.
   */
  update(committed: readonly string[], recheck: (tx: PendingTx) => CheckedTx | undefined): void {
    for (const hash of committed) this.#remove(hash);
    const remaining = [...this.#txs.values()];
    this.#txs.clear();
    this.#nextSequence.clear();
    this.#bytes = 0;
    for (const tx of remaining) {
      const checked = recheck(tx);
      if (checked) this.add(tx.raw, checked);
    }
  }

  #remove(hash: string): void {
    const tx = this.#txs.get(hash);
    if (!tx) return;
    this.#txs.delete(hash);
    this.#bytes -= tx.raw.length;
  }
}

export const hashOf = txHashHex;
