import { hostname } from "node:os";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { Accounts } from "./accounts/accounts.js";
import { accountRoutes } from "./accounts/routes.js";
import { secretsForStart } from "./accounts/secrets.js";
import { authenticate } from "./auth/caller.js";
import type { ApiConfig } from "./config/config.js";
import { type OpenDatabase, openDatabase } from "./db/database.js";
import { createHttpApp, type HttpApp } from "./http/app.js";
import { Batcher } from "./ledger/batcher.js";
import { Confirmations } from "./ledger/confirmations.js";
import { Indexer } from "./ledger/indexer.js";
import { LedgerClient } from "./ledger/ledger-client.js";
import { createMailer } from "./mail/mailer.js";
import { proofRoutes } from "./ledger/proof-route.js";
import { createMetrics } from "./observability/metrics.js";
import { observabilityRoutes } from "./observability/routes.js";
import { internalOpsRoutes } from "./operations/internal-routes.js";
import { LoadTestKeys, loadTestKeyRoute } from "./operations/loadtest-key.js";
import { Maintenance, maintenanceRoutes } from "./operations/maintenance.js";
import { MinuteStats } from "./operations/minute-stats.js";
import { snapshotRoute } from "./operations/snapshot.js";
import { statsRoute } from "./operations/stats-route.js";
import { genesisRoute } from "./portal/genesis-route.js";
import { portalRoutes } from "./portal/portal-routes.js";
import { adminRoutes } from "./admin/admin-routes.js";
import { brokerRoutes } from "./platforms/broker-routes.js";
import { Platforms } from "./platforms/platforms.js";
import { RegistrationStore } from "./registrations/registration-store.js";
import { bulkProtectRoute } from "./registrations/bulk-route.js";
import { registrationRoutes } from "./registrations/routes.js";
import { Keyring } from "./secrets/keyring.js";
import { Resealer, SEALED_COLUMNS } from "./secrets/resealing.js";
import { queueContentConfirmed, queueContentProtected } from "./webhooks/events.js";
import { webhookRoutes } from "./webhooks/routes.js";
import { Webhooks } from "./webhooks/webhooks.js";

export const API_VERSION = { version: "0.1.0", commit: process.env.DAON_COMMIT ?? "dev", builtAt: process.env.DAON_BUILT_AT ?? "dev" };

/** Log fields that may hold credentials or personal data; pino replaces them. */
const REDACT = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['x-api-key']",
  "*.API_MNEMONIC",
  "*.mnemonic",
  "*.password",
  "*.secret",
  "*.token",
  "*.email",
];

export interface ApiServiceOptions {
  /** The built portal to serve (default `packages/web/dist`). */
  portalDir?: string;
  logger?: Logger;
  /** How long /health says "draining" before the server stops accepting (ops.md §2: 5 s). */
  drainMs?: number;
  /** Keep the database in memory (embedded tests), not under the state directory. */
  inMemoryDatabase?: boolean;
  /** How long a stop waits for in-flight requests (ops.md §2: 25 s), and for the batcher's last block. */
  shutdownTimeoutMs?: number;
}

/** What a graceful stop and a SIGHUP reload work with, besides the parts above. */
interface ServiceRuntime {
  keyring: Keyring;
  resealer: Resealer;
  confirmations: Confirmations;
  inFlight: () => number;
  minuteStats: MinuteStats;
  shutdownTimeoutMs: number;
  /** The settings in effect: `reloadSecrets` replaces the secrets in it. */
  effective: { config: ApiConfig; reloadedAt?: Date };
  webhooks: Webhooks;
}

/** A part of the service that did not stop in time (ops.md §2: named, exit 1). */
export class ShutdownTimeout extends Error {}

