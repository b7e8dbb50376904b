import type { RegistrationRow } from "./registration.js";

/**
 * Confirmed registrations recently looked up, for the verify route (badges and verification
 * pages ask for the same hashes over and over). A confirmed row changes only when a block
 * changes it (a transfer), so entries die as soon as the indexed height moves; `ttlMs`
 * bounds how long another instance's indexing can go unseen.
 */
export class ConfirmedCache {
  readonly #entries = new Map<string, { row: RegistrationRow; height: number; at: number }>();

  constructor(
    private readonly indexedHeight: () => number,
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  get(contentHash: string): RegistrationRow | undefined {
    const entry = this.#entries.get(contentHash);
    if (!entry) return undefined;
    if (entry.height === this.indexedHeight() && performance.now() - entry.at < this.ttlMs) return entry.row;
    this.#entries.delete(contentHash);
    return undefined;
  }

  remember(row: RegistrationRow): void {
    if (row.status !== "confirmed") return;
    // Oldest out first: a Map iterates in insertion order.
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(row.content_hash, { row, height: this.indexedHeight(), at: performance.now() });
  }
}
