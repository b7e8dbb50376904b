import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type Static, Type } from "typebox";
import { Compile } from "typebox/compile";
import { ApiError, unavailable, validationError } from "../http/errors.js";
import type { ProtectOwner } from "../platforms/platform-protect.js";
import type { ProtectContent, ProtectFields } from "./protect-input.js";
import { prepareRegistration } from "./protect-input.js";
import { type RegistrationRow, registrationObject } from "./registration.js";
import type { NewRegistration } from "./registration-store.js";
import { type RegistrationRoutesOptions, waitMs } from "./routes.js";

/** What single protect is configured with, but files (bulk takes JSON only). */
export type BulkRouteOptions = Omit<RegistrationRoutesOptions, "fileBodyLimit">;

const MAX_WORKS = 100;

/** A string or null (= absent), as protect's schema has it (one `type` list, not a union). */
const NullableString = (maxLength: number) => Type.Unsafe<string | null>({ type: ["string", "null"], maxLength });
const Fields = {
  metadata: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), { description: "title, type, description, author, fingerprint (public) and extra keys" }),
  ),
  license: Type.Optional(NullableString(64)),
  ai_training_policy: Type.Optional(Type.String({ maxLength: 32 })),
  licensing_email: Type.Optional(NullableString(254)),
  licensing_uri: Type.Optional(NullableString(2048)),
};
/** One work: `/protect`'s JSON fields. Checked one by one in the handler, so a bad work fails alone. */
const Work = Type.Object({
  content: Type.Optional(Type.String()),
  contentHash: Type.Optional(Type.String({ maxLength: 200 })),
  ...Fields,
  username: Type.Optional(Type.String({ maxLength: 300, description: "platform keys only: the platform's user" })),
});
const checkWork = Compile(Work);
const BulkBody = Type.Object({
  works: Type.Array(
    Type.Unknown({
      description:
        "A work as /protect takes it as JSON: content or contentHash, metadata, license, ai_training_policy, licensing_email, licensing_uri, username",
    }),
    { minItems: 1, maxItems: MAX_WORKS },
  ),
  ...Fields,
});
const BulkAnswer = Type.Object({
  success: Type.Literal(true),
  total: Type.Integer(),
  created: Type.Integer(),
  existing: Type.Integer(),
  failed: Type.Integer(),
  protected: Type.Integer(),
  results: Type.Array(
    Type.Object(
      { index: Type.Integer(), success: Type.Boolean() },
      { additionalProperties: true, description: "the registration object (api.md §2.2), or `error: {code, message, details?}`" },
    ),
  ),
});
const ErrorEnvelope = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }, { additionalProperties: true }),
});

type Defaults = Omit<Static<typeof BulkBody>, "works">;
type Prepared = { registration: NewRegistration; owner?: ProtectOwner } | { error: ApiError };

/** Works in a body that has 1 to 100 of them; anything else costs one unit, like any refused request. */
function worksIn(body: unknown): number {
  const works = (body as { works?: unknown } | null)?.works;
  return Array.isArray(works) && works.length >= 1 && works.length <= MAX_WORKS ? works.length : 1;
}

/**
 * `POST /api/v1/protect/bulk` (api.md §2.3): up to 100 works, each handled as one `/protect`;
 * invalid ones fail alone, valid ones commit in one transaction. Each work costs one unit of the
 * caller's limit (anonymous: the per-IP protect limit; signed in: the account's) or quota.
 */
