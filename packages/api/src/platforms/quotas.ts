import { type Kysely, sql } from "kysely";
import { GroupCommit } from "../db/group-commit.js";
import type { Database } from "../db/schema.js";
import { ApiError } from "../http/errors.js";

export interface QuotaWindow {
  limit: number;
  remaining: number;
  reset: Date;
}

export interface QuotaState {
  hourly: QuotaWindow;
  daily: QuotaWindow;
}

/** What one admitted request took, so a refusal further on can give it back. */
export interface QuotaCharge {
  platformId: string;
  units: number;
  hourStart: Date;
  dayStart: Date;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const hourStart = (now: Date) => new Date(Math.floor(now.getTime() / HOUR) * HOUR);
const dayStart = (now: Date) => new Date(Math.floor(now.getTime() / DAY) * DAY);

/** What both windows have used after a charge. */
type Used = { hour: number; day: number };

/** Thrown inside the charging transaction to undo the hour's count when the day is spent. */
class DayExhausted extends Error {}

/**
 * Platform quotas per UTC hour and day (api.md §4), counted in the database so every API
 * instance shares them on either storage path: one conditional upsert per window in one
 * transaction, so concurrent requests never overshoot and a refused one counts nowhere.
 * (Redis would be faster, but falls back to per-instance memory when it is down; a quota
 * is part of a platform's contract, so it is counted where the keys live.)
 */
export class Quotas {
  #lastCleanup = 0;

  constructor(private readonly db: Kysely<Database>) {}

  /** Takes `units` from both windows, or nothing when either would go over its limit. */
  async consume(
    platformId: string,
    limits: { hourly: number; daily: number },
    units: number,
    now = new Date(),
  ): Promise<{ allowed: boolean; state: QuotaState; charge?: QuotaCharge }> {
    const charge: QuotaCharge = { platformId, units, hourStart: hourStart(now), dayStart: dayStart(now) };
    const used = units <= limits.hourly && units <= limits.daily ? await this.#groupFor(charge, limits).submit(charge) : undefined;
    void this.cleanup(now);
    if (used) return { allowed: true, state: this.stateOf(charge, limits, used), charge };
    return { allowed: false, state: await this.peek(platformId, limits, now) };
  }

  /** Concurrent requests of one platform in one window are charged together (see GroupCommit). */
  readonly #groups = new Map<string, GroupCommit<QuotaCharge, Used | undefined>>();

