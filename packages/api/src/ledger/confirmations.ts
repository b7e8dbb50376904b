import { EventEmitter } from "node:events";

const STOP_WAITING = Symbol("stop waiting");

/**
 * Where a waiting protect request hears that its hash reached the ledger: the indexer of this
 * process announces at once; `poll` covers hashes confirmed by another instance's indexer.
 */
export class Confirmations {
  readonly #events = new EventEmitter().setMaxListeners(0);

  readonly #changeListeners = new Set<(contentHashes: string[]) => void>();

  /** Registrations this process's indexer changed (confirmed, or moved to another owner): caches forget them. */
  changed(contentHashes: string[]): void {
    if (contentHashes.length > 0) for (const listener of this.#changeListeners) listener(contentHashes);
  }

  onChanged(listener: (contentHashes: string[]) => void): void {
    this.#changeListeners.add(listener);
  }

  announce(contentHashes: Iterable<string>): void {
    for (const hash of contentHashes) this.#events.emit(hash);
  }

  /** Nothing will be confirmed soon (the indexer or batcher failed): waiting requests stop waiting and answer pending. */
  stopWaiting(): void {
    this.#events.emit(STOP_WAITING);
  }

  /** Resolves true once all hashes are confirmed, false after `timeoutMs` or when told to stop waiting. */
  async waitFor(contentHashes: string[], timeoutMs: number, poll: (hashes: string[]) => Promise<Set<string>>): Promise<boolean> {
    const waiting = new Set(contentHashes);
    if (waiting.size === 0 || timeoutMs <= 0) return waiting.size === 0;
    return new Promise((resolve) => {
      const listeners = new Map<string, () => void>();
      let pollTimer: NodeJS.Timeout | undefined;
      const finish = (confirmed: boolean) => {
        clearTimeout(deadline);
        clearTimeout(pollTimer);
        for (const [hash, listener] of listeners) this.#events.off(hash, listener);
        this.#events.off(STOP_WAITING, giveUp);
        resolve(confirmed);
      };
      const giveUp = () => finish(false);
      this.#events.once(STOP_WAITING, giveUp);
      const settle = (hash: string) => {
        waiting.delete(hash);
        if (waiting.size === 0) finish(true);
      };
      const deadline = setTimeout(() => finish(false), timeoutMs);
      for (const hash of waiting) {
        const listener = () => settle(hash);
        listeners.set(hash, listener);
        this.#events.once(hash, listener);
      }
      const check = async () => {
        try {
          for (const hash of await poll([...waiting])) settle(hash);
        } catch {
          // The database may be briefly unavailable; the next poll or the deadline decides.
        }
        if (waiting.size > 0) pollTimer = setTimeout(check, 500);
      };
      pollTimer = setTimeout(check, 500);
    });
  }
}
