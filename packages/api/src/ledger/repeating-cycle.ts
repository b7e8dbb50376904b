/**
 * Runs a background worker's cycle over and over: `intervalMs` after a success, `retryMs`
 * after a failure (remembered in `lastError` until the next success); `stop` waits for the
 * cycle in progress so nothing is cut off half-way.
 */
export class RepeatingCycle {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  lastError: string | undefined;

  constructor(
    private readonly cycle: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs: number,
    private readonly retryMs = 1000,
  ) {}

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.cycle()
        .then(() => {
          this.lastError = undefined;
        })
        .catch((error) => {
          this.lastError = (error as Error).message;
          this.onError(error);
        })
        .finally(() => {
          this.#running = undefined;
          this.#schedule(this.lastError ? this.retryMs : this.intervalMs);
        });
    }, delay);
  }
}
