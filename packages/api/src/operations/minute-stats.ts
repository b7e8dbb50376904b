import type { Insertable, Kysely, Selectable } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../db/schema.js";
import type { HttpApp } from "../http/app.js";
import type { ApiMinuteStatsTable } from "./tables.js";

/** Upper bounds of the latency buckets in ms; 2 s and 5 s are the launch and gate limits (ops.md §4, §13). */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2000, 2500, 5000, 10_000, 30_000] as const;
const BUCKET_NAMES = [...LATENCY_BOUNDS_MS.map(String), "+Inf"];

export type Traffic = "live" | "test";

/** Minutes kept in memory while the database cannot take them (a day). */
const MAX_UNWRITTEN = 1440;
const MINUTE_MS = 60_000;

interface Counts {
  requests: number;
  statuses: Map<number, number>;
  buckets: number[];
  sumMs: number;
  maxInFlight: number;
}

type MinuteRow = Insertable<ApiMinuteStatsTable> & { minute: Date; statuses: string; latency_buckets: string };

export interface MinuteStatsOptions {
  log: Logger;
  /** Whether the instance is serving now (its database answers): the minute's `healthy`. */
  healthy: () => Promise<boolean>;
  outboxPending: () => Promise<number>;
  /** Is this request test traffic (made with a load-test key)? Asked when it starts. */
  isTestTraffic: (request: { testTraffic?: unknown }) => boolean;
}

/** Operators' own requests: health checks, scrapes and `/internal/ops` are not the service's traffic. */
export function isOperationsPath(url: string): boolean {
  const path = url.split("?")[0];
  return path === "/health" || path === "/api/v1/health" || path === "/metrics" || path.startsWith("/internal/");
}

/**
 * Counts what this instance serves, per minute and traffic kind (requests by status, latency
 * buckets, peak requests in flight), and writes one row per minute to `api_minute_stats` as
 * the minute closes and on stop. Minutes the database cannot take are kept and retried.
 */
