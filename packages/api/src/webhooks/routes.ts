import { randomBytes } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { requirePlatform } from "../auth/caller.js";
import { ApiError, validationError } from "../http/errors.js";
import { opaqueId } from "../registrations/registration.js";
import type { Sealer } from "../secrets/sealing.js";
import type { WebhookSender } from "./attempt.js";
import { type DestinationPolicy, DestinationRefused } from "./destinations.js";
import { eventBody } from "./events.js";
import { WEBHOOK_EVENTS } from "./tables.js";
import {
  customHeaderProblem,
  deliveryObject,
  MAX_CUSTOM_HEADERS,
  MIN_SECRET_LENGTH,
  RETRIES,
  RETRY_DELAY_SECONDS,
  type WebhookRow,
  webhookObject,
} from "./webhook.js";
import { decodeCursor, encodeCursor, type WebhookStore } from "./webhook-store.js";
import type { WebhookWorker } from "./worker.js";

export interface WebhookRoutesOptions {
  store: WebhookStore;
  policy: DestinationPolicy;
  sender: WebhookSender;
  /** Seals new secrets and opens stored ones (ENCRYPTION_KEY), asked at use time. */
  sealer: () => Sealer;
  worker?: WebhookWorker;
}

/** Webhooks one platform may have: every event is sent to each of them. */
const MAX_WEBHOOKS_PER_PLATFORM = 20;

const Id = Type.String({ minLength: 1, maxLength: 64 });
const Event = Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e)));
const NullableString = (maxLength: number) => Type.Unsafe<string | null>({ type: ["string", "null"], maxLength });
const Settings = {
  url: Type.String({ minLength: 1, maxLength: 2048, description: "https URL the events are POSTed to" }),
  events: Type.Array(Event, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true }),
  secret: Type.String({
    minLength: MIN_SECRET_LENGTH,
    maxLength: 256,
    description: "HMAC key for X-DAON-Webhook-Signature; generated (and shown once) when not given",
  }),
  description: NullableString(500),
  customHeaders: Type.Record(Type.String(), Type.String(), {
    maxProperties: MAX_CUSTOM_HEADERS,
    description: "Extra request headers; not X-DAON-*, Content-*, Host or User-Agent",
  }),
  maxRetries: Type.Integer({ minimum: RETRIES.min, maximum: RETRIES.max, default: RETRIES.default }),
  retryDelaySeconds: Type.Integer({
    minimum: RETRY_DELAY_SECONDS.min,
    maximum: RETRY_DELAY_SECONDS.max,
    default: RETRY_DELAY_SECONDS.default,
  }),
};
const CreateBody = Type.Object({
  url: Settings.url,
  events: Settings.events,
  secret: Type.Optional(Settings.secret),
  description: Type.Optional(Settings.description),
  customHeaders: Type.Optional(Settings.customHeaders),
  maxRetries: Type.Optional(Settings.maxRetries),
  retryDelaySeconds: Type.Optional(Settings.retryDelaySeconds),
});
const PatchBody = Type.Object({
  url: Type.Optional(Settings.url),
  events: Type.Optional(Settings.events),
  secret: Type.Optional(Settings.secret),
  description: Type.Optional(Settings.description),
  customHeaders: Type.Optional(Settings.customHeaders),
  enabled: Type.Optional(Type.Boolean()),
  maxRetries: Type.Optional(Type.Integer({ minimum: RETRIES.min, maximum: RETRIES.max })),
  retryDelaySeconds: Type.Optional(Type.Integer({ minimum: RETRY_DELAY_SECONDS.min, maximum: RETRY_DELAY_SECONDS.max })),
});
const WebhookObject = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  description: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  last_triggered_at: Type.Union([Type.String(), Type.Null()]),
  max_retries: Type.Integer(),
  retry_delay_seconds: Type.Integer(),
});
const Page = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
const DeliveryStatus = Type.Union([Type.Literal("pending"), Type.Literal("retrying"), Type.Literal("success"), Type.Literal("dead")]);
const ErrorEnvelope = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }, { additionalProperties: true }),
});
const errors = { "4xx": ErrorEnvelope, "5xx": ErrorEnvelope };
const WebhookParams = Type.Object({ id: Id });
const tags = ["webhooks"];

const notFound = () => new ApiError(404, "NOT_FOUND", "no such webhook");

function cursorOf(cursor: string | undefined) {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(cursor);
  if (!decoded) throw validationError([{ field: "cursor", message: "is not a cursor this API gave out" }]);
  return decoded;
}

