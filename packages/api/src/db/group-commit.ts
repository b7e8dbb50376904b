/**
 * Group commit: calls that arrive while a commit is in flight wait and are committed together
 * by the next one. Under load, many requests share one transaction (one round trip set and one
 * fsync); alone, a call is committed at once. If a group fails, its members are retried one by
 * one, so one bad member does not fail the others.
 */
export class GroupCommit<Item, Result> {
  readonly #waiting: { item: Item; resolve(result: Result): void; reject(error: unknown): void }[] = [];
  #committing = false;

  constructor(
    /** Commits a group; results in the order of the items. */
    private readonly commit: (items: Item[]) => Promise<Result[]>,
    private readonly maxGroup = 500,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#committing) void this.#commitWaiting();
    });
  }

  async #commitWaiting(): Promise<void> {
    this.#committing = true;
    while (this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, this.maxGroup);
      try {
        const results = await this.commit(group.map((g) => g.item));
        for (const [i, g] of group.entries()) g.resolve(results[i]);
      } catch (error) {
        if (group.length === 1) group[0].reject(error);
        else for (const g of group) this.commit([g.item]).then(([result]) => g.resolve(result), g.reject);
      }
    }
    this.#committing = false;
  }
}
