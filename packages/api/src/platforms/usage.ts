import { type Kysely, sql } from "kysely";
import { GroupCommit } from "../db/group-commit.js";
import type { Database } from "../db/schema.js";

export interface UsageCall {
  platformId: string;
  /** The route template (`/api/v1/broker/content/:hash`), or `unmatched`. */
  endpoint: string;
  method: string;
  status: number;
  durationMs: number;
}

const HOUR = 3600_000;

/** Every platform-key call, counted per platform, UTC hour, route template and method. */
export class UsageLog {
  constructor(private readonly db: Kysely<Database>) {}

  /** Counts one call; concurrent calls are written together (see GroupCommit). */
  async record(call: UsageCall, now = new Date()): Promise<void> {
    await this.#groups.submit({ ...call, hour: new Date(Math.floor(now.getTime() / HOUR) * HOUR) });
  }

  readonly #groups = new GroupCommit<UsageCall & { hour: Date }, void>(async (calls) => {
    // One row per platform, hour, endpoint and method: a statement may not update a row twice.
    const rows = new Map<
      string,
      { platformId: string; hour: Date; endpoint: string; method: string; requests: number; successes: number; totalMs: number }
    >();
    for (const call of calls) {
      const key = [call.platformId, call.hour.getTime(), call.endpoint, call.method].join(" ");
      const row = rows.get(key) ?? {
        platformId: call.platformId,
        hour: call.hour,
        endpoint: call.endpoint,
        method: call.method,
        requests: 0,
        successes: 0,
        totalMs: 0,
      };
      row.requests += 1;
      row.successes += call.status < 400 ? 1 : 0;
      row.totalMs += call.durationMs;
      rows.set(key, row);
    }
    const values = [...rows.values()].map(
      (r) =>
        sql`(${r.platformId}, ${r.hour}, ${r.endpoint}, ${r.method}, ${r.requests}, ${r.successes}, ${r.requests - r.successes}, ${r.totalMs})`,
    );
    await sql`
      insert into platform_usage (platform_id, hour, endpoint, method, requests, successes, errors, total_ms)
      values ${sql.join(values)}
      on conflict (platform_id, hour, endpoint, method) do update set
        requests = platform_usage.requests + excluded.requests,
        successes = platform_usage.successes + excluded.successes,
        errors = platform_usage.errors + excluded.errors,
        total_ms = platform_usage.total_ms + excluded.total_ms`.execute(this.db);
    return calls.map(() => undefined);
  });

  /** Summary and per endpoint, method and hour, for hours starting in [start, end). */
  async report(platformId: string, start: Date, end: Date) {
    const rows = await this.db
      .selectFrom("platform_usage")
      .selectAll()
      .where("platform_id", "=", platformId)
      .where("hour", ">=", start)
      .where("hour", "<", end)
      .orderBy("hour")
      .orderBy("endpoint")
      .orderBy("method")
      .execute();
    const figures = (requests: number, successes: number, errors: number, totalMs: number) => ({
      total_requests: requests,
      total_success: successes,
      total_errors: errors,
      avg_response_time: requests === 0 ? 0 : Math.round((totalMs / requests) * 10) / 10,
    });
    const sum = (pick: (row: (typeof rows)[number]) => number) => rows.reduce((total, row) => total + Number(pick(row)), 0);
    return {
      summary: figures(
        sum((r) => r.requests),
        sum((r) => r.successes),
        sum((r) => r.errors),
        sum((r) => r.total_ms),
      ),
      usage: rows.map((row) => ({
        endpoint: row.endpoint,
        method: row.method,
        hour: new Date(row.hour).toISOString(),
        ...figures(Number(row.requests), Number(row.successes), Number(row.errors), Number(row.total_ms)),
      })),
    };
  }
}