export const bulkProtectRoute: FastifyPluginAsyncTypebox<BulkRouteOptions> = async (app, options) => {
  const { store, confirmations, indexer, metrics } = options;
  // The counters single protect's limit keeps: a work costs the same unit whichever route brings it.
  const protectCounters = app.rateLimits.child({ routeInfo: { method: "POST", url: "/api/v1/protect" } });
  const answer = (row: RegistrationRow, existing: boolean) =>
    registrationObject(row, { chainId: options.chainId, verificationBaseUrl: options.verificationBaseUrl, existing });
  const confirmedAmong = async (hashes: string[]) =>
    new Set([...(await store.statusOf(hashes)).values()].filter((r) => r.status === "confirmed").map((r) => r.content_hash));

  /** Takes one unit per work from the caller's protect limit before anything is written; too few left → 429. */
  async function takeUnits(request: FastifyRequest, reply: FastifyReply, units: number): Promise<void> {
    // Platform keys pay from their quota (platformQuotaUnits), load-test keys from their own.
    if (request.caller.kind === "platform" || request.testTraffic) return;
    const user = request.caller.kind === "user" ? request.caller : undefined;
    const key = user ? `account:${user.accountId}` : request.ip;
    const max = user ? (options.accountProtectRateLimitMax ?? 120) : options.protectRateLimit.max;
    const taken = await protectCounters.take(key, units, options.protectRateLimit.timeWindow, max);
    const remaining = Math.max(0, max - taken.current);
    const reset = String(Math.ceil(taken.ttl / 1000));
    const headers = { "RateLimit-Limit": String(max), "RateLimit-Remaining": String(remaining), "RateLimit-Reset": reset };
    if (!taken.allowed) {
      throw new ApiError(
        429,
        "RATE_LIMITED",
        `${units} works need ${units} units of the protect limit, ${remaining} are left; retry in ${reset} s`,
        { limit: max, requested: units, remaining },
        { ...headers, "Retry-After": reset },
      );
    }
    reply.headers(headers);
  }

  app.post(
    "/api/v1/protect/bulk",
    {
      bodyLimit: options.jsonBodyLimit,
      config: { platformQuotaUnits: (request: FastifyRequest) => worksIn(request.body) },
      schema: {
        summary: "Register up to 100 works in one call; each succeeds or fails alone",
        description:
          "Top-level license, ai_training_policy, licensing_email, licensing_uri and metadata (merged key by key) are defaults for every work. Each work costs one unit of the rate limit or platform quota.",
        tags: ["content"],
        querystring: Type.Object({ wait: Type.Optional(Type.String({ maxLength: 8 })) }),
        body: BulkBody,
        response: { 200: BulkAnswer, "4xx": ErrorEnvelope, "5xx": ErrorEnvelope },
      },
    },
    async (request, reply) => {
      if (options.protectRequiresAuth && request.caller.kind === "anonymous" && !request.testTraffic) {
        throw new ApiError(401, "UNAUTHORIZED", "sign in to protect works (PROTECT_REQUIRE_AUTH)");
      }
      const { works, ...defaults } = request.body;
      const waitFor = waitMs(request.query.wait, options.protectWaitMs);
      // A platform key without broker:register is refused as a whole, before any unit is taken.
      const platformOwner = await options.platformOwner?.(request, undefined, false);
      await takeUnits(request, reply, works.length);

      const owners = new Map<string, Promise<ProtectOwner | undefined>>();
      const ownerOf = (username: string | undefined) => {
        if (username === undefined) return Promise.resolve(platformOwner);
        if (!owners.has(username)) owners.set(username, options.platformOwner?.(request, username, false) ?? Promise.resolve(undefined));
        return owners.get(username)!;
      };
      const prepared: Prepared[] = [];
      for (const work of works) {
        try {
          prepared.push(await prepareWork(work, defaults, ownerOf, request));
        } catch (error) {
          // A work the API refuses fails alone; anything else (the database) fails the request.
          if (!(error instanceof ApiError) || error.statusCode !== 400) throw error;
          prepared.push({ error });
        }
      }

      const valid = prepared.filter((p) => "registration" in p);
      let committed: Awaited<ReturnType<typeof store.createMany>>;
      try {
        committed = await store.createMany(valid.map((p) => p.registration));
      } catch (error) {
        request.log.error({ err: error }, "bulk registrations not committed");
        throw unavailable("database");
      }
      for (const { created } of committed) metrics.registrations.inc({ status: created ? "created" : "existing" });
      const createdHashes = committed.filter((c) => c.created).map((c) => c.row.content_hash);
      // No waiting while the ledger is known to be down: the registrations are safe in the outbox.
      if (createdHashes.length > 0 && waitFor > 0 && !indexer.lastError)
        await confirmations.waitFor(createdHashes, waitFor, confirmedAmong);
      const latest = waitFor > 0 ? await store.statusOf(createdHashes) : new Map<string, RegistrationRow>();

      // createMany answers the valid works in their order: pair them back with their index.
      const outcomes = committed.values();
      const results = await Promise.all(
        prepared.map((item, index) => {
          if ("error" in item) {
            const { code, message, details } = item.error;
            return { index, success: false, error: { code, message, ...(details ? { details } : {}) } };
          }
          const { row, created } = outcomes.next().value!;
          const shown = created ? (latest.get(row.content_hash) ?? row) : row;
          return (async () => ({ index, success: true, ...answer(shown, !created), ...(await item.owner?.describe(shown)) }))();
        }),
      );
      const created = createdHashes.length;
      const existing = committed.length - created;
      return reply.code(200).send({
        success: true as const,
        total: works.length,
        created,
        existing,
        failed: works.length - committed.length,
        protected: created + existing,
        results,
      });
    },
  );
};

/** One work as `/protect` would take it: its fields over the defaults, its owner, validated and hashed. */
async function prepareWork(
  work: unknown,
  defaults: Defaults,
  ownerOf: (username: string | undefined) => Promise<ProtectOwner | undefined>,
  request: FastifyRequest,
): Promise<Prepared> {
  if (!checkWork.Check(work)) {
    throw validationError(
      [...checkWork.Errors(work)].map((e) => ({
        field: e.instancePath.split("/").filter(Boolean).join(".") || "work",
        message: e.message,
      })),
    );
  }
  if ((work.content === undefined) === (work.contentHash === undefined)) {
    throw validationError([{ field: "content", message: "send exactly one of content and contentHash" }]);
  }
  const content: ProtectContent =
    work.content !== undefined ? { kind: "text", content: work.content } : { kind: "hash", contentHash: work.contentHash! };
  const fields: ProtectFields = {
    metadata: defaults.metadata || work.metadata ? { ...defaults.metadata, ...work.metadata } : undefined,
    license: work.license !== undefined ? work.license : defaults.license,
    ai_training_policy: work.ai_training_policy ?? defaults.ai_training_policy,
    licensing_email: work.licensing_email !== undefined ? work.licensing_email : defaults.licensing_email,
    licensing_uri: work.licensing_uri !== undefined ? work.licensing_uri : defaults.licensing_uri,
  };
  const owner = await ownerOf(work.username);
  const ownerId = request.caller.kind === "user" ? request.caller.ownerId : null;
  const registration = prepareRegistration(content, fields, owner ?? { platform: "api", ownerId });
  return { registration: { ...registration, source: request.testTraffic?.tag ?? null }, owner };
}