/** The platform's webhooks (api.md §5), under /api/v1/broker/webhooks with the broker:webhooks scope. */
export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRoutesOptions> = async (app, options) => {
  const { store, policy, sender } = options;

  // The key and its scope are checked before the body: a caller without them learns nothing about input rules.
  app.addHook("preValidation", async (request) => {
    requirePlatform(request, "broker:webhooks");
  });
  // Broker answers are never cached (api.md §7).
  app.addHook("onSend", async (_request, reply) => {
    reply.header("Cache-Control", "no-store");
  });

  async function checkedUrl(url: string): Promise<string> {
    try {
      await policy.check(url);
    } catch (error) {
      if (error instanceof DestinationRefused) throw validationError([{ field: "url", message: error.message }]);
      throw error;
    }
    return url;
  }

  function checkedHeaders(headers: Record<string, string> | undefined): Record<string, string> | undefined {
    if (headers === undefined) return undefined;
    const problems = Object.entries(headers).flatMap(([name, value]) => {
      const problem = customHeaderProblem(name, value);
      return problem ? [{ field: `customHeaders.${name.slice(0, 64)}`, message: problem }] : [];
    });
    const names = Object.keys(headers).map((n) => n.toLowerCase());
    if (new Set(names).size !== names.length) problems.push({ field: "customHeaders", message: "names a header twice" });
    if (problems.length > 0) throw validationError(problems);
    return headers;
  }

  async function ownWebhook(platformId: string, id: string): Promise<WebhookRow> {
    const webhook = await store.find(platformId, id);
    if (!webhook) throw notFound();
    return webhook;
  }

  app.post(
    "/api/v1/broker/webhooks",
    {
      schema: {
        summary: "Register a webhook; a generated secret is shown once",
        tags,
        body: CreateBody,
        response: {
          201: Type.Object({
            success: Type.Literal(true),
            webhook: WebhookObject,
            secret: Type.Optional(Type.String()),
            warning: Type.Optional(Type.String()),
          }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const body = request.body;
      const customHeaders = checkedHeaders(body.customHeaders) ?? {};
      const url = await checkedUrl(body.url);
      const existing = await store.list(platform.platformId, MAX_WEBHOOKS_PER_PLATFORM);
      if (existing.length >= MAX_WEBHOOKS_PER_PLATFORM) {
        throw validationError([{ field: "url", message: `a platform can have at most ${MAX_WEBHOOKS_PER_PLATFORM} webhooks` }]);
      }
      const generated = body.secret === undefined ? `whsec_${randomBytes(32).toString("hex")}` : undefined;
      const webhook = await store.create({
        platformId: platform.platformId,
        url,
        events: body.events,
        secretSealed: options.sealer().seal(body.secret ?? generated!),
        description: body.description ?? null,
        customHeaders,
        maxRetries: body.maxRetries ?? RETRIES.default,
        retryDelaySeconds: body.retryDelaySeconds ?? RETRY_DELAY_SECONDS.default,
      });
      return reply.code(201).send({
        success: true as const,
        webhook: webhookObject(webhook),
        ...(generated ? { secret: generated, warning: "Store this secret now: it is not shown again." } : {}),
      });
    },
  );

  app.get(
    "/api/v1/broker/webhooks",
    { schema: { summary: "This platform's webhooks, newest first", tags, querystring: Page } },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const limit = request.query.limit ?? 20;
      const rows = await store.list(platform.platformId, limit + 1, cursorOf(request.query.cursor));
      const items = rows.slice(0, limit);
      const last = items.at(-1);
      return {
        success: true,
        items: items.map(webhookObject),
        nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
      };
    },
  );

  app.get(
    "/api/v1/broker/webhooks/:id",
    {
      schema: {
        summary: "One webhook",
        tags,
        params: WebhookParams,
        response: { 200: Type.Object({ success: Type.Literal(true), webhook: WebhookObject }), ...errors },
      },
    },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      return { success: true as const, webhook: webhookObject(await ownWebhook(platform.platformId, request.params.id)) };
    },
  );

  app.patch(
    "/api/v1/broker/webhooks/:id",
    {
      schema: {
        summary: "Change a webhook (url, events, secret, description, headers, enabled, retries)",
        tags,
        params: WebhookParams,
        body: PatchBody,
        response: { 200: Type.Object({ success: Type.Literal(true), webhook: WebhookObject }), ...errors },
      },
    },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const body = request.body;
      await ownWebhook(platform.platformId, request.params.id);
      const customHeaders = checkedHeaders(body.customHeaders);
      const url = body.url === undefined ? undefined : await checkedUrl(body.url);
      const webhook = await store.update(platform.platformId, request.params.id, {
        url,
        events: body.events,
        secretSealed: body.secret === undefined ? undefined : options.sealer().seal(body.secret),
        description: body.description,
        customHeaders,
        enabled: body.enabled,
        maxRetries: body.maxRetries,
        retryDelaySeconds: body.retryDelaySeconds,
      });
      if (!webhook) throw notFound();
      return { success: true as const, webhook: webhookObject(webhook) };
    },
  );

  app.delete(
    "/api/v1/broker/webhooks/:id",
    { schema: { summary: "Delete a webhook and its deliveries", tags, params: WebhookParams } },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      if (!(await store.delete(platform.platformId, request.params.id))) throw notFound();
      return { success: true };
    },
  );

  app.get(
    "/api/v1/broker/webhooks/:id/stats",
    { schema: { summary: "Delivery counts and attempt outcomes of a webhook", tags, params: WebhookParams } },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const webhook = await ownWebhook(platform.platformId, request.params.id);
      const { counts, attempts } = await store.stats(webhook.id, new Date(Date.now() - 24 * 3600 * 1000));
      const total = Number(attempts.total);
      const succeeded = Number(attempts.succeeded);
      const iso = (value: unknown) => (value ? new Date(value as Date).toISOString() : null);
      return {
        success: true,
        webhook_id: webhook.id,
        stats: {
          deliveries: {
            total: Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0),
            pending: counts.pending ?? 0,
            retrying: counts.retrying ?? 0,
            success: counts.success ?? 0,
            dead: counts.dead ?? 0,
          },
          attempts: {
            total,
            succeeded,
            failed: total - succeeded,
            last_24h: Number(attempts.recent),
            failed_last_24h: Number(attempts.recent_failed),
          },
          success_rate: total === 0 ? null : Math.round((succeeded / total) * 1000) / 1000,
          avg_duration_ms: attempts.avg_duration_ms === null ? null : Math.round(Number(attempts.avg_duration_ms)),
          last_triggered_at: iso(webhook.last_triggered_at),
          last_success_at: iso(attempts.last_success_at),
          last_failure_at: iso(attempts.last_failure_at),
        },
      };
    },
  );

  app.get(
    "/api/v1/broker/webhooks/:id/deliveries",
    {
      schema: {
        summary: "A webhook's deliveries log, newest first: attempts, status codes, errors, next attempt",
        tags,
        params: WebhookParams,
        querystring: Type.Object({ status: Type.Optional(DeliveryStatus), ...Page.properties }),
      },
    },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const webhook = await ownWebhook(platform.platformId, request.params.id);
      const limit = request.query.limit ?? 20;
      const rows = await store.deliveries(webhook.id, {
        status: request.query.status,
        limit: limit + 1,
        cursor: cursorOf(request.query.cursor),
      });
      const items = rows.slice(0, limit);
      const last = items.at(-1)?.delivery;
      return {
        success: true,
        items: items.map(({ delivery, attempts }) => deliveryObject(delivery, attempts)),
        nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
      };
    },
  );

  app.post(
    "/api/v1/broker/webhooks/:id/deliveries/:deliveryId/redeliver",
    {
      schema: {
        summary: "Queue a delivery again (same delivery id and body, a fresh round of retries)",
        tags,
        params: Type.Object({ id: Id, deliveryId: Id }),
      },
    },
    async (request, reply) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const webhook = await ownWebhook(platform.platformId, request.params.id);
      const delivery = await store.redeliver(webhook.id, request.params.deliveryId);
      if (!delivery) throw new ApiError(404, "NOT_FOUND", "no such delivery");
      options.worker?.nudge();
      return reply.code(202).send({
        success: true,
        delivery: {
          id: delivery.id,
          event: delivery.event,
          status: delivery.status,
          attempts: delivery.attempts,
          next_attempt_at: new Date(delivery.next_attempt_at).toISOString(),
        },
      });
    },
  );

  app.post(
    "/api/v1/broker/webhooks/:id/test",
    {
      schema: {
        summary: "Send one webhook.test event now and report what the receiver answered",
        tags,
        params: WebhookParams,
        response: {
          200: Type.Object({
            success: Type.Literal(true),
            delivered: Type.Boolean(),
            status_code: Type.Union([Type.Integer(), Type.Null()]),
            duration_ms: Type.Integer(),
            error: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const platform = requirePlatform(request, "broker:webhooks");
      const webhook = await ownWebhook(platform.platformId, request.params.id);
      const now = new Date();
      const body = eventBody(opaqueId("evt"), "webhook.test", platform.platformId, now, {
        webhook_id: webhook.id,
        message: "This is a test event from DAON.",
      });
      let secret: string;
      try {
        secret = options.sealer().open(webhook.secret_sealed);
      } catch {
        return {
          success: true as const,
          delivered: false,
          status_code: null,
          duration_ms: 0,
          error: "the webhook's secret cannot be opened",
        };
      }
      const outcome = await sender.send(
        {
          url: webhook.url,
          secret,
          deliveryId: opaqueId("whd"),
          event: "webhook.test",
          body,
          customHeaders: webhook.custom_headers,
        },
        now,
      );
      return {
        success: true as const,
        delivered: outcome.success,
        status_code: outcome.statusCode,
        duration_ms: outcome.durationMs,
        error: outcome.error,
      };
    },
  );
};
