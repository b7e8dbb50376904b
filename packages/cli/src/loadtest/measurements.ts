/** The endpoints a virtual user calls, by the names thresholds use (`p95.protect`). */
export const ENDPOINTS = ["protect", "verify", "stats", "poll"] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

/** ops.md §4: network, 30 s timeout, non-2xx (429 apart), failed check. */
export const ERROR_KINDS = ["network", "timeout", "http_4xx", "http_429", "http_5xx", "check"] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface Outcome {
  endpoint: Endpoint;
  method: string;
  route: string;
  /** HTTP status, or null when no answer came. */
  status: number | null;
  ms: number;
  requestId: string;
  error?: { kind: ErrorKind; message: string };
}

export interface SeriesPoint {
  /** Seconds since the load started, at the end of this 10 s window. */
  t: number;
  at: string;
  activeUsers: number;
  requests: number;
  errors: number;
  rateLimited: number;
  rps: number;
  p50: number | null;
  p95: number | null;
}

/** How long a polled iteration waits for its registration to be confirmed (ops.md §4). */
export const CONFIRM_WAIT_MS = 60_000;

/** Nearest-rank percentile of `values` (ms), null when empty. */
export function percentileOf(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (value: number | null) => (value === null ? null : Math.round(value * 10) / 10);

/** Everything a run counts: per endpoint latencies and errors, confirmations, and a 10 s series. */
export class Measurements {
  readonly latencies = new Map<Endpoint, number[]>(ENDPOINTS.map((e) => [e, []]));
  readonly errorsByEndpoint = new Map<Endpoint, number>(ENDPOINTS.map((e) => [e, 0]));
  readonly errorsByKind = new Map<ErrorKind, number>(ERROR_KINDS.map((k) => [k, 0]));
  /** Time from protect to confirmed (ms) per polled iteration; null = not confirmed within 60 s. */
  readonly confirmations: (number | null)[] = [];
  readonly series: SeriesPoint[] = [];
  #window = { requests: 0, errors: 0, rateLimited: 0, latencies: [] as number[] };

  constructor(readonly startedAt: number) {}

  record(outcome: Outcome): void {
    this.latencies.get(outcome.endpoint)!.push(outcome.ms);
    this.#window.requests += 1;
    this.#window.latencies.push(outcome.ms);
    if (outcome.error) {
      this.errorsByEndpoint.set(outcome.endpoint, this.errorsByEndpoint.get(outcome.endpoint)! + 1);
      this.errorsByKind.set(outcome.error.kind, this.errorsByKind.get(outcome.error.kind)! + 1);
      this.#window.errors += 1;
      if (outcome.error.kind === "http_429") this.#window.rateLimited += 1;
    }
  }

  confirmation(ms: number | null): void {
    this.confirmations.push(ms);
  }

  /** Closes the current window of the series (every 10 s, and once at the end). */
  closeWindow(now: number, activeUsers: number): SeriesPoint {
    const previous = this.series.at(-1)?.t ?? 0;
    const t = Math.round((now - this.startedAt) / 100) / 10;
    const seconds = Math.max(t - previous, 0.001);
    const point: SeriesPoint = {
      t,
      at: new Date(now).toISOString(),
      activeUsers,
      requests: this.#window.requests,
      errors: this.#window.errors,
      rateLimited: this.#window.rateLimited,
      rps: Math.round((this.#window.requests / seconds) * 10) / 10,
      p50: round(percentileOf(this.#window.latencies, 50)),
      p95: round(percentileOf(this.#window.latencies, 95)),
    };
    this.series.push(point);
    this.#window = { requests: 0, errors: 0, rateLimited: 0, latencies: [] };
    return point;
  }

  get requests(): number {
    return [...this.latencies.values()].reduce((sum, list) => sum + list.length, 0);
  }

  get errors(): number {
    return [...this.errorsByEndpoint.values()].reduce((sum, n) => sum + n, 0);
  }

  percentile(p: number, endpoint?: string): number | null {
    const values = endpoint === undefined ? [...this.latencies.values()].flat() : this.latencies.get(endpoint as Endpoint);
    return values ? round(percentileOf(values, p)) : null;
  }

  endpointSummary() {
    return Object.fromEntries(
      ENDPOINTS.map((endpoint) => {
        const values = this.latencies.get(endpoint)!;
        return [
          endpoint,
          {
            count: values.length,
            errors: this.errorsByEndpoint.get(endpoint)!,
            p50: round(percentileOf(values, 50)),
            p95: round(percentileOf(values, 95)),
            p99: round(percentileOf(values, 99)),
          },
        ];
      }),
    );
  }

  confirmationSummary() {
    const confirmed = this.confirmations.filter((ms): ms is number => ms !== null);
    return {
      polled: this.confirmations.length,
      confirmed: confirmed.length,
      ratio: this.confirmations.length === 0 ? null : confirmed.length / this.confirmations.length,
      p50: round(percentileOf(confirmed, 50)),
      // An unconfirmed iteration counts as the whole wait (60 s): slower than any confirmed one.
      p95: round(
        percentileOf(
          this.confirmations.map((ms) => ms ?? CONFIRM_WAIT_MS),
          95,
        ),
      ),
    };
  }
}
