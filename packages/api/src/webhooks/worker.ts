import { randomBytes } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../db/schema.js";
import type { Sealer } from "../secrets/sealing.js";
import type { AttemptOutcome, WebhookSender } from "./attempt.js";
import type { DeliveryStatus } from "./tables.js";

/** Longest wait before a retry (api.md §5). */
const MAX_RETRY_DELAY_MS = 6 * 3600 * 1000;
const JITTER = 0.2;
const BACKLOG_REFRESH_MS = 5000;
/** Finished attempts wait this long at most to be recorded together with others (one transaction for many). */
const RECORD_LINGER_MS = 25;

/** The metrics the worker feeds (observability/metrics.ts). */
export interface WebhookMetrics {
  webhookDeliveries: { inc(labels: { result: "success" | "failure" | "dead" }, value?: number): void };
  webhookBacklog: { set(value: number): void };
}

export interface WebhookWorkerOptions {
  db: Kysely<Database>;
  sender: WebhookSender;
  /** Opens webhook secrets; asked at each attempt, so a key reload takes effect at once. */
  sealer: () => Sealer;
  log: Logger;
  /** WEBHOOK_TIMEOUT_MS: a claim outlives an attempt by this much and a margin. */
  timeoutMs: number;
  metrics?: WebhookMetrics;
  /** Attempts in flight at most (per instance). */
  concurrency?: number;
  /** How often an idle worker looks for due deliveries. */
  pollMs?: number;
  /** Multiplies retry delays: tests shrink the minimum 10 s to milliseconds. */
  retryScale?: number;
  /** The jitter's randomness, in [0, 1). */
  random?: () => number;
}

interface ClaimedDelivery {
  id: string;
  webhook_id: string;
  event: string;
  payload: string;
  failures: number;
  url: string;
  secret_sealed: string;
  custom_headers: Record<string, string> | string;
  max_retries: number;
  retry_delay_seconds: number;
}

/** Delay before retry n (1-based): `retryDelaySeconds × 2^(n−1)`, ±20 % jitter, at most 6 h. */
export function retryDelayMs(retryDelaySeconds: number, retry: number, random: () => number = Math.random): number {
  const base = retryDelaySeconds * 1000 * 2 ** (retry - 1);
  return Math.min(MAX_RETRY_DELAY_MS, Math.round(base * (1 - JITTER + 2 * JITTER * random())));
}

/**
 * Delivers the webhook outbox, at least once. Each attempt is claimed first (a lease on the
 * row, taken with `FOR UPDATE SKIP LOCKED`), so across instances one worker makes it; a
 * worker killed mid-attempt leaves a claim that expires and another attempt follows with
 * the same delivery id. Deliveries of suspended platforms and disabled webhooks wait.
 */
export class WebhookWorker {
  readonly instance = `w_${randomBytes(6).toString("hex")}`;
  #stopped = true;
  #loop: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Finished attempts not yet recorded: written in batches, one transaction each. */
  #finished: FinishedAttempt[] = [];
  #firstFinishedAt = 0;
  #wake: (() => void) | undefined;
  #woken = false;
  #backlogAt = 0;
  lastError: string | undefined;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly retryScale: number;
  private readonly random: () => number;
  private readonly leaseMs: number;

