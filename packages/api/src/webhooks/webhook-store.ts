import { type Kysely, sql } from "kysely";
import type { Database } from "../db/schema.js";
import { opaqueId } from "../registrations/registration.js";
import type { DeliveryStatus, WebhookEvent } from "./tables.js";
import type { AttemptRow, DeliveryRow, WebhookRow } from "./webhook.js";

export interface NewWebhook {
  platformId: string;
  url: string;
  events: WebhookEvent[];
  secretSealed: string;
  description: string | null;
  customHeaders: Record<string, string>;
  maxRetries: number;
  retryDelaySeconds: number;
}

export interface WebhookChanges {
  url?: string;
  events?: WebhookEvent[];
  secretSealed?: string;
  description?: string | null;
  customHeaders?: Record<string, string>;
  enabled?: boolean;
  maxRetries?: number;
  retryDelaySeconds?: number;
}

/** A page position: the last item's creation time and id. */
export function encodeCursor(createdAt: Date | string, id: string): string {
  return Buffer.from(`${new Date(createdAt).toISOString()}|${id}`).toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  const [at, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const createdAt = new Date(at);
  return id && !Number.isNaN(createdAt.getTime()) ? { createdAt, id } : undefined;
}

/** Attempts shown per delivery in the log: every retry of one round and a few redeliveries. */
const ATTEMPTS_SHOWN = 25;

/** Webhooks and their deliveries, always scoped to one platform: another platform's are not found. */
export class WebhookStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(webhook: NewWebhook, now = new Date()): Promise<WebhookRow> {
    return this.db
      .insertInto("webhooks")
      .values({
        id: opaqueId("wh"),
        platform_id: webhook.platformId,
        url: webhook.url,
        events: JSON.stringify(webhook.events),
        secret_sealed: webhook.secretSealed,
        description: webhook.description,
        custom_headers: JSON.stringify(webhook.customHeaders),
        enabled: true,
        max_retries: webhook.maxRetries,
        retry_delay_seconds: webhook.retryDelaySeconds,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async list(platformId: string, limit: number, cursor?: { createdAt: Date; id: string }): Promise<WebhookRow[]> {
    let query = this.db.selectFrom("webhooks").selectAll().where("platform_id", "=", platformId);
    if (cursor) {
      query = query.where((eb) =>
        eb.or([eb("created_at", "<", cursor.createdAt), eb.and([eb("created_at", "=", cursor.createdAt), eb("id", "<", cursor.id)])]),
      );
    }
    return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
  }

  async find(platformId: string, id: string): Promise<WebhookRow | undefined> {
    return this.db.selectFrom("webhooks").selectAll().where("id", "=", id).where("platform_id", "=", platformId).executeTakeFirst();
  }

  async update(platformId: string, id: string, changes: WebhookChanges, now = new Date()): Promise<WebhookRow | undefined> {
    return this.db
      .updateTable("webhooks")
      .set({
        updated_at: now,
        ...(changes.url !== undefined ? { url: changes.url } : {}),
        ...(changes.events !== undefined ? { events: JSON.stringify(changes.events) } : {}),
        ...(changes.secretSealed !== undefined ? { secret_sealed: changes.secretSealed } : {}),
        ...(changes.description !== undefined ? { description: changes.description } : {}),
        ...(changes.customHeaders !== undefined ? { custom_headers: JSON.stringify(changes.customHeaders) } : {}),
        ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}),
        ...(changes.maxRetries !== undefined ? { max_retries: changes.maxRetries } : {}),
        ...(changes.retryDelaySeconds !== undefined ? { retry_delay_seconds: changes.retryDelaySeconds } : {}),
      })
      .where("id", "=", id)
      .where("platform_id", "=", platformId)
      .returningAll()
      .executeTakeFirst();
  }

  /** Deletes the webhook with its deliveries and their log. */
  async delete(platformId: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom("webhooks").where("id", "=", id).where("platform_id", "=", platformId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deliveries(
    webhookId: string,
    options: { status?: DeliveryStatus; limit: number; cursor?: { createdAt: Date; id: string } },
  ): Promise<{ delivery: DeliveryRow; attempts: AttemptRow[] }[]> {
    let query = this.db.selectFrom("webhook_deliveries").selectAll().where("webhook_id", "=", webhookId);
    if (options.status) query = query.where("status", "=", options.status);
    const cursor = options.cursor;
    if (cursor) {
      query = query.where((eb) =>
        eb.or([eb("created_at", "<", cursor.createdAt), eb.and([eb("created_at", "=", cursor.createdAt), eb("id", "<", cursor.id)])]),
      );
    }
    const deliveries = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(options.limit).execute();
    if (deliveries.length === 0) return [];
    const attempts = await this.db
      .selectFrom("webhook_attempts")
      .selectAll()
      .where(
        "delivery_id",
        "in",
        deliveries.map((d) => d.id),
      )
      .orderBy("id", "asc")
      .execute();
    const byDelivery = new Map<string, AttemptRow[]>();
    for (const attempt of attempts) byDelivery.set(attempt.delivery_id, [...(byDelivery.get(attempt.delivery_id) ?? []), attempt]);
    return deliveries.map((delivery) => ({ delivery, attempts: (byDelivery.get(delivery.id) ?? []).slice(-ATTEMPTS_SHOWN) }));
  }

  /**
   * Queues a delivery again, with the same id and body and a fresh round of retries: a dead
   * or delivered one starts over, an open one is due at once.
   */
  async redeliver(webhookId: string, deliveryId: string, now = new Date()): Promise<DeliveryRow | undefined> {
    return this.db
      .updateTable("webhook_deliveries")
      .set({ status: "pending", failures: 0, next_attempt_at: now, finished_at: null })
      .where("id", "=", deliveryId)
      .where("webhook_id", "=", webhookId)
      .returningAll()
      .executeTakeFirst();
  }

  async stats(webhookId: string, since: Date) {
    const [deliveries, attempts] = await Promise.all([
      this.db
        .selectFrom("webhook_deliveries")
        .select(["status", (eb) => eb.fn.countAll<string>().as("count")])
        .where("webhook_id", "=", webhookId)
        .groupBy("status")
        .execute(),
      this.db
        .selectFrom("webhook_attempts")
        .select((eb) => [
          eb.fn.countAll<string>().as("total"),
          eb.fn.count<string>("id").filterWhere("success", "=", true).as("succeeded"),
          eb.fn.count<string>("id").filterWhere("attempted_at", ">=", since).as("recent"),
          eb.fn
            .count<string>("id")
            .filterWhere((f) => f.and([f("attempted_at", ">=", since), f("success", "=", false)]))
            .as("recent_failed"),
          sql<string | null>`avg(duration_ms)`.as("avg_duration_ms"),
          eb.fn.max("attempted_at").filterWhere("success", "=", true).as("last_success_at"),
          eb.fn.max("attempted_at").filterWhere("success", "=", false).as("last_failure_at"),
        ])
        .where("webhook_id", "=", webhookId)
        .executeTakeFirstOrThrow(),
    ]);
    const counts = Object.fromEntries(deliveries.map((d) => [d.status, Number(d.count)])) as Partial<Record<DeliveryStatus, number>>;
    return { counts, attempts };
  }
}
