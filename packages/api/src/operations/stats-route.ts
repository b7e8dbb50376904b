import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type Kysely, sql } from "kysely";
import { Type } from "typebox";
import type { Database } from "../db/schema.js";
import { validationError } from "../http/errors.js";
import type { RotatingSecret } from "../secrets/keyring.js";
import { LATENCY_BOUNDS_MS } from "./minute-stats.js";
import { requireOpsToken } from "./ops-token.js";

export interface StatsRouteOptions {
  db: Kysely<Database>;
  /** API_KEY_SECRET and its predecessor, read at use time (SIGHUP may replace them). */
  opsSecrets: () => RotatingSecret;
  /** Writes this instance's minutes so far (the current one too), so the answer is up to date. */
  flush: () => Promise<void>;
}

const MAX_WINDOW_MS = 31 * 24 * 3600 * 1000;
const BUCKETS = [...LATENCY_BOUNDS_MS.map(String), "+Inf"];

const StatsQuery = Type.Object({
  since: Type.String({ maxLength: 40, description: "ISO 8601 start of the window (inclusive)" }),
  until: Type.Optional(Type.String({ maxLength: 40, description: "ISO 8601 end of the window (exclusive), default now" })),
  include_test: Type.Optional(Type.Boolean({ description: "count load-test and smoke traffic too" })),
});

