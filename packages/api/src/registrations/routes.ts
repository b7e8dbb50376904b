import { Transform } from "node:stream";
import { hashRawText } from "@daon/core";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest, RequestPayload } from "fastify";
import { type Static, Type } from "typebox";
import { ApiError, validationError } from "../http/errors.js";
import type { Confirmations } from "../ledger/confirmations.js";
import type { Indexer } from "../ledger/indexer.js";
import type { Metrics } from "../observability/metrics.js";
import { ConfirmedCache } from "./confirmed-cache.js";
import { contentHashOf, type ProtectContent, type ProtectFields, prepareRegistration } from "./protect-input.js";
import { registrationObject, type RegistrationRow } from "./registration.js";
import type { RegistrationStore } from "./registration-store.js";
import type { ProtectOwner } from "../platforms/platform-protect.js";

export interface RegistrationRoutesOptions {
  store: RegistrationStore;
  confirmations: Confirmations;
  indexer: Indexer;
  metrics: Metrics;
  chainId: string;
  verificationBaseUrl: string;
  protectWaitMs: number;
  fileBodyLimit: number;
  jsonBodyLimit: number;
  protectRateLimit: { max: number; timeWindow: number };
  /** PROTECT_REQUIRE_AUTH: anonymous protect is refused (401). */
  protectRequiresAuth?: boolean;
  /** A signed-in creator's protect limit per account and window (api.md §7: 120/min). */
  accountProtectRateLimitMax?: number;
  /** Platform keys (platforms/): whom a registration is for, and what the platform's answer adds; also serves /broker/protect. */
  platformOwner?: (request: FastifyRequest, username: string | undefined, broker: boolean) => Promise<ProtectOwner | undefined>;
}

const Hash = Type.String({ maxLength: 200, description: "64 hex characters, optionally sha256:-prefixed" });
const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  description: "title, type, description, author, fingerprint (public, on the ledger) and extra keys",
});
/**
 * A string or null (= absent). One `type` list, not a union: with coerceTypes, ajv would make
 * null the union's first branch's "" and refuse it as an unknown licence or bad address.
 */
const NullableString = (maxLength: number) => Type.Unsafe<string | null>({ type: ["string", "null"], maxLength });
const Fields = {
  metadata: Type.Optional(Metadata),
  license: Type.Optional(NullableString(64)),
  ai_training_policy: Type.Optional(Type.String({ maxLength: 32 })),
  licensing_email: Type.Optional(NullableString(254)),
  licensing_uri: Type.Optional(NullableString(2048)),
};
const Username = Type.Optional(Type.String({ maxLength: 300, description: "platform keys only: the platform's user" }));
const ProtectJson = Type.Object({ content: Type.Optional(Type.String()), contentHash: Type.Optional(Hash), ...Fields, username: Username });
const FileQuery = Type.Object({
  title: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  license: Type.Optional(Type.String()),
  ai_training_policy: Type.Optional(Type.String()),
  licensing_email: Type.Optional(Type.String()),
  licensing_uri: Type.Optional(Type.String()),
  username: Username,
  wait: Type.Optional(Type.String({ maxLength: 8 })),
});
const Registration = Type.Object({}, { additionalProperties: true, description: "The registration object (api.md §2.2)" });
const ErrorEnvelope = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }, { additionalProperties: true }),
});

/** `wait` as api.md says: true (default) → PROTECT_WAIT_MS, false → none, seconds → up to 30 s. */
export function waitMs(wait: string | undefined, defaultMs: number): number {
  if (wait === undefined || wait === "true") return defaultMs;
  if (wait === "false" || wait === "0") return 0;
  if (/^\d+(\.\d+)?$/.test(wait) && Number(wait) <= 30) return Number(wait) * 1000;
  throw validationError([{ field: "wait", message: "must be true, false or a number of seconds up to 30" }]);
}

/**
 * The route's bodyLimit is the file limit; JSON bodies get the JSON limit (api.md §7), by
 * Content-Length when given, else counted while read.
 */
function jsonBodyLimit(limit: number) {
  const tooLarge = (received?: number) =>
    new ApiError(413, "PAYLOAD_TOO_LARGE", "the request body is too large", { limit, ...(received ? { received } : {}) });
  return async (request: FastifyRequest, _reply: unknown, payload: RequestPayload) => {
    const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/octet-stream") return payload;
    const declared = Number(request.headers["content-length"]);
    if (declared > limit) throw tooLarge(declared);
    let received = 0;
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          received += chunk.length;
          callback(received > limit ? tooLarge() : null, chunk);
        },
      }),
    );
  };
}

