import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { Type } from "typebox";
import type { CredentialResolver, CredentialResolvers } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { ApiError, validationError } from "../http/errors.js";
import { rateLimitStore } from "../http/rate-limit-store.js";
import type { RotatingSecret } from "../secrets/keyring.js";
import { requireOpsToken } from "./ops-token.js";

/**
 * Load-test keys (ops.md §4): short-lived credentials minted by `/internal/ops/loadtest-key`
 * for one run. They look like platform keys (`DAON_BR_` + 16 hex id + 48 hex secret) so
 * clients and log scanners treat them alike, but stand apart from platforms: a request made
 * with one is served as an anonymous caller's, is exempt from the per-IP limits, counts
 * against the key's own per-minute quota, is counted as test traffic, and its registrations
 * carry the key's tag (`loadtest:<runId>`, or `smoke` for preflight's smoke test).
 */
export interface TestTraffic {
  tag: string;
  runId: string | null;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set when the request carries a valid load-test key. */
    testTraffic?: TestTraffic;
  }
}

const KEY = /^DAON_BR_([0-9a-f]{16})([0-9a-f]{48})$/;
const RUN_ID = "^[A-Za-z0-9._-]{1,64}$";
const CACHE_MS = 30_000;
const CACHE_LIMIT = 10_000;
/** Keys outlive their run by an hour (ops.md §4): time for the recovery check and a look at the results. */
const AFTER_RUN_MS = 3600_000;
const QUOTA_WINDOW_MS = 60_000;

interface KnownKey {
  keyHash: string;
  tag: string;
  runId: string | null;
  quotaPerMinute: number;
  expiresAt: Date;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export class LoadTestKeys {
  readonly #cache = new Map<string, { key: KnownKey | undefined; at: number }>();
  readonly #quota: InstanceType<ReturnType<typeof rateLimitStore>>;

  constructor(
    private readonly db: Kysely<Database>,
    redis: Redis | undefined,
    chainId: string,
    log: Logger,
  ) {
    const Store = rateLimitStore(
      redis,
      (error) => log.warn({ err: error }, "load-test quotas fall back to memory"),
      `daon:ltq:${chainId}:`,
    );
    this.#quota = new Store();
  }

  /** A new key; the only time its secret exists outside the caller. */
  async mint(run: { purpose: "loadtest" | "smoke"; runId?: string; durationSeconds: number; users: number; quotaPerMinute?: number }) {
    const id = randomBytes(8).toString("hex");
    const key = `DAON_BR_${id}${randomBytes(24).toString("hex")}`;
    const tag = run.purpose === "smoke" ? "smoke" : `loadtest:${run.runId}`;
    // Two requests a second per virtual user, at least ten a second: room for the polling iterations.
    const quotaPerMinute = run.quotaPerMinute ?? Math.max(600, run.users * 120);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + run.durationSeconds * 1000 + AFTER_RUN_MS);
    await this.db
      .insertInto("loadtest_keys")
      .values({
        id,
        key_hash: sha256(key),
        tag,
        run_id: run.runId ?? null,
        quota_per_minute: quotaPerMinute,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute();
    return { key, keyId: id, tag, runId: run.runId ?? null, quotaPerMinute, expiresAt: expiresAt.toISOString() };
  }

  /**
   * Platform-key resolution with load-test keys in front: a load-test key is checked here
   * (expired → 401, over quota → 429) and marks the request as test traffic; any other key
   * goes to the platform resolver, if there is one.
   */
  resolvers(resolvers: CredentialResolvers): CredentialResolvers {
    const platform: CredentialResolver = async (credential, request) => {
      const match = KEY.exec(credential);
      const known = match ? await this.#find(match[1]) : undefined;
      if (!known) return resolvers.platform?.(credential, request);
      const given = Buffer.from(sha256(credential));
      if (!timingSafeEqual(given, Buffer.from(known.keyHash))) return resolvers.platform?.(credential, request);
      if (known.expiresAt.getTime() <= Date.now()) throw new ApiError(401, "UNAUTHORIZED", "this load-test key has expired");
      // Test traffic from here on, refused or not: the launch report leaves it out.
      request.testTraffic = { tag: known.tag, runId: known.runId };
      checkRunHeader(request, known);
      await this.#count(match![1], known.quotaPerMinute);
      return { kind: "anonymous" };
    };
    return { ...resolvers, platform };
  }

  async #find(id: string): Promise<KnownKey | undefined> {
    const cached = this.#cache.get(id);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.key;
    const row = await this.db.selectFrom("loadtest_keys").selectAll().where("id", "=", id).executeTakeFirst();
    const key = row
      ? {
          keyHash: row.key_hash,
          tag: row.tag,
          runId: row.run_id,
          quotaPerMinute: row.quota_per_minute,
          expiresAt: new Date(row.expires_at),
        }
      : undefined;
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(id, { key, at: Date.now() });
    return key;
  }

  async #count(id: string, quotaPerMinute: number): Promise<void> {
    const { current, ttl } = await new Promise<{ current: number; ttl: number }>((resolve, reject) =>
      this.#quota.incr(id, (error, result) => (error || !result ? reject(error) : resolve(result)), QUOTA_WINDOW_MS),
    );
    if (current <= quotaPerMinute) return;
    const retryAfter = String(Math.max(1, Math.ceil(ttl / 1000)));
    throw new ApiError(
      429,
      "QUOTA_EXCEEDED",
      `this load-test key's quota of ${quotaPerMinute} requests a minute is used up`,
      { perMinute: quotaPerMinute },
      { "Retry-After": retryAfter },
    );
  }
}

