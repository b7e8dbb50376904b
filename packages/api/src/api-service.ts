import { hostname } from "node:os";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { authenticate } from "./auth/caller.js";
import type { ApiConfig } from "./config/config.js";
import { type OpenDatabase, openDatabase } from "./db/database.js";
import { createHttpApp, type HttpApp } from "./http/app.js";
import { Batcher } from "./ledger/batcher.js";
import { Confirmations } from "./ledger/confirmations.js";
import { Indexer } from "./ledger/indexer.js";
import { LedgerClient } from "./ledger/ledger-client.js";
import { proofRoutes } from "./ledger/proof-route.js";
import { createMetrics } from "./observability/metrics.js";
import { observabilityRoutes } from "./observability/routes.js";
import { RegistrationStore } from "./registrations/registration-store.js";
import { registrationRoutes } from "./registrations/routes.js";

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
  logger?: Logger;
  /** How long /health says "draining" before the server stops accepting (ops.md §2: 5 s). */
  drainMs?: number;
  /** Keep the database in memory (embedded tests), not under the state directory. */
  inMemoryDatabase?: boolean;
}

/** The HTTP API with its workers (batcher, indexer): what `daon api` and `daon up` run. */
export class ApiService {
  draining = false;

  private constructor(
    readonly config: ApiConfig,
    readonly app: HttpApp,
    readonly database: OpenDatabase,
    readonly ledger: LedgerClient,
    readonly batcher: Batcher,
    readonly indexer: Indexer,
    private readonly redis: Redis | undefined,
    private readonly drainMs: number,
  ) {}

  get url(): string {
    const address = this.app.server.address();
    return typeof address === "object" && address
      ? `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}`
      : "";
  }

  static async start(config: ApiConfig, options: ApiServiceOptions = {}): Promise<ApiService> {
    const logger = options.logger ?? pino({ level: config.LOG_LEVEL, redact: { paths: REDACT, censor: "[redacted]" } });
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
    const store = new RegistrationStore(database.db);
    const metrics = createMetrics();
    const indexer = new Indexer(database.db, ledger, logger.child({ component: "indexer" }), confirmations);
    const batcher = new Batcher(database.db, ledger, logger.child({ component: "batcher" }), confirmations);
    const app = await createHttpApp(config, logger, redis);
    let service: ApiService | undefined;

    authenticate(app, {});
    app.addHook("onResponse", async (request, reply) => {
      const labels = { method: request.method, route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    });
    await app.register(registrationRoutes, {
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
    });
    await app.register(proofRoutes, { store, ledger, chainId: config.CHAIN_ID });
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
    });
    await app.listen({ host: config.HOST, port: config.PORT });
    indexer.start();
    batcher.start();
    service = new ApiService(config, app, database, ledger, batcher, indexer, redis, options.drainMs ?? 5000);
    return service;
  }

  /**
   * Graceful stop: /health says draining while requests are still served, then the server
   * finishes in-flight requests, the batcher submits what is pending, and stores close.
   */
  async stop(): Promise<void> {
    this.draining = true;
    if (this.drainMs > 0) await new Promise((resolve) => setTimeout(resolve, this.drainMs));
    await this.app.close();
    await this.batcher.stop({ flush: true });
    await this.indexer.stop();
    this.ledger.disconnect();
    this.redis?.disconnect();
    await this.database.close();
  }
}