interface Minute {
  minute: string;
  /** Instances that wrote this minute, and how many of them were serving. */
  instances: number;
  healthyInstances: number;
  requests: number;
  statuses: Record<string, number>;
  byClass: { "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  latencyBuckets: number[];
  latencySumMs: number;
  maxInFlight: number;
  outboxPending: number | null;
}

/**
 * `GET /internal/ops/stats` (ops.md §9, §13): the minute statistics of every instance over a
 * window, summed per minute, with the database's registration and account counts: what
 * `daon report` fills the launch report from. Test traffic is left out unless asked for.
 */
export const statsRoute: FastifyPluginAsyncTypebox<StatsRouteOptions> = async (app, options) => {
  const { db } = options;
  app.addHook("onRequest", async (request) => requireOpsToken(request, options.opsSecrets()));

  app.get(
    "/internal/ops/stats",
    {
      config: { rateLimit: false },
      schema: { hide: true, tags: ["operations"], summary: "Minute statistics over a window", querystring: StatsQuery },
    },
    async (request) => {
      const since = new Date(request.query.since);
      const until = request.query.until === undefined ? new Date() : new Date(request.query.until);
      const problems = [];
      if (Number.isNaN(since.getTime())) problems.push({ field: "querystring.since", message: "must be an ISO 8601 time" });
      if (Number.isNaN(until.getTime())) problems.push({ field: "querystring.until", message: "must be an ISO 8601 time" });
      else if (until <= since) problems.push({ field: "querystring.until", message: "must be after since" });
      else if (until.getTime() - since.getTime() > MAX_WINDOW_MS)
        problems.push({ field: "querystring.until", message: "the window is at most 31 days" });
      if (problems.length > 0) throw validationError(problems);
      const includeTest = request.query.include_test === true;
      await options.flush();

      const rows = await db
        .selectFrom("api_minute_stats")
        .selectAll()
        .where("minute", ">=", since)
        .where("minute", "<", until)
        .orderBy("minute")
        .execute();

      const minutes = new Map<number, Minute & { seen: Set<string>; healthySeen: Set<string> }>();
      const instances = new Set<string>();
      let testRequests = 0;
      for (const row of rows) {
        const at = new Date(row.minute).getTime();
        instances.add(row.instance);
        let minute = minutes.get(at);
        if (!minute) {
          minute = {
            minute: new Date(at).toISOString(),
            instances: 0,
            healthyInstances: 0,
            requests: 0,
            statuses: {},
            byClass: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
            latencyBuckets: Array(BUCKETS.length).fill(0),
            latencySumMs: 0,
            maxInFlight: 0,
            outboxPending: null,
            seen: new Set(),
            healthySeen: new Set(),
          };
          minutes.set(at, minute);
        }
        minute.seen.add(row.instance);
        if (row.healthy) minute.healthySeen.add(row.instance);
        if (row.outbox_pending !== null) minute.outboxPending = Math.max(minute.outboxPending ?? 0, row.outbox_pending);
        if (row.traffic === "test") {
          testRequests += row.requests;
          if (!includeTest) continue;
        }
        minute.requests += row.requests;
        for (const [status, n] of Object.entries(row.statuses)) minute.statuses[status] = (minute.statuses[status] ?? 0) + n;
        minute.byClass["2xx"] += row.status_2xx;
        minute.byClass["3xx"] += row.status_3xx;
        minute.byClass["4xx"] += row.status_4xx;
        minute.byClass["5xx"] += row.status_5xx;
        BUCKETS.forEach((name, i) => {
          minute.latencyBuckets[i] += row.latency_buckets[name] ?? 0;
        });
        minute.latencySumMs += Number(row.latency_sum_ms);
        // Instances serve side by side: their peaks add up (an upper bound of the minute's peak).
        minute.maxInFlight += row.max_in_flight;
      }

      const [registrations, accounts, testOnlyHeights] = await Promise.all([
        registrationCounts(db, since, until),
        accountCount(db, since, until),
        includeTest ? [] : testOnlyHeightsIn(db, since, until),
      ]);
      return {
        success: true,
        since: since.toISOString(),
        until: until.toISOString(),
        includeTestTraffic: includeTest,
        instances: [...instances].sort(),
        latencyBoundsMs: [...LATENCY_BOUNDS_MS],
        minutes: [...minutes.values()].map(({ seen, healthySeen, ...minute }) => ({
          ...minute,
          instances: seen.size,
          healthyInstances: healthySeen.size,
          latencySumMs: Math.round(minute.latencySumMs * 1000) / 1000,
        })),
        testTraffic: { requests: testRequests },
        registrations,
        accounts,
        // Blocks whose registrations are all test traffic: the report leaves their registration txs out.
        ledger: { testOnlyHeights },
      };
    },
  );
};

/** Registrations accepted in the window: real ones, and test ones (tagged) apart. */
async function registrationCounts(db: Kysely<Database>, since: Date, until: Date) {
  const row = await db
    .selectFrom("registrations")
    .select((eb) => [
      eb.fn.count<string>("content_hash").filterWhere("source", "is", null).as("live"),
      eb.fn.count<string>("content_hash").filterWhere("source", "is not", null).as("test"),
      eb.fn
        .count<string>("content_hash")
        .filterWhere((w) => w.and([w("source", "is", null), w("status", "=", "confirmed")]))
        .as("liveConfirmed"),
    ])
    .where("created_at", ">=", since)
    .where("created_at", "<", until)
    .executeTakeFirstOrThrow();
  return { created: Number(row.live), confirmed: Number(row.liveConfirmed), test: Number(row.test) };
}

/** Heights (by block time in the window) at which only test registrations were confirmed. */
async function testOnlyHeightsIn(db: Kysely<Database>, since: Date, until: Date): Promise<number[]> {
  const rows = await db
    .selectFrom("registrations")
    .select("block_height")
    .where("block_time", ">=", since)
    .where("block_time", "<", until)
    .where("block_height", "is not", null)
    .groupBy("block_height")
    .having((eb) => eb.fn.count("content_hash").filterWhere("source", "is", null), "=", 0)
    .orderBy("block_height")
    .execute();
  return rows.map((row) => Number(row.block_height));
}

/** Accounts made in the window; 0 while this deployment has no accounts table yet. */
async function accountCount(db: Kysely<Database>, since: Date, until: Date): Promise<{ created: number } | { error: string }> {
  try {
    const exists = await sql<{ name: string | null }>`select to_regclass('accounts')::text as name`.execute(db);
    if (!exists.rows[0]?.name) return { created: 0 };
    const counted = await sql<{
      n: string;
    }>`select count(*)::text as n from accounts where created_at >= ${since} and created_at < ${until}`.execute(db);
    return { created: Number(counted.rows[0].n) };
  } catch (error) {
    return { error: (error as Error).message.slice(0, 200) };
  }
}