export class MinuteStats {
  readonly #minutes = new Map<number, Record<Traffic, Counts>>();
  readonly #inFlight: Record<Traffic, number> = { live: 0, test: 0 };
  #unwritten: MinuteRow[] = [];
  #instance = "";
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #stopped = true;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: MinuteStatsOptions,
  ) {}

  /**
   * Counts every request of `app` but the operators' own, refused ones included; add after
   * authentication (which tells test traffic apart) and before the routes.
   */
  observe(app: HttpApp): void {
    app.addHook("onRequest", async (request, reply) => {
      if (isOperationsPath(request.url)) return;
      const kind: Traffic = this.options.isTestTraffic(request) ? "test" : "live";
      this.#inFlight[kind] += 1;
      const counts = this.#counts(Date.now())[kind];
      counts.maxInFlight = Math.max(counts.maxInFlight, this.#inFlight[kind]);
      // "close" comes for answered and abandoned requests alike.
      reply.raw.once("close", () => {
        this.#inFlight[kind] -= 1;
      });
    });
    // Also for requests refused before the hook above ran (a bad credential, a used-up quota).
    app.addHook("onResponse", async (request, reply) => {
      if (isOperationsPath(request.url)) return;
      this.record(this.options.isTestTraffic(request) ? "test" : "live", reply.statusCode, reply.elapsedTime);
    });
  }

  /** Counts one answered request. */
  record(kind: Traffic, status: number, elapsedMs: number, at = Date.now()): void {
    const counts = this.#counts(at)[kind];
    counts.requests += 1;
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1);
    const bucket = LATENCY_BOUNDS_MS.findIndex((bound) => elapsedMs <= bound);
    counts.buckets[bucket === -1 ? LATENCY_BOUNDS_MS.length : bucket] += 1;
    counts.sumMs += elapsedMs;
  }

  /** Starts writing a row per minute for `instance` (host and port: replicas on one host stay apart). */
  start(instance: string): void {
    this.#instance = instance;
    this.#stopped = false;
    this.#counts(Date.now());
    this.#schedule();
  }

  /**
   * Writes every minute so far, the current partial one included (what comes later in that
   * minute is added to its row); waits for the write.
   */
  flush(): Promise<void> {
    return this.#closeMinutes(Number.POSITIVE_INFINITY);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.flush();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const now = Date.now();
    this.#timer = setTimeout(
      () => {
        const current = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
        this.#counts(current);
        this.#closeMinutes(current).finally(() => this.#schedule());
      },
      MINUTE_MS - (now % MINUTE_MS) + 50,
    );
    this.#timer.unref();
  }

  #counts(at: number): Record<Traffic, Counts> {
    const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    let counts = this.#minutes.get(minute);
    if (!counts) {
      // Requests still in flight at the turn of the minute are in flight in the new one too.
      const fresh = (kind: Traffic): Counts => ({
        requests: 0,
        statuses: new Map(),
        buckets: Array(BUCKET_NAMES.length).fill(0),
        sumMs: 0,
        maxInFlight: this.#inFlight[kind],
      });
      counts = { live: fresh("live"), test: fresh("test") };
      this.#minutes.set(minute, counts);
    }
    return counts;
  }

  /** Turns the minutes before `until` into rows and writes them (after any earlier write). */
  #closeMinutes(until: number): Promise<void> {
    this.#flushing = this.#flushing
      .catch(() => {})
      .then(async () => {
        const closing = [...this.#minutes.keys()].filter((minute) => minute < until).sort((a, b) => a - b);
        if (closing.length > 0) {
          const [healthy, outboxPending] = await Promise.all([
            this.options.healthy().catch(() => false),
            this.options.outboxPending().catch(() => null),
          ]);
          for (const minute of closing) {
            const counts = this.#minutes.get(minute)!;
            this.#minutes.delete(minute);
            // A live row for every minute, so quiet minutes still say the instance was up; a test row only when there was some.
            for (const kind of ["live", "test"] as const) {
              if (kind === "test" && counts.test.requests === 0 && counts.test.maxInFlight === 0) continue;
              this.#unwritten.push(this.#row(minute, kind, counts[kind], healthy, outboxPending));
            }
          }
          if (this.#unwritten.length > MAX_UNWRITTEN * 2) this.#unwritten = this.#unwritten.slice(-MAX_UNWRITTEN * 2);
        }
        if (this.#unwritten.length === 0) return;
        try {
          await this.#write(this.#unwritten);
          this.#unwritten = [];
        } catch (error) {
          this.options.log.warn({ err: error, minutes: this.#unwritten.length }, "minute statistics not written yet; retrying next minute");
        }
      });
    return this.#flushing;
  }

  #row(minute: number, kind: Traffic, counts: Counts, healthy: boolean, outboxPending: number | null): MinuteRow {
    let [s2, s3, s4, s5] = [0, 0, 0, 0];
    for (const [status, n] of counts.statuses) {
      if (status >= 500) s5 += n;
      else if (status >= 400) s4 += n;
      else if (status >= 300) s3 += n;
      else s2 += n;
    }
    return {
      instance: this.#instance,
      minute: new Date(minute),
      traffic: kind,
      requests: counts.requests,
      status_2xx: s2,
      status_3xx: s3,
      status_4xx: s4,
      status_5xx: s5,
      statuses: JSON.stringify(Object.fromEntries([...counts.statuses].map(([status, n]) => [String(status), n]))),
      latency_buckets: JSON.stringify(Object.fromEntries(BUCKET_NAMES.map((name, i) => [name, counts.buckets[i]]))),
      latency_sum_ms: Math.round(counts.sumMs * 1000) / 1000,
      max_in_flight: counts.maxInFlight,
      healthy,
      outbox_pending: outboxPending,
    };
  }

  /** Upserts rows, adding to what an earlier run of this instance wrote for the same minute. */
  async #write(rows: MinuteRow[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const row of rows) {
        const earlier = await trx
          .selectFrom("api_minute_stats")
          .selectAll()
          .where("minute", "=", row.minute)
          .where("instance", "=", row.instance)
          .where("traffic", "=", row.traffic)
          .executeTakeFirst();
        const merged = earlier ? merge(earlier, row) : row;
        await trx
          .insertInto("api_minute_stats")
          .values(merged)
          .onConflict((c) =>
            c.columns(["minute", "instance", "traffic"]).doUpdateSet((eb) => ({
              requests: eb.ref("excluded.requests"),
              status_2xx: eb.ref("excluded.status_2xx"),
              status_3xx: eb.ref("excluded.status_3xx"),
              status_4xx: eb.ref("excluded.status_4xx"),
              status_5xx: eb.ref("excluded.status_5xx"),
              statuses: eb.ref("excluded.statuses"),
              latency_buckets: eb.ref("excluded.latency_buckets"),
              latency_sum_ms: eb.ref("excluded.latency_sum_ms"),
              max_in_flight: eb.ref("excluded.max_in_flight"),
              healthy: eb.ref("excluded.healthy"),
              outbox_pending: eb.ref("excluded.outbox_pending"),
            })),
          )
          .execute();
      }
    });
  }
}

function addCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum = { ...a };
  for (const [key, n] of Object.entries(b)) sum[key] = (sum[key] ?? 0) + n;
  return sum;
}

function merge(earlier: Selectable<ApiMinuteStatsTable>, row: MinuteRow): MinuteRow {
  return {
    ...row,
    requests: earlier.requests + row.requests,
    status_2xx: earlier.status_2xx + row.status_2xx,
    status_3xx: earlier.status_3xx + row.status_3xx,
    status_4xx: earlier.status_4xx + row.status_4xx,
    status_5xx: earlier.status_5xx + row.status_5xx,
    statuses: JSON.stringify(addCounts(earlier.statuses, JSON.parse(row.statuses))),
    latency_buckets: JSON.stringify(addCounts(earlier.latency_buckets, JSON.parse(row.latency_buckets))),
    latency_sum_ms: Number(earlier.latency_sum_ms) + row.latency_sum_ms,
    max_in_flight: Math.max(earlier.max_in_flight, row.max_in_flight),
  };
}
