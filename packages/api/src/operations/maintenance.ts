import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import { Type } from "typebox";
import type { Database } from "../db/schema.js";
import { ApiError } from "../http/errors.js";
import type { RotatingSecret } from "../secrets/keyring.js";
import { requireOpsToken } from "./ops-token.js";

/** How long a client is asked to wait before retrying a write during maintenance. */
const RETRY_AFTER_SECONDS = 60;
/** How stale the maintenance flag may be on a write (the CLI waits longer than this after switching it). */
const CACHE_MS = 1000;
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export interface MaintenanceState {
  enabled: boolean;
  since: Date | null;
  reason: string | null;
}

/**
 * Maintenance mode (ops.md §6 step 2): writes are refused with 503 `MAINTENANCE`, reads are
 * served. The state is one database row, so every API instance of a deployment sees it.
 */
export class Maintenance {
  constructor(private readonly db: Kysely<Database>) {}

  async state(): Promise<MaintenanceState> {
    const row = await this.db
      .selectFrom("operations_maintenance")
      .select(["enabled", "since", "reason"])
      .where("id", "=", 1)
      .executeTakeFirst();
    return row
      ? { enabled: row.enabled, since: row.since ? new Date(row.since) : null, reason: row.reason }
      : { enabled: false, since: null, reason: null };
  }

  /**
   * The state as read at most CACHE_MS ago: a database round trip per write would serialise
   * every request on the embedded database's single connection. Another instance's change
   * is seen within CACHE_MS; this instance's own at once.
   */
  async #recentState(): Promise<MaintenanceState> {
    if (!this.#cached || performance.now() - this.#cached.at > CACHE_MS) {
      this.#cached = { at: performance.now(), state: this.state() };
      this.#cached.state.catch(() => (this.#cached = undefined));
    }
    return this.#cached.state;
  }

  #cached: { at: number; state: Promise<MaintenanceState> } | undefined;

  async set(enabled: boolean, reason: string | null): Promise<MaintenanceState> {
    this.#cached = undefined;
    const values = { enabled, since: enabled ? new Date() : null, reason: enabled ? reason : null };
    await this.db
      .insertInto("operations_maintenance")
      .values({ id: 1, ...values })
      .onConflict((c) => c.column("id").doUpdateSet(values))
      .execute();
    return this.state();
  }

  /** The preHandler that refuses writes to `/api/v1` while maintenance is on. */
  readonly refuseWrites = async (request: FastifyRequest): Promise<void> => {
    if (READ_METHODS.has(request.method) || !request.url.startsWith("/api/v1")) return;
    if (!(await this.#recentState()).enabled) return;
    throw new ApiError(
      503,
      "MAINTENANCE",
      "DAON is in maintenance: registrations and other changes are paused, reads are served; try again later",
      { retryAfterSeconds: RETRY_AFTER_SECONDS },
      { "Retry-After": String(RETRY_AFTER_SECONDS) },
    );
  };
}

export interface MaintenanceRoutesOptions {
  maintenance: Maintenance;
  /** API_KEY_SECRET and its predecessor, read at use time. */
  opsSecrets: () => RotatingSecret;
  /** What is still on its way to the ledger and the read model: the CLI waits for both to drain. */
  progress: () => Promise<{ outboxPending: number; indexedHeight: number; ledgerHeight: number }>;
}

const MaintenanceChange = Type.Object(
  {
    enabled: Type.Boolean(),
    reason: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** `GET|POST /internal/ops/maintenance` (ops.md §13): what `daon wipe-and-reset` and `rollback` switch. */
export const maintenanceRoutes: FastifyPluginAsyncTypebox<MaintenanceRoutesOptions> = async (app, options) => {
  const { maintenance } = options;
  app.addHook("onRequest", async (request) => requireOpsToken(request, options.opsSecrets()));

  const answer = async (state: MaintenanceState) => ({
    success: true as const,
    maintenance: state.enabled,
    since: state.since?.toISOString() ?? null,
    reason: state.reason,
    ...(await options.progress()),
  });
  const schema = { hide: true, tags: ["operations"] } as const;

  app.get(
    "/internal/ops/maintenance",
    { schema: { ...schema, summary: "Maintenance mode and what is still draining" }, config: { rateLimit: false } },
    async () => answer(await maintenance.state()),
  );
  app.post(
    "/internal/ops/maintenance",
    { schema: { ...schema, summary: "Turn maintenance mode on or off", body: MaintenanceChange }, config: { rateLimit: false } },
    async (request) => answer(await maintenance.set(request.body.enabled, request.body.reason ?? null)),
  );
};