/** `X-DAON-Load-Test`, when sent, must name the key's own run. */
function checkRunHeader(request: FastifyRequest, key: KnownKey): void {
  const header = request.headers["x-daon-load-test"];
  if (header === undefined || key.runId === null) return;
  if (header !== key.runId) {
    throw validationError([{ field: "headers.x-daon-load-test", message: "must be the run id of the load-test key" }]);
  }
}

export interface LoadTestKeyRouteOptions {
  keys: LoadTestKeys;
  opsSecrets: () => RotatingSecret;
}

const MintBody = Type.Object(
  {
    purpose: Type.Optional(Type.Union([Type.Literal("loadtest"), Type.Literal("smoke")], { default: "loadtest" })),
    runId: Type.Optional(Type.String({ pattern: RUN_ID })),
    durationSeconds: Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600, description: "how long the run lasts; the key expires 1 h after" }),
    users: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1 })),
    quotaPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  },
  { additionalProperties: false },
);

/** `POST /internal/ops/loadtest-key` (ops.md §4, §13): mints a key for one run. */
export const loadTestKeyRoute: FastifyPluginAsyncTypebox<LoadTestKeyRouteOptions> = async (app, options) => {
  app.addHook("onRequest", async (request) => requireOpsToken(request, options.opsSecrets()));
  app.post(
    "/internal/ops/loadtest-key",
    {
      config: { rateLimit: false },
      schema: { hide: true, tags: ["operations"], summary: "Mint a key for one load test or smoke run", body: MintBody },
    },
    async (request, reply) => {
      const body = request.body;
      const purpose = body.purpose ?? "loadtest";
      if (purpose === "loadtest" && body.runId === undefined)
        throw validationError([{ field: "body.runId", message: "is required for a load test" }]);
      const minted = await options.keys.mint({
        purpose,
        runId: body.runId,
        durationSeconds: body.durationSeconds,
        users: body.users ?? 1,
        quotaPerMinute: body.quotaPerMinute,
      });
      request.log.info({ keyId: minted.keyId, tag: minted.tag, expiresAt: minted.expiresAt }, "minted a load-test key");
      return reply
        .code(201)
        .header("Cache-Control", "no-store")
        .send({ success: true, ...minted });
    },
  );
};
