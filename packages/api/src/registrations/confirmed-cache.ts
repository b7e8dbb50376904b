import type { RegistrationRow } from "./registration.js";

/**
 * Confirmed registrations recently looked up, for the verify route (badges and verification
 * pages ask for the same hashes over and over). A confirmed row changes only when a block
 * moves it to another owner: this process's indexer says which (`forget`), and `ttlMs`
 * bounds how long a change indexed by another instance can go unseen.
 */
export class ConfirmedCache {
  readonly #entries = new Map<string, { row: RegistrationRow; at: number }>();
  /** Lookups under way: concurrent requests for one hash share one database read. */
  readonly #loading = new Map<string, Promise<RegistrationRow | undefined>>();

  constructor(
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The registration of a hash: from the cache, from a read already under way, or from `load`. */
  async find(
    contentHash: string,
    load: (contentHash: string) => Promise<RegistrationRow | undefined>,
  ): Promise<RegistrationRow | undefined> {
    const entry = this.#entries.get(contentHash);
    if (entry && performance.now() - entry.at < this.ttlMs) return entry.row;
    if (entry) this.#entries.delete(contentHash);
    let loading = this.#loading.get(contentHash);
    if (!loading) {
      loading = load(contentHash).finally(() => this.#loading.delete(contentHash));
      this.#loading.set(contentHash, loading);
      const row = await loading;
      if (row) this.#remember(row);
      return row;
    }
    return loading;
  }

  #remember(row: RegistrationRow): void {
    if (row.status !== "confirmed") return;
    // Oldest out first: a Map iterates in insertion order.
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(row.content_hash, { row, at: performance.now() });
  }

  forget(contentHashes: Iterable<string>): void {
    for (const hash of contentHashes) this.#entries.delete(hash);
  }
}