  constructor(private readonly options: WebhookWorkerOptions) {
    this.concurrency = options.concurrency ?? 16;
    this.pollMs = options.pollMs ?? 500;
    this.retryScale = options.retryScale ?? 1;
    this.random = options.random ?? Math.random;
    // Longer than an attempt can take (its lookup and request together end by the timeout), with room to record it.
    this.leaseMs = options.timeoutMs + 5000;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /** Stops claiming and waits for the attempts in flight to finish and be recorded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.nudge();
    await this.#loop;
  }

  /** Looks for due deliveries now instead of at the next poll (after a redelivery, say). */
  nudge(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const half = Math.ceil(this.concurrency / 2);
    while (!this.#stopped) {
      const waited = Date.now() - this.#firstFinishedAt;
      if (this.#finished.length >= half || (this.#finished.length > 0 && (this.#inFlight.size === 0 || waited >= RECORD_LINGER_MS))) {
        await this.#recordFinished();
      }
      const free = this.concurrency - this.#inFlight.size;
      // One claim fills many slots: claim when half are free, or when idle.
      if (free > 0 && (free >= half || this.#inFlight.size === 0)) {
        try {
          for (const delivery of await this.#claim(free, new Date())) this.#begin(delivery);
          await this.#refreshBacklog();
          this.lastError = undefined;
        } catch (error) {
          this.lastError = (error as Error).message;
          this.options.log.warn({ err: error }, "webhook worker could not claim deliveries; retrying");
        }
      }
      if (this.#stopped) break;
      const linger = this.#finished.length > 0 ? Math.max(1, RECORD_LINGER_MS - (Date.now() - this.#firstFinishedAt)) : this.pollMs;
      await this.#sleep(this.lastError ? 1000 : Math.min(this.pollMs, linger));
    }
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    await this.#recordFinished();
  }

  /** Waits for a poll interval, a finished attempt or a nudge. */
  async #sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    await new Promise<void>((resume) => {
      const timer = setTimeout(resume, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resume();
      };
    });
    this.#wake = undefined;
    this.#woken = false;
  }

  #begin(delivery: ClaimedDelivery): void {
    const attempt: Promise<void> = this.#attempt(delivery)
      .then((finished) => {
        if (this.#finished.length === 0) this.#firstFinishedAt = Date.now();
        this.#finished.push(finished);
      })
      .catch((error) => this.options.log.warn({ err: error, deliveryId: delivery.id }, "webhook attempt failed unexpectedly"))
      .finally(() => {
        this.#inFlight.delete(attempt);
        this.nudge();
      });
    this.#inFlight.add(attempt);
  }

  async #claim(limit: number, now: Date): Promise<ClaimedDelivery[]> {
    const leaseUntil = new Date(now.getTime() + this.leaseMs);
    const result = await sql<ClaimedDelivery>`
      update webhook_deliveries d
      set claimed_until = ${leaseUntil}, claimed_by = ${this.instance}
      from webhooks w
      where w.id = d.webhook_id
        and d.id in (
          select c.id from webhook_deliveries c
          where c.status in ('pending', 'retrying')
            and c.next_attempt_at <= ${now}
            and (c.claimed_until is null or c.claimed_until < ${now})
            -- A small set (the webhooks that may send now), so the due index is read in order and only until the limit.
            and c.webhook_id in (
              select cw.id from webhooks cw
              where cw.enabled
                and not exists (select 1 from platforms p where p.id = cw.platform_id and p.certification_status = 'suspended')
            )
          order by c.next_attempt_at
          limit ${limit}
          for update of c skip locked
        )
      returning d.id, d.webhook_id, d.event, d.payload, d.failures,
        w.url, w.secret_sealed, w.custom_headers, w.max_retries, w.retry_delay_seconds`.execute(this.options.db);
    return result.rows;
  }

