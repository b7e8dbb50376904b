import type {} from "@fastify/rate-limit";
import type {} from "@fastify/swagger";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import type { Redis } from "ioredis";
import type { ApiConfig } from "../config/config.js";
import type { OpenDatabase } from "../db/database.js";
import { ApiError } from "../http/errors.js";
import type { Batcher } from "../ledger/batcher.js";
import type { Indexer } from "../ledger/indexer.js";
import type { LedgerClient } from "../ledger/ledger-client.js";
import type { RegistrationStore } from "../registrations/registration-store.js";
import { ipAllowed, type Metrics } from "./metrics.js";

export interface ObservabilityOptions {
  config: ApiConfig;
  database: OpenDatabase;
  ledger: LedgerClient;
  redis: Redis | undefined;
  store: RegistrationStore;
  indexer: Indexer;
  batcher: Batcher;
  metrics: Metrics;
  version: { version: string; commit: string; builtAt: string };
  instance: string;
  /** True while shutting down: /health answers 503 draining so proxies stop sending. */
  draining: () => boolean;
  /** checks.webhooks: the webhook outbox's state (webhooks/webhooks.ts). */
  webhooksHealth?: () => Promise<{ status: string; backlog: number; deadLetters24h: number }>;
  /** Maintenance mode (writes refused, reads served): shown in /health, which says degraded. */
  maintenance?: () => Promise<boolean>;
}

const CHECK_TIMEOUT_MS = 1000;
const STATS_TTL_MS = 5000;

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timed out")), CHECK_TIMEOUT_MS))]);
}

