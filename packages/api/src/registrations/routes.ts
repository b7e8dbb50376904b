import { hashRawText } from "@daon/core";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type Static, Type } from "typebox";
import { ApiError, validationError } from "../http/errors.js";
import type { Confirmations } from "../ledger/confirmations.js";
import type { Indexer } from "../ledger/indexer.js";
import type { Metrics } from "../observability/metrics.js";
import { contentHashOf, type ProtectContent, type ProtectFields, prepareRegistration } from "./protect-input.js";
import { registrationObject, type RegistrationRow } from "./registration.js";
import type { RegistrationStore } from "./registration-store.js";

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
}

const Hash = Type.String({ maxLength: 200, description: "64 hex characters, optionally sha256:-prefixed" });
const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  description: "title, type, description, author, fingerprint (public, on the ledger) and extra keys",
});
const Fields = {
  metadata: Type.Optional(Metadata),
  license: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  ai_training_policy: Type.Optional(Type.String({ maxLength: 32 })),
  licensing_email: Type.Optional(Type.Union([Type.String({ maxLength: 254 }), Type.Null()])),
  licensing_uri: Type.Optional(Type.Union([Type.String({ maxLength: 2048 }), Type.Null()])),
};
const ProtectJson = Type.Object({ content: Type.Optional(Type.String()), contentHash: Type.Optional(Hash), ...Fields });
const FileQuery = Type.Object({
  title: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  license: Type.Optional(Type.String()),
  ai_training_policy: Type.Optional(Type.String()),
  licensing_email: Type.Optional(Type.String()),
  licensing_uri: Type.Optional(Type.String()),
  wait: Type.Optional(Type.String({ maxLength: 8 })),
});
const Registration = Type.Object({}, { additionalProperties: true, description: "The registration object (api.md §2.2)" });
const ErrorEnvelope = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }, { additionalProperties: true }),
});

/** `wait` as api.md says: true (default) → PROTECT_WAIT_MS, false → none, seconds → up to 30 s. */
function waitMs(wait: string | undefined, defaultMs: number): number {
  if (wait === undefined || wait === "true") return defaultMs;
  if (wait === "false" || wait === "0") return 0;
  if (/^\d+(\.\d+)?$/.test(wait) && Number(wait) <= 30) return Number(wait) * 1000;
  throw validationError([{ field: "wait", message: "must be true, false or a number of seconds up to 30" }]);
}

export const registrationRoutes: FastifyPluginAsyncTypebox<RegistrationRoutesOptions> = async (app, options) => {
  const { store, confirmations, indexer, metrics } = options;
  const answer = (row: RegistrationRow, existing: boolean) =>
    registrationObject(row, { chainId: options.chainId, verificationBaseUrl: options.verificationBaseUrl, existing });
  const confirmedAmong = async (hashes: string[]) =>
    new Set([...(await store.statusOf(hashes)).values()].filter((r) => r.status === "confirmed").map((r) => r.content_hash));

  async function protect(content: ProtectContent, fields: ProtectFields, wait: string | undefined) {
    const registration = prepareRegistration(content, fields, { platform: "api", ownerId: null });
    const waitFor = waitMs(wait, options.protectWaitMs);
    const earlier = await store.find(registration.contentHash);
    if (earlier) {
      metrics.registrations.inc({ status: "existing" });
      return { status: 200, body: { success: true, ...answer(earlier, true) } };
    }
    const [{ row, created }] = await store.createMany([registration]);
    metrics.registrations.inc({ status: created ? "created" : "existing" });
    if (!created) return { status: 200, body: { success: true, ...answer(row, true) } };
    // No waiting while the ledger is known to be down: the registration is safe in the outbox.
    const confirmed = waitFor > 0 && !indexer.lastError && (await confirmations.waitFor([row.content_hash], waitFor, confirmedAmong));
    const latest = confirmed ? ((await store.find(row.content_hash)) ?? row) : row;
    return { status: latest.status === "confirmed" ? 201 : 202, body: { success: true, ...answer(latest, false) } };
  }

  app.post(
    "/api/v1/protect",
    {
      bodyLimit: options.fileBodyLimit,
      config: { rateLimit: options.protectRateLimit },
      schema: {
        summary: "Register a work: text, a file's bytes (application/octet-stream), or a pre-computed hash",
        tags: ["content"],
        querystring: FileQuery,
        body: Type.Union([ProtectJson, Type.Unsafe<Buffer>({ type: "string", format: "binary" })]),
        response: { 200: Registration, 201: Registration, 202: Registration, "4xx": ErrorEnvelope, "5xx": ErrorEnvelope },
      },
    },
    async (request, reply) => {
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
      const { status, body } = await protect(content, fields, request.query.wait);
      return reply.code(status).send(body);
    },
  );

  app.get(
    "/api/v1/verify/:hash",
    { schema: { summary: "Look up a registration by content hash", tags: ["content"], params: Type.Object({ hash: Hash }) } },
    async (request, reply) => {
      const contentHash = contentHashOf({ kind: "hash", contentHash: request.params.hash });
      const row = await store.find(contentHash);
      if (!row) return reply.code(404).send(notFound(contentHash, request.id));
      return { success: true, isValid: true, ...answer(row, true) };
    },
  );

  app.post(
    "/api/v1/verify-content",
    {
      bodyLimit: options.fileBodyLimit,
      config: { rateLimit: options.protectRateLimit },
      schema: {
        summary: "Look up a registration by the content itself",
        tags: ["content"],
        body: Type.Union([Type.Object({ content: Type.String() }), Type.Unsafe<Buffer>({ type: "string", format: "binary" })]),
      },
    },
    async (request, reply) => {
      const candidates: { hash: string; matchedBy: string }[] = [];
      if (Buffer.isBuffer(request.body)) {
        candidates.push({ hash: contentHashOf({ kind: "file", bytes: request.body }), matchedBy: "file" });
      } else {
        const { content } = request.body as { content: string };
        candidates.push({ hash: contentHashOf({ kind: "text", content }), matchedBy: "canonical" });
        candidates.push({ hash: hashRawText(content), matchedBy: "raw" });
      }
      for (const { hash, matchedBy } of candidates) {
        const row = await store.find(hash);
        if (row) return { success: true, isValid: true, matchedBy, ...answer(row, true) };
      }
      return reply.code(404).send(notFound(candidates[0].hash, request.id));
    },
  );

  const history = async (hash: string) => {
    const contentHash = contentHashOf({ kind: "hash", contentHash: hash });
    const row = await store.find(contentHash);
    if (!row) throw new ApiError(404, "NOT_FOUND", `no registration for ${contentHash}`);
    return {
      success: true,
      contentHash,
      currentOwner: row.owner_id,
      registeredAt: new Date(row.created_at).toISOString(),
      events: [
        {
          type: "registered",
          owner: row.owner_id,
          status: row.status,
          blockHeight: row.block_height === null ? null : Number(row.block_height),
          txHash: row.tx_hash,
          blockTime: row.block_time ? new Date(row.block_time).toISOString() : null,
        },
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

function notFound(contentHash: string, requestId: string) {
  return {
    success: false,
    isValid: false,
    contentHash,
    error: { code: "NOT_FOUND", message: "no registration for this content", requestId },
  };
}
