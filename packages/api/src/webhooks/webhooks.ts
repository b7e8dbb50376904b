import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../db/schema.js";
import type { Sealer } from "../secrets/sealing.js";
import { WebhookSender } from "./attempt.js";
import { DestinationPolicy } from "./destinations.js";
import type { WebhookRoutesOptions } from "./routes.js";
import { WebhookStore } from "./webhook-store.js";
import { type WebhookMetrics, WebhookWorker, webhookBacklog } from "./worker.js";

export interface WebhooksSettings {
  WEBHOOK_ALLOW_HTTP: boolean;
  WEBHOOK_ALLOWED_CIDRS: string;
  WEBHOOK_TIMEOUT_MS: number;
}

/** Waiting this long for a due delivery means webhooks are failing (ops.md §3 webhooks.delivery). */
const STUCK_SECONDS = 15 * 60;

/** The webhooks concept as the API service wires it: routes' dependencies, the delivery worker, the health check. */
export class Webhooks {
  readonly store: WebhookStore;
  readonly policy: DestinationPolicy;
  readonly sender: WebhookSender;
  readonly worker: WebhookWorker;

  constructor(
    private readonly db: Kysely<Database>,
    settings: WebhooksSettings,
    private readonly sealer: () => Sealer,
    log: Logger,
    metrics?: WebhookMetrics,
    workerOptions: { retryScale?: number; pollMs?: number; concurrency?: number } = {},
  ) {
    // Every result's series exists from the start, so dashboards and alert rules see them at 0.
    for (const result of ["success", "failure", "dead"] as const) metrics?.webhookDeliveries.inc({ result }, 0);
    this.store = new WebhookStore(db);
    this.policy = new DestinationPolicy(settings.WEBHOOK_ALLOWED_CIDRS, settings.WEBHOOK_ALLOW_HTTP);
    this.sender = new WebhookSender(this.policy, settings.WEBHOOK_TIMEOUT_MS);
    this.worker = new WebhookWorker({
      db,
      sender: this.sender,
      sealer,
      log,
      metrics,
      timeoutMs: settings.WEBHOOK_TIMEOUT_MS,
      ...workerOptions,
    });
  }

  get routes(): WebhookRoutesOptions {
    return { store: this.store, policy: this.policy, sender: this.sender, sealer: this.sealer, worker: this.worker };
  }

  start(): void {
    this.worker.start();
  }

  /** Finishes the attempts in flight, then closes the connections. */
  async stop(): Promise<void> {
    await this.worker.stop();
    await this.sender.close();
  }

  /** /health's `checks.webhooks`: not_configured without webhooks, degraded while deliveries are stuck. */
  async health(): Promise<{ status: "up" | "degraded" | "not_configured"; backlog: number; deadLetters24h: number }> {
    const [backlog, any] = await Promise.all([
      webhookBacklog(this.db),
      this.db.selectFrom("webhooks").select("id").limit(1).executeTakeFirst(),
    ]);
    const status =
      !any && backlog.backlog === 0
        ? "not_configured"
        : backlog.oldestDueSeconds > STUCK_SECONDS || this.worker.lastError
          ? "degraded"
          : "up";
    return { status, backlog: backlog.backlog, deadLetters24h: backlog.deadLetters24h };
  }
}