/** /health, /api/v1/stats, /metrics and /api/v1: how operators and the runbook watch the API. */
export const observabilityRoutes: FastifyPluginAsyncTypebox<ObservabilityOptions> = async (app, options) => {
  const { config, database, ledger, redis, store, indexer, batcher, metrics } = options;
  const startedAt = Date.now();

  async function health() {
    const [db, chain, outbox, webhooks] = await Promise.allSettled([
      withTimeout(database.ping()),
      withTimeout(ledger.status()),
      withTimeout(store.outboxBacklog()),
      withTimeout(options.webhooksHealth?.() ?? Promise.resolve({ status: "not_configured", backlog: 0, deadLetters24h: 0 })),
    ]);
    const oldestSeconds =
      outbox.status === "fulfilled" && outbox.value.oldest ? Math.round((Date.now() - outbox.value.oldest.getTime()) / 1000) : 0;
    const chainMismatch = chain.status === "fulfilled" && chain.value.chainId !== config.CHAIN_ID;
    const checks = {
      database:
        db.status === "fulfilled"
          ? { status: "up", engine: database.engine, latencyMs: Math.round(db.value * 10) / 10 }
          : { status: "down", engine: database.engine, latencyMs: null },
      ledger:
        chain.status === "fulfilled"
          ? {
              status: chainMismatch ? "down" : chain.value.catchingUp ? "degraded" : "up",
              chainId: chain.value.chainId,
              height: chain.value.height,
              latestBlockTime: chain.value.latestBlockTime.toISOString(),
              catchingUp: chain.value.catchingUp,
            }
          : { status: "down", chainId: null, height: null, latestBlockTime: null, catchingUp: null },
      redis: !redis ? { status: "not_configured" } : { status: redis.status === "ready" ? "up" : "down" },
      outbox:
        outbox.status === "fulfilled"
          ? {
              status: oldestSeconds > 60 || batcher.lastError ? "degraded" : "up",
              pending: outbox.value.pending,
              oldestPendingSeconds: oldestSeconds,
            }
          : { status: "down", pending: null, oldestPendingSeconds: null },
      webhooks: webhooks.status === "fulfilled" ? webhooks.value : { status: "down", backlog: null, deadLetters24h: null },
    };
    if (chain.status === "fulfilled") metrics.ledgerHeight.set(chain.value.height);
    if (webhooks.status === "fulfilled") metrics.webhookBacklog.set(webhooks.value.backlog);
    metrics.indexerHeight.set(indexer.indexedHeight);
    if (outbox.status === "fulfilled") {
      metrics.outboxPending.set(outbox.value.pending);
      metrics.outboxOldestSeconds.set(oldestSeconds);
    }
    const maintenance = await withTimeout(options.maintenance?.() ?? Promise.resolve(false)).catch(() => false);
    const degraded = maintenance || Object.values(checks).some((check) => check.status === "down" || check.status === "degraded");
    const status = options.draining()
      ? "draining"
      : checks.database.status === "down" || chainMismatch
        ? "unhealthy"
        : degraded
          ? "degraded"
          : "healthy";
    return {
      status,
      version: options.version.version,
      commit: options.version.commit,
      instance: options.instance,
      uptime: Math.round((Date.now() - startedAt) / 1000),
      timestamp: new Date().toISOString(),
      chainId: config.CHAIN_ID,
      height: chain.status === "fulfilled" ? chain.value.height : null,
      maintenance,
      checks,
    };
  }

  const healthSchema = { summary: "Health of the API and each dependency", tags: ["operations"] };
  const healthHandler = async (_request: unknown, reply: FastifyReply) => {
    const body = await health();
    const unhealthy = body.status === "unhealthy" || body.status === "draining";
    if (unhealthy) reply.header("Retry-After", "5");
    return reply.code(unhealthy ? 503 : 200).send(body);
  };
  app.get("/health", { schema: healthSchema, config: { rateLimit: false } }, healthHandler);
  app.get("/api/v1/health", { schema: healthSchema, config: { rateLimit: false } }, healthHandler);

  let cached: { at: number; body: unknown } | undefined;
  app.get(
    "/api/v1/stats",
    { schema: { summary: "Registration counts and ledger position (cached up to 5 s)", tags: ["content"] } },
    async () => {
      if (cached && Date.now() - cached.at < STATS_TTL_MS) return cached.body;
      const since = new Date(Date.now() - 24 * 3600 * 1000);
      const [stats, chain] = await Promise.all([store.stats(since), ledger.status().catch(() => undefined)]);
      const body = {
        success: true,
        timestamp: new Date().toISOString(),
        stats: {
          totalProtected: Number(stats.totals.total),
          confirmed: Number(stats.totals.confirmed),
          pending: Number(stats.totals.total) - Number(stats.totals.confirmed),
          last24h: Number(stats.totals.last24h),
          byLicense: Object.fromEntries(stats.byLicense.map((r) => [r.license, Number(r.count)])),
          byAiTrainingPolicy: Object.fromEntries(stats.byPolicy.map((r) => [r.ai_training_policy, Number(r.count)])),
          chainId: config.CHAIN_ID,
          latestHeight: chain?.height ?? null,
          latestBlockTime: chain?.latestBlockTime.toISOString() ?? null,
          indexedHeight: indexer.indexedHeight,
          outboxPending: stats.outbox.pending,
          recentProtections: stats.recent.map((r) => ({
            contentHash: r.content_hash,
            status: r.status,
            license: r.license,
            ai_training_policy: r.ai_training_policy,
            timestamp: new Date(r.created_at).toISOString(),
            blockHeight: r.block_height === null ? null : Number(r.block_height),
          })),
        },
      };
      cached = { at: Date.now(), body };
      return body;
    },
  );

  const metricsAllow = config.METRICS_ALLOW.split(",").filter(Boolean);
  metrics.buildInfo.set({ version: options.version.version, commit: options.version.commit, chain_id: config.CHAIN_ID }, 1);
  const metricsSchema = {
    summary: "Prometheus metrics (text exposition format), for METRICS_ALLOW addresses or Bearer METRICS_TOKEN; 404 for anyone else",
    tags: ["operations"],
  };
  app.get("/metrics", { schema: metricsSchema, config: { rateLimit: false } }, async (request, reply) => {
    const bearer = request.headers.authorization === `Bearer ${config.METRICS_TOKEN}` && config.METRICS_TOKEN !== undefined;
    if (!bearer && !ipAllowed(request.ip, metricsAllow)) throw new ApiError(404, "NOT_FOUND", "route not found");
    metrics.indexerHeight.set(indexer.indexedHeight);
    metrics.ledgerHeight.set(indexer.ledgerHeight);
    // Read at scrape time, so the outbox series are current without anyone calling /health.
    const outbox = await withTimeout(store.outboxBacklog()).catch(() => undefined);
    if (outbox) {
      metrics.outboxPending.set(outbox.pending);
      metrics.outboxOldestSeconds.set(outbox.oldest ? Math.max(0, (Date.now() - outbox.oldest.getTime()) / 1000) : 0);
    }
    const pool = database.poolStats();
    metrics.dbPoolConnections.set({ state: "in_use" }, pool.inUse);
    metrics.dbPoolConnections.set({ state: "idle" }, pool.idle);
    metrics.dbPoolConnections.set({ state: "waiting" }, pool.waiting);
    metrics.dbPoolConnections.set({ state: "max" }, pool.max);
    return reply.header("content-type", metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get("/api/v1", { schema: { summary: "What this API is", tags: ["operations"] } }, async () => ({
    success: true,
    name: "DAON API",
    version: options.version.version,
    build: { commit: options.version.commit, builtAt: options.version.builtAt },
    chainId: config.CHAIN_ID,
    docs: "/docs",
    openapi: "/api/v1/openapi.json",
  }));
};
