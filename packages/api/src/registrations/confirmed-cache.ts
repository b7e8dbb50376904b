import type { RegistrationRow } from "./registration.js";

/**
 * Confirmed registrations recently looked up, for the verify route (badges and verification
 * pages ask for the same hashes over and over). A confirmed row changes only when a block
 * moves it to another owner: this process's indexer says which (`forget`), and `ttlMs`
 * bounds how long a change indexed by another instance can go unseen.
 */
export class ConfirmedCache {
  readonly #entries = new Map<string, { row: RegistrationRow; at: number }>();

  constructor(
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  get(contentHash: string): RegistrationRow | undefined {
    const entry = this.#entries.get(contentHash);
    if (!entry) return undefined;
    if (performance.now() - entry.at < this.ttlMs) return entry.row;
    this.#entries.delete(contentHash);
    return undefined;
  }

  remember(row: RegistrationRow): void {
    if (row.status !== "confirmed") return;
    // Oldest out first: a Map iterates in insertion order.
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(row.content_hash, { row, at: performance.now() });
  }

  forget(contentHashes: Iterable<string>): void {
    for (const hash of contentHashes) this.#entries.delete(hash);
  }
}