export const registrationRoutes: FastifyPluginAsyncTypebox<RegistrationRoutesOptions> = async (app, options) => {
  const { store, confirmations, indexer, metrics } = options;
  const limitJson = jsonBodyLimit(options.jsonBodyLimit);
  const confirmedCache = new ConfirmedCache();
  confirmations.onChanged((hashes) => confirmedCache.forget(hashes));
  const answer = (row: RegistrationRow, existing: boolean) =>
    registrationObject(row, { chainId: options.chainId, verificationBaseUrl: options.verificationBaseUrl, existing });
  const confirmedAmong = async (hashes: string[]) =>
    new Set([...(await store.statusOf(hashes)).values()].filter((r) => r.status === "confirmed").map((r) => r.content_hash));

  async function protect(
    content: ProtectContent,
    fields: ProtectFields,
    wait: string | undefined,
    source: string | null,
    ownerId: string | null = null,
    owner?: ProtectOwner,
  ) {
    const registration = { ...prepareRegistration(content, fields, owner ?? { platform: "api", ownerId }), source };
    const waitFor = waitMs(wait, options.protectWaitMs);
    const { row, created } = await store.create(registration);
    metrics.registrations.inc({ status: created ? "created" : "existing" });
    if (!created) return { status: 200, body: { success: true, ...answer(row, true), ...(await owner?.describe(row)) } };
    // No waiting while the ledger is known to be down: the registration is safe in the outbox.
    const confirmed = waitFor > 0 && !indexer.lastError && (await confirmations.waitFor([row.content_hash], waitFor, confirmedAmong));
    const latest = confirmed ? ((await store.find(row.content_hash)) ?? row) : row;
    return {
      status: latest.status === "confirmed" ? 201 : 202,
      body: { success: true, ...answer(latest, false), ...(await owner?.describe(latest)) },
    };
  }

  for (const url of ["/api/v1/protect", "/api/v1/broker/protect"])
    app.post(
      url,
      {
        bodyLimit: options.fileBodyLimit,
        preParsing: limitJson,
        config: {
          // Anonymous callers are limited per client IP, signed-in creators per account.
          rateLimit: {
            ...options.protectRateLimit,
            keyGenerator: (request: FastifyRequest) =>
              request.caller?.kind === "user" ? `account:${request.caller.accountId}` : request.ip,
            max: (request: FastifyRequest) =>
              request.caller?.kind === "user" ? (options.accountProtectRateLimitMax ?? 120) : options.protectRateLimit.max,
          },
        },
        schema: {
          summary: "Register a work: text, a file's bytes (application/octet-stream), or a pre-computed hash",
          tags: ["content"],
          querystring: FileQuery,
          body: Type.Union([ProtectJson, Type.Unsafe<Buffer>({ type: "string", format: "binary" })]),
          response: { 200: Registration, 201: Registration, 202: Registration, "4xx": ErrorEnvelope, "5xx": ErrorEnvelope },
        },
      },
      async (request, reply) => {
        if (options.protectRequiresAuth && request.caller.kind === "anonymous" && !request.testTraffic) {
          throw new ApiError(401, "UNAUTHORIZED", "sign in to protect works (PROTECT_REQUIRE_AUTH)");
        }
        const username = Buffer.isBuffer(request.body) ? request.query.username : (request.body as { username?: string } | null)?.username;
        const owner = await options.platformOwner?.(request, username, request.routeOptions.url === "/api/v1/broker/protect");
        let content: ProtectContent;
        let fields: ProtectFields;
        if (Buffer.isBuffer(request.body)) {
          const q = request.query;
          content = { kind: "file", bytes: request.body };
          fields = {
            metadata: Object.fromEntries(
              Object.entries({ title: q.title, type: q.type, description: q.description }).filter(([, v]) => v !== undefined),
            ),
            license: q.license,
            ai_training_policy: q.ai_training_policy,
            licensing_email: q.licensing_email,
            licensing_uri: q.licensing_uri,
          };
        } else {
          const body = request.body as Static<typeof ProtectJson>;
          if ((body.content === undefined) === (body.contentHash === undefined)) {
            throw validationError([{ field: "content", message: "send exactly one of content and contentHash" }]);
          }
          content = body.content !== undefined ? { kind: "text", content: body.content } : { kind: "hash", contentHash: body.contentHash! };
          fields = body;
        }
        const ownerId = request.caller.kind === "user" ? request.caller.ownerId : null;
        const { status, body } = await protect(content, fields, request.query.wait, request.testTraffic?.tag ?? null, ownerId, owner);
        return reply.code(status).send(body);
      },
    );

  app.get(
    "/api/v1/verify/:hash",
    { schema: { summary: "Look up a registration by content hash", tags: ["content"], params: Type.Object({ hash: Hash }) } },
    async (request, reply) => {
      const contentHash = contentHashOf({ kind: "hash", contentHash: request.params.hash });
      const row = await confirmedCache.find(contentHash, (hash) => store.find(hash));
      if (!row) return reply.code(404).send(notFound(contentHash, request.id));
      return { success: true, isValid: true, ...answer(row, true) };
    },
  );

  app.post(
    "/api/v1/verify-content",
    {
      bodyLimit: options.fileBodyLimit,
      preParsing: limitJson,
      config: { rateLimit: options.protectRateLimit },
      schema: {
        summary: "Look up a registration by the content itself",
        tags: ["content"],
        // `content` optional as in protect's schema, so a file's bytes (a Buffer) pass; the handler requires it for JSON.
        body: Type.Union([
          Type.Object({ content: Type.Optional(Type.String()) }),
          Type.Unsafe<Buffer>({ type: "string", format: "binary" }),
        ]),
      },
    },
    async (request, reply) => {
      const candidates: { hash: string; matchedBy: string }[] = [];
      let unmatched: unknown;
      if (Buffer.isBuffer(request.body)) {
        candidates.push({ hash: contentHashOf({ kind: "file", bytes: request.body }), matchedBy: "file" });
      } else {
        // The schema lets a bare JSON string through (the file branch); only {content: string} is text.
        const body = request.body as { content?: unknown } | null;
        const content = typeof body === "object" && body !== null && !Array.isArray(body) ? body.content : undefined;
        if (typeof content !== "string") throw validationError([{ field: "content", message: "send {content: string} as JSON" }]);
        // Text that canonicalises to nothing (whitespace only) can still match by its raw hash.
        const canonical = attempt(() => contentHashOf({ kind: "text", content }));
        if (canonical.hash) candidates.push({ hash: canonical.hash, matchedBy: "canonical" });
        const raw = attempt(() => hashRawText(content));
        if (raw.hash) candidates.push({ hash: raw.hash, matchedBy: "raw" });
        if (!canonical.hash) unmatched = canonical.error;
      }
      for (const { hash, matchedBy } of candidates) {
        const row = await store.find(hash);
        if (row) return { success: true, isValid: true, matchedBy, ...answer(row, true) };
      }
      // Nothing matched: text that is no text at all is refused as protect refuses it.
      if (unmatched) throw unmatched;
      return reply.code(404).send(notFound(candidates[0].hash, request.id));
    },
  );

  const history = async (hash: string) => {
    const contentHash = contentHashOf({ kind: "hash", contentHash: hash });
    const row = await store.find(contentHash);
    if (!row) throw new ApiError(404, "NOT_FOUND", `no registration for ${contentHash}`);
    const transfers = await store.transfersOf(contentHash);
    return {
      success: true,
      contentHash,
      currentOwner: row.owner_id,
      registeredAt: new Date(row.created_at).toISOString(),
      events: [
        {
          type: "registered",
          // The first owner: the registration's row holds the current one.
          owner: transfers.length > 0 ? transfers[0].from : row.owner_id,
          status: row.status,
          blockHeight: row.block_height === null ? null : Number(row.block_height),
          txHash: row.tx_hash,
          blockTime: row.block_time ? new Date(row.block_time).toISOString() : null,
        },
        ...transfers,
      ],
    };
  };
  const historySchema = {
    summary: "A work's registration and ownership history, oldest first",
    tags: ["content"],
    params: Type.Object({ hash: Hash }),
  };
  app.get("/api/v1/content/:hash/history", { schema: historySchema }, (request) => history(request.params.hash));
  app.get("/api/v1/transfer-history/:hash", { schema: { ...historySchema, summary: "Alias of /content/:hash/history" } }, (request) =>
    history(request.params.hash),
  );
};

function attempt(hash: () => string): { hash?: string; error?: unknown } {
  try {
    return { hash: hash() };
  } catch (error) {
    return { error };
  }
}

function notFound(contentHash: string, requestId: string) {
  return {
    success: false,
    isValid: false,
    contentHash,
    error: { code: "NOT_FOUND", message: "no registration for this content", requestId },
  };
}