  #groupFor(charge: QuotaCharge, limits: { hourly: number; daily: number }): GroupCommit<QuotaCharge, Used | undefined> {
    const key = `${charge.platformId} ${charge.hourStart.getTime()} ${limits.hourly} ${limits.daily}`;
    let group = this.#groups.get(key);
    if (!group) {
      if (this.#groups.size > 1000) this.#groups.clear(); // past hours' groups; an idle group holds nothing
      group = new GroupCommit((charges) => this.#chargeAll(charges, limits));
      this.#groups.set(key, group);
    }
    return group;
  }

  /** All charges in one transaction when together they fit; else one by one, so each gets its own answer. */
  async #chargeAll(charges: QuotaCharge[], limits: { hourly: number; daily: number }): Promise<(Used | undefined)[]> {
    if (charges.length > 1) {
      const total = charges.reduce((sum, c) => sum + c.units, 0);
      const used = await this.#charge({ ...charges[0], units: total }, limits);
      if (used) {
        let hour = used.hour - total;
        let day = used.day - total;
        return charges.map((c) => {
          hour += c.units;
          day += c.units;
          return { hour, day };
        });
      }
    }
    const results: (Used | undefined)[] = [];
    for (const charge of charges) results.push(await this.#charge(charge, limits));
    return results;
  }

  async #charge(charge: QuotaCharge, limits: { hourly: number; daily: number }): Promise<Used | undefined> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const hour = await this.increment(trx, charge, "hour", limits.hourly);
        if (hour === undefined) return undefined;
        const day = await this.increment(trx, charge, "day", limits.daily);
        if (day === undefined) throw new DayExhausted();
        return { hour, day };
      });
    } catch (error) {
      if (error instanceof DayExhausted) return undefined;
      throw error;
    }
  }

  /** Gives back what a request took (it was refused after admission). */
  async refund(charge: QuotaCharge): Promise<void> {
    for (const [period, start] of [
      ["hour", charge.hourStart],
      ["day", charge.dayStart],
    ] as const) {
      await this.db
        .updateTable("platform_quota_counters")
        .set((eb) => ({ used: sql<number>`greatest(${eb.ref("used")} - ${charge.units}, 0)` }))
        .where("platform_id", "=", charge.platformId)
        .where("period", "=", period)
        .where("period_start", "=", start)
        .execute();
    }
  }

  /** The windows as they stand, without taking anything. */
  async peek(platformId: string, limits: { hourly: number; daily: number }, now = new Date()): Promise<QuotaState> {
    const starts = { hourStart: hourStart(now), dayStart: dayStart(now) };
    const rows = await this.db
      .selectFrom("platform_quota_counters")
      .select(["period", "used"])
      .where("platform_id", "=", platformId)
      .where((eb) =>
        eb.or([
          eb.and([eb("period", "=", "hour"), eb("period_start", "=", starts.hourStart)]),
          eb.and([eb("period", "=", "day"), eb("period_start", "=", starts.dayStart)]),
        ]),
      )
      .execute();
    const used = (period: string) => rows.find((r) => r.period === period)?.used ?? 0;
    return this.stateOf(starts, limits, { hour: used("hour"), day: used("day") });
  }

  private async increment(trx: Kysely<Database>, charge: QuotaCharge, period: "hour" | "day", limit: number): Promise<number | undefined> {
    const start = period === "hour" ? charge.hourStart : charge.dayStart;
    const result = await sql<{ used: number }>`
      insert into platform_quota_counters (platform_id, period, period_start, used)
      values (${charge.platformId}, ${period}, ${start}, ${charge.units})
      on conflict (platform_id, period, period_start)
      do update set used = platform_quota_counters.used + excluded.used
      where platform_quota_counters.used + excluded.used <= ${limit}
      returning used`.execute(trx);
    return result.rows[0]?.used;
  }

  private stateOf(
    starts: { hourStart: Date; dayStart: Date },
    limits: { hourly: number; daily: number },
    used: { hour: number; day: number },
  ): QuotaState {
    return {
      hourly: {
        limit: limits.hourly,
        remaining: Math.max(limits.hourly - used.hour, 0),
        reset: new Date(starts.hourStart.getTime() + HOUR),
      },
      daily: { limit: limits.daily, remaining: Math.max(limits.daily - used.day, 0), reset: new Date(starts.dayStart.getTime() + DAY) },
    };
  }

  /** Counters of past windows are of no use after a day; dropped at most once an hour per instance. */
  private async cleanup(now: Date): Promise<void> {
    if (now.getTime() - this.#lastCleanup < HOUR) return;
    this.#lastCleanup = now.getTime();
    await this.db
      .deleteFrom("platform_quota_counters")
      .where("period_start", "<", new Date(dayStart(now).getTime() - DAY))
      .execute()
      .catch(() => {});
  }
}

/** The quota headers of api.md §4 (resets as ISO times). */
export function quotaHeaders(state: QuotaState): Record<string, string> {
  return {
    "X-RateLimit-Limit-Hourly": String(state.hourly.limit),
    "X-RateLimit-Remaining-Hourly": String(state.hourly.remaining),
    "X-RateLimit-Reset-Hourly": state.hourly.reset.toISOString(),
    "X-RateLimit-Limit-Daily": String(state.daily.limit),
    "X-RateLimit-Remaining-Daily": String(state.daily.remaining),
    "X-RateLimit-Reset-Daily": state.daily.reset.toISOString(),
  };
}

export function quotaObject(state: QuotaState) {
  const window = (w: QuotaWindow) => ({ limit: w.limit, remaining: w.remaining, reset: w.reset.toISOString() });
  return { hourly: window(state.hourly), daily: window(state.daily) };
}

/** 429 QUOTA_EXCEEDED, retrying when the window that ran out resets. */
export function quotaExceeded(state: QuotaState, units: number, now = new Date()): ApiError {
  const spent = [state.hourly, state.daily].filter((w) => w.remaining < units);
  const reset = Math.max(...(spent.length > 0 ? spent : [state.hourly]).map((w) => w.reset.getTime()));
  const retryAfter = Math.max(Math.ceil((reset - now.getTime()) / 1000), 1);
  return new ApiError(
    429,
    "QUOTA_EXCEEDED",
    `the platform's ${spent.some((w) => w === state.daily) ? "daily" : "hourly"} quota is spent; retry in ${retryAfter} s`,
    quotaObject(state),
    { ...quotaHeaders(state), "Retry-After": String(retryAfter) },
  );
}