function withDeadline<T>(work: Promise<T>, ms: number, stuck: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShutdownTimeout(stuck())), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The HTTP API with its workers (batcher, indexer): what `daon api` and `daon up` run. */
export class ApiService {
  draining = false;
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly config: ApiConfig,
    readonly app: HttpApp,
    readonly database: OpenDatabase,
    readonly ledger: LedgerClient,
    readonly batcher: Batcher,
    readonly indexer: Indexer,
    private readonly redis: Redis | undefined,
    private readonly drainMs: number,
    private readonly runtime: ServiceRuntime,
  ) {}

  /** The rotatable secrets in effect; routes read them from here at use time. */
  get keyring(): Keyring {
    return this.runtime.keyring;
  }

  get url(): string {
    const address = this.app.server.address();
    return typeof address === "object" && address
      ? `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}`
      : "";
  }

  static async start(config: ApiConfig, options: ApiServiceOptions = {}): Promise<ApiService> {
    const logger = options.logger ?? pino({ level: config.LOG_LEVEL, redact: { paths: REDACT, censor: "[redacted]" } });
    // Production refuses weak secrets before anything starts; development gets random ones.
    config = secretsForStart(config, logger);
    const database = await openDatabase({
      databaseUrl: config.DATABASE_URL,
      stateDir: config.DAON_STATE_DIR,
      poolMax: config.DB_POOL_MAX,
      inMemory: options.inMemoryDatabase,
    });
    const redis = config.REDIS_URL
      ? new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => 1000 })
      : undefined;
    redis?.on("error", () => {}); // reconnects by itself; the rate limiter falls back to memory meanwhile
    const ledger = await LedgerClient.connect(config.CHAIN_RPC, config.API_MNEMONIC, config.CHAIN_ID);
    const confirmations = new Confirmations();
    // Webhook events are queued in the transaction that causes them (api.md §5).
    const store = new RegistrationStore(database.db, queueContentProtected);
    const metrics = createMetrics();
    const indexer = new Indexer(database.db, ledger, logger.child({ component: "indexer" }), confirmations, queueContentConfirmed);
    const batcher = new Batcher(database.db, ledger, logger.child({ component: "batcher" }), confirmations);
    const app = await createHttpApp(config, logger, redis);
    const keyring = new Keyring(config);
    const resealer = new Resealer(database.db as never, keyring, SEALED_COLUMNS, logger.child({ component: "resealer" }));
    const effective: ServiceRuntime["effective"] = { config };
    const webhooks = new Webhooks(database.db, config, () => keyring.sealer!, logger.child({ component: "webhooks" }), metrics);
    const startedAt = new Date();
    let service: ApiService | undefined;

    // Load-test keys are checked before any platform key resolver (pass it inside).
    const loadTestKeys = new LoadTestKeys(database.db, redis, config.CHAIN_ID, logger.child({ component: "loadtest-keys" }));
    const accounts = new Accounts(
      database.db,
      keyring,
      createMailer({
        smtpUrl: config.SMTP_URL,
        from: config.MAIL_FROM,
        stateDir: config.DAON_STATE_DIR,
        logger: logger.child({ component: "mail" }),
      }),
      {
        magicLinkLifetime: config.MAGIC_LINK_LIFETIME,
        accessTokenLifetime: config.ACCESS_TOKEN_LIFETIME,
        refreshTokenLifetime: config.REFRESH_TOKEN_LIFETIME,
        adminEmails: config.ADMIN_EMAILS,
        verificationBaseUrl: config.verificationBaseUrl,
      },
      logger.child({ component: "accounts" }),
    );
    const platforms = new Platforms(database.db, () => keyring.apiKey);
    authenticate(app, loadTestKeys.resolvers({ user: accounts.resolveUser, platform: platforms.resolver }));
    platforms.installRequestHooks(app);
    // Before any feature registers its routes: maintenance mode refuses every write to /api/v1 (ops.md §6).
    const maintenance = new Maintenance(database.db);
    app.addHook("preHandler", maintenance.refuseWrites);
    const minuteStats = new MinuteStats(database.db, {
      log: logger.child({ component: "minute-stats" }),
      healthy: () => database.ping().then(() => true),
      outboxPending: () => store.outboxBacklog().then((backlog) => backlog.pending),
      isTestTraffic: (request) => request.testTraffic !== undefined,
    });
    minuteStats.observe(app);
    const inFlight = new Set<object>(); // request objects: ids may repeat (X-Request-Id is the client's)
    app.addHook("onRequest", async (request) => {
      inFlight.add(request);
    });
    app.addHook("onResponse", async (request) => {
      inFlight.delete(request);
    });
    app.addHook("onRequestAbort", async (request) => {
      inFlight.delete(request);
    });
    app.addHook("onRequest", async (_request, reply) => {
      metrics.httpInFlight.inc();
      // "close" comes after the response is sent or when the client went away: both end the request.
      reply.raw.once("close", () => metrics.httpInFlight.dec());
    });
    app.addHook("onResponse", async (request, reply) => {
      const labels = { method: request.method, route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    });
    const protectOptions = {
      store,
      confirmations,
      indexer,
      metrics,
      chainId: config.CHAIN_ID,
      verificationBaseUrl: config.verificationBaseUrl,
      protectWaitMs: config.PROTECT_WAIT_MS,
      fileBodyLimit: config.BODY_LIMIT_FILE,
      jsonBodyLimit: config.BODY_LIMIT_JSON,
      protectRateLimit: { max: config.PROTECT_RATE_LIMIT_MAX, timeWindow: config.RATE_LIMIT_WINDOW_MS },
      protectRequiresAuth: config.PROTECT_REQUIRE_AUTH,
      accountProtectRateLimitMax: 120,
      platformOwner: platforms.protectOwner,
    };
    await app.register(registrationRoutes, protectOptions);
    await app.register(bulkProtectRoute, protectOptions);
    await app.register(proofRoutes, { store, ledger, chainId: config.CHAIN_ID });
    await app.register(brokerRoutes, {
      db: database.db,
      store,
      keys: platforms.keys,
      users: platforms.users,
      usage: platforms.usage,
      confirmations,
      indexer,
      chainId: config.CHAIN_ID,
      verificationBaseUrl: config.verificationBaseUrl,
      protectWaitMs: config.PROTECT_WAIT_MS,
    });
    await app.register(webhookRoutes, webhooks.routes);
    await app.register(adminRoutes, { platforms: platforms.store, audit: platforms.audit });
    await app.register(accountRoutes, {
      accounts,
      db: database.db,
      confirmations,
      indexer,
      chainId: config.CHAIN_ID,
      verificationBaseUrl: config.verificationBaseUrl,
      protectWaitMs: config.PROTECT_WAIT_MS,
    });
    await app.register(observabilityRoutes, {
      config,
      database,
      ledger,
      redis,
      store,
      indexer,
      batcher,
      metrics,
      version: API_VERSION,
      instance: hostname(),
      draining: () => service?.draining ?? false,
      webhooksHealth: () => webhooks.health(),
      maintenance: async () => (await maintenance.state()).enabled,
    });
    await app.register(internalOpsRoutes, {
      config: () => effective.config,
      keyring,
      batcher,
      instance: hostname(),
      startedAt,
      reloadedAt: () => effective.reloadedAt,
      sealing: () => resealer.status(),
    });
    await app.register(statsRoute, { db: database.db, opsSecrets: () => keyring.apiKey, flush: () => minuteStats.flush() });
    await app.register(maintenanceRoutes, {
      maintenance,
      opsSecrets: () => keyring.apiKey,
      progress: async () => ({
        outboxPending: (await store.outboxBacklog()).pending,
        indexedHeight: indexer.indexedHeight,
        ledgerHeight: indexer.ledgerHeight,
      }),
    });
    await app.register(snapshotRoute, { database, opsSecrets: () => keyring.apiKey });
    await app.register(loadTestKeyRoute, { keys: loadTestKeys, opsSecrets: () => keyring.apiKey });
    await app.register(genesisRoute, { ledger, chainId: config.CHAIN_ID });
    await app.register(portalRoutes, { dir: options.portalDir });
    await app.listen({ host: config.HOST, port: config.PORT });
    minuteStats.start(`${hostname()}:${(app.server.address() as { port: number }).port}`);
    indexer.start();
    batcher.start();
    webhooks.start();
    resealer.kick();
    service = new ApiService(config, app, database, ledger, batcher, indexer, redis, options.drainMs ?? 5000, {
      keyring,
      resealer,
      confirmations,
      inFlight: () => inFlight.size,
      minuteStats,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 25_000,
      effective,
      webhooks,
    });
    return service;
  }

  /** The settings in effect, secrets included (after any SIGHUP reload). */
  get effectiveConfig(): ApiConfig {
    return this.runtime.effective.config;
  }

  /**
   * SIGHUP (ops.md §2, §8): takes the rotatable secrets from freshly read settings — JWT,
   * platform-key and encryption secrets with their predecessors, the API wallet and the
   * database password (new connections) — without
   * a restart. Other settings need a restart and are ignored here.
   */
  async reloadSecrets(settings: ApiConfig): Promise<{ walletSwitched: boolean }> {
    const { effective, keyring, resealer } = this.runtime;
    let walletSwitched = false;
    if (settings.API_MNEMONIC.trim() !== effective.config.API_MNEMONIC.trim()) {
      const wallet = await LedgerClient.connect(effective.config.CHAIN_RPC, settings.API_MNEMONIC, effective.config.CHAIN_ID);
      this.batcher.switchWallet(wallet);
      walletSwitched = true;
    }
    keyring.reload(settings);
    if (settings.DATABASE_URL && settings.DATABASE_URL !== effective.config.DATABASE_URL)
      this.database.reconnectAs?.(settings.DATABASE_URL);
    effective.config = {
      ...effective.config,
      API_MNEMONIC: settings.API_MNEMONIC,
      JWT_SECRET: settings.JWT_SECRET,
      JWT_SECRET_PREVIOUS: settings.JWT_SECRET_PREVIOUS,
      API_KEY_SECRET: settings.API_KEY_SECRET,
      API_KEY_SECRET_PREVIOUS: settings.API_KEY_SECRET_PREVIOUS,
      ENCRYPTION_KEY: settings.ENCRYPTION_KEY,
      ENCRYPTION_KEY_PREVIOUS: settings.ENCRYPTION_KEY_PREVIOUS,
      DATABASE_URL: this.database.reconnectAs ? settings.DATABASE_URL : effective.config.DATABASE_URL,
    };
    effective.reloadedAt = new Date();
    resealer.kick();
    return { walletSwitched };
  }

  /**
   * Graceful stop (ops.md §2): /health says draining while requests are still served, then
   * the server stops accepting and finishes in-flight requests (waiting protect calls answer
   * pending), the batcher submits what is pending and waits for that block, and stores
   * close. Rejects with a ShutdownTimeout naming each part that did not stop in time.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    const { confirmations, inFlight, shutdownTimeoutMs, resealer } = this.runtime;
    const stuck: string[] = [];
    const step = async (work: () => Promise<unknown>, ms: number, describe: () => string) => {
      try {
        await withDeadline(work(), ms, describe);
      } catch (error) {
        stuck.push((error as Error).message);
      }
    };
    this.draining = true;
    if (this.drainMs > 0) await new Promise((resolve) => setTimeout(resolve, this.drainMs));
    // Requests waiting for a block answer "pending" now; the registration is safe in the outbox.
    confirmations.stopWaiting();
    // Keep-alive connections that go idle after their last in-flight response would hold close() open.
    const releaseWaiters = setInterval(() => {
      confirmations.stopWaiting();
      this.app.server.closeIdleConnections();
    }, 100);
    await step(
      () => this.app.close(),
      shutdownTimeoutMs,
      () => `http: ${inFlight()} request(s) still in flight after ${Math.round(shutdownTimeoutMs / 1000)} s`,
    );
    clearInterval(releaseWaiters);
    await step(
      () => this.runtime.minuteStats.stop(),
      10_000,
      () => "minute statistics: the last minute was not written in 10 s",
    );
    await step(
      () => resealer.stop(),
      5000,
      () => "resealer: a batch did not finish in 5 s",
    );
    await step(
      () => this.batcher.stop({ flush: true, waitForBlockMs: Math.min(shutdownTimeoutMs, 15_000) }),
      Math.min(shutdownTimeoutMs, 15_000) + 5000,
      () => "batcher: the last batch was not submitted in time",
    );
    await step(
      () => this.indexer.stop(),
      10_000,
      () => "indexer: the current cycle did not finish in 10 s",
    );
    await step(
      () => this.runtime.webhooks.stop(),
      this.config.WEBHOOK_TIMEOUT_MS + 5000,
      () => "webhooks: an attempt in flight did not finish in time",
    );
    this.ledger.disconnect();
    this.redis?.disconnect();
    await step(
      () => this.database.close(),
      10_000,
      () => "database: connections did not close in 10 s",
    );
    if (stuck.length > 0) throw new ShutdownTimeout(stuck.join("; "));
  }
}