  async #attempt(delivery: ClaimedDelivery): Promise<FinishedAttempt> {
    const attemptedAt = new Date();
    let secret: string | undefined;
    try {
      secret = this.options.sealer().open(delivery.secret_sealed);
    } catch {
      secret = undefined;
    }
    if (secret === undefined) {
      const outcome = { success: false, refused: false, statusCode: null, error: "the webhook's secret cannot be opened", durationMs: 0 };
      return { delivery, outcome, attemptedAt };
    }
    const headers = typeof delivery.custom_headers === "string" ? JSON.parse(delivery.custom_headers) : delivery.custom_headers;
    const outcome = await this.options.sender.send(
      { url: delivery.url, secret, deliveryId: delivery.id, event: delivery.event, body: delivery.payload, customHeaders: headers ?? {} },
      attemptedAt,
    );
    return { delivery, outcome, attemptedAt };
  }

  /**
   * Writes finished attempts in one transaction: each delivery's new state (only while this
   * worker still holds its claim), the attempt log, the webhooks' last_triggered_at. When the
   * database is unreachable they are kept for the next try; the claims expire meanwhile, so
   * at worst an attempt is made again.
   */
  async #recordFinished(): Promise<void> {
    if (this.#finished.length === 0) return;
    const batch = this.#finished.splice(0, 500);
    const now = new Date();
    const rows = batch.map(({ delivery, outcome, attemptedAt }) => {
      const failures = outcome.success ? delivery.failures : delivery.failures + 1;
      const dead = !outcome.success && (outcome.refused || failures > delivery.max_retries);
      const status: DeliveryStatus = outcome.success ? "success" : dead ? "dead" : "retrying";
      const nextAttemptAt =
        status === "retrying"
          ? new Date(now.getTime() + retryDelayMs(delivery.retry_delay_seconds, failures, this.random) * this.retryScale)
          : now;
      return { delivery, outcome, attemptedAt, failures, status, nextAttemptAt };
    });
    let recorded: Set<string>;
    try {
      recorded = await this.options.db.transaction().execute(async (trx) => {
        const values = rows.map(
          (r) =>
            sql`(${r.delivery.id}, ${r.status}, ${r.failures}::integer, ${r.nextAttemptAt.toISOString()}::timestamptz, ${r.attemptedAt.toISOString()}::timestamptz, ${r.outcome.statusCode}::integer, ${r.outcome.error}::text, ${r.status === "success" || r.status === "dead" ? now.toISOString() : null}::timestamptz)`,
        );
        const updated = await sql<{ id: string }>`
          update webhook_deliveries as d set
            status = v.status, attempts = d.attempts + 1, failures = v.failures, next_attempt_at = v.next_attempt_at,
            claimed_until = null, claimed_by = null, last_attempt_at = v.attempted_at, last_status_code = v.status_code,
            last_error = v.error, finished_at = v.finished_at
          from (values ${sql.join(values)}) as v(id, status, failures, next_attempt_at, attempted_at, status_code, error, finished_at)
          where d.id = v.id and d.claimed_by = ${this.instance}
          returning d.id`.execute(trx);
        // A claim lost (the webhook deleted, or the lease ran out and another worker took over) records nothing.
        const ids = new Set(updated.rows.map((row) => row.id));
        const mine = rows.filter((r) => ids.has(r.delivery.id));
        if (mine.length > 0) {
          await trx
            .insertInto("webhook_attempts")
            .values(
              mine.map((r) => ({
                delivery_id: r.delivery.id,
                webhook_id: r.delivery.webhook_id,
                attempted_at: r.attemptedAt,
                status_code: r.outcome.statusCode,
                error: r.outcome.error,
                duration_ms: r.outcome.durationMs,
                success: r.outcome.success,
              })),
            )
            .execute();
        }
        const triggered = [...new Set(mine.filter((r) => r.outcome.success).map((r) => r.delivery.webhook_id))];
        if (triggered.length > 0) await trx.updateTable("webhooks").set({ last_triggered_at: now }).where("id", "in", triggered).execute();
        return ids;
      });
    } catch (error) {
      this.#finished.unshift(...batch);
      this.lastError = (error as Error).message;
      this.options.log.warn({ err: error }, "webhook attempts could not be recorded; retrying");
      if (this.#stopped) this.#finished = []; // stopping: the claims expire and the attempts are made again
      return;
    }
    for (const r of rows) {
      if (!recorded.has(r.delivery.id)) continue;
      this.options.metrics?.webhookDeliveries.inc({
        result: r.status === "success" ? "success" : r.status === "dead" ? "dead" : "failure",
      });
      if (r.status === "dead") {
        this.options.log.warn(
          { deliveryId: r.delivery.id, webhookId: r.delivery.webhook_id, error: r.outcome.error },
          "webhook delivery dead",
        );
      }
    }
    if (this.#finished.length > 0) await this.#recordFinished();
  }

  async #refreshBacklog(): Promise<void> {
    if (!this.options.metrics || Date.now() - this.#backlogAt < BACKLOG_REFRESH_MS) return;
    this.#backlogAt = Date.now();
    this.options.metrics.webhookBacklog.set((await webhookBacklog(this.options.db)).backlog);
  }
}

interface FinishedAttempt {
  delivery: ClaimedDelivery;
  outcome: AttemptOutcome;
  attemptedAt: Date;
}

/** What /health and the metrics report: deliveries not yet done, the oldest due one, and dead letters of the last 24 h. */
export async function webhookBacklog(db: Kysely<Database>, now = new Date()) {
  const row = await db
    .selectFrom("webhook_deliveries")
    .select((eb) => [
      eb.fn.count<string>("id").filterWhere("status", "in", ["pending", "retrying"]).as("backlog"),
      eb.fn
        .count<string>("id")
        .filterWhere((f) => f.and([f("status", "=", "dead"), f("finished_at", ">=", new Date(now.getTime() - 24 * 3600 * 1000))]))
        .as("dead24h"),
      // Deliveries that wait on purpose (a disabled webhook, a suspended platform) are not late.
      eb.fn
        .min("next_attempt_at")
        .filterWhere((f) =>
          f.and([
            f("status", "in", ["pending", "retrying"]),
            f("next_attempt_at", "<=", now),
            f(
              "webhook_id",
              "in",
              f
                .selectFrom("webhooks")
                .select("webhooks.id")
                .where("webhooks.enabled", "=", true)
                .where(({ not, exists, selectFrom }) =>
                  not(
                    exists(
                      selectFrom("platforms")
                        .select("platforms.id")
                        .whereRef("platforms.id", "=", "webhooks.platform_id")
                        .where("platforms.certification_status", "=", "suspended"),
                    ),
                  ),
                ),
            ),
          ]),
        )
        .as("oldest_due"),
    ])
    .where((eb) =>
      eb.or([
        eb("status", "in", ["pending", "retrying"]),
        eb.and([eb("status", "=", "dead"), eb("finished_at", ">=", new Date(now.getTime() - 24 * 3600 * 1000))]),
      ]),
    )
    .executeTakeFirstOrThrow();
  const oldestDue = row.oldest_due ? new Date(row.oldest_due as Date) : null;
  return {
    backlog: Number(row.backlog),
    deadLetters24h: Number(row.dead24h),
    oldestDueSeconds: oldestDue ? Math.max(0, Math.round((now.getTime() - oldestDue.getTime()) / 1000)) : 0,
  };
}
