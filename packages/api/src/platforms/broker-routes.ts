import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Kysely } from "kysely";
import { Type } from "typebox";
import { awaitTransfer, requestTransfer, transferObject } from "../accounts/transfers.js";
import { worksOf } from "../accounts/works.js";
import { type PlatformCaller, requirePlatform } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { ApiError, validationError } from "../http/errors.js";
import type { Confirmations } from "../ledger/confirmations.js";
import type { Indexer } from "../ledger/indexer.js";
import { contentHashOf } from "../registrations/protect-input.js";
import { type RegistrationRow, registrationObject } from "../registrations/registration.js";
import type { RegistrationStore } from "../registrations/registration-store.js";
import { waitMs } from "../registrations/routes.js";
import { ownPlatformObject, USERNAME } from "./platform.js";
import { keyObject, type PlatformKeys, parseScopes, requireScopesWithin } from "./platform-keys.js";
import { platformRequest } from "./platform-requests.js";
import type { PlatformUsers } from "./platform-users.js";
import { quotaObject } from "./quotas.js";
import type { UsageLog } from "./usage.js";

export interface BrokerRoutesOptions {
  db: Kysely<Database>;
  store: RegistrationStore;
  keys: PlatformKeys;
  users: PlatformUsers;
  usage: UsageLog;
  confirmations: Confirmations;
  indexer: Indexer;
  chainId: string;
  verificationBaseUrl: string;
  protectWaitMs: number;
}

export const KEY_SHOWN_ONCE = "Store this API key securely: it is shown only once and cannot be recovered.";

const DAY = 24 * 3600_000;
const MAX_USAGE_DAYS = 31;
const Hash = Type.String({ maxLength: 200, description: "64 hex characters, optionally sha256:-prefixed" });
const Identity = Type.String({ minLength: 1, maxLength: 600, description: "username@<your domain>, or the username alone" });
const Scopes = Type.Array(Type.String({ maxLength: 32 }), {
  maxItems: 4,
  uniqueItems: true,
  description: "broker:register, broker:verify, broker:transfer, broker:webhooks",
});
export const NewKeyBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  scopes: Type.Optional(Scopes),
  expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
});
const Page = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 255 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
});

/** A key's expiry from `expires_in_days`. */
export const expiryIn = (days: number | undefined, now = new Date()) => (days === undefined ? null : new Date(now.getTime() + days * DAY));

/** `username@domain` or `username`, of the caller's own domain (another domain is FORBIDDEN). */
function usernameOf(identity: string, caller: PlatformCaller, field: string): string {
  const at = identity.lastIndexOf("@");
  const username = at === -1 ? identity : identity.slice(0, at);
  const domain = at === -1 ? caller.domain : identity.slice(at + 1).toLowerCase();
  if (!USERNAME.test(username))
    throw validationError([{ field, message: "must be username@domain with a username of [A-Za-z0-9_-]{1,255}" }]);
  if (domain !== caller.domain) throw new ApiError(403, "FORBIDDEN", `${field} must be a user of ${caller.domain}`);
  return username;
}

/** Parses `start_date` and `end_date` (dates or ISO times, UTC) into [start, end), at most 31 days. */
function usageRange(query: { start_date?: string; end_date?: string }, now = new Date()): [Date, Date] {
  const parse = (value: string, field: string, endOfDay: boolean) => {
    const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
    const at = new Date(dateOnly ? `${value}T00:00:00.000Z` : value);
    if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
      throw validationError([{ field: `querystring.${field}`, message: "must be a date (YYYY-MM-DD) or an ISO 8601 time" }]);
    }
    return dateOnly && endOfDay ? new Date(at.getTime() + DAY) : at;
  };
  const end = query.end_date ? parse(query.end_date, "end_date", true) : now;
  const start = query.start_date ? parse(query.start_date, "start_date", false) : new Date(end.getTime() - 7 * DAY);
  if (start >= end) throw validationError([{ field: "querystring.start_date", message: "must be before end_date" }]);
  if (end.getTime() - start.getTime() > MAX_USAGE_DAYS * DAY) {
    throw validationError([{ field: "querystring.end_date", message: `the range must be at most ${MAX_USAGE_DAYS} days` }]);
  }
  return [start, end];
}

/** `/api/v1/broker/…` (api.md §4): what a platform does with its key, besides protect (registrations) and webhooks. */
export const brokerRoutes: FastifyPluginAsyncTypebox<BrokerRoutesOptions> = async (app, options) => {
  const { db, store, keys, users, usage } = options;
  const docs = { tags: ["platforms"], description: "Requires `Authorization: Bearer DAON_BR_…` (a platform key)." };

  /** The registration object as this platform sees it: with `ownerIdentity` when the owner is one of its users. */
  const registrationFor = async (caller: PlatformCaller, row: RegistrationRow, knownUsername?: string) => {
    const username = knownUsername ?? (await users.usernameOf(caller.platformId, row.owner_id));
    return {
      ...registrationObject(row, { chainId: options.chainId, verificationBaseUrl: options.verificationBaseUrl, existing: true }),
      ownerIdentity: username ? `${username}@${caller.domain}` : null,
    };
  };

  app.get(
    "/api/v1/broker/verify",
    { schema: { summary: "Who am I: the platform, this key and the quota left", ...docs } },
    async (request) => {
      requirePlatform(request);
      const { platform, key, quota } = platformRequest(request);
      const shown = keyObject(key);
      return {
        success: true,
        broker: ownPlatformObject(platform),
        api_key: { id: shown.id, prefix: shown.prefix, name: shown.name, scopes: shown.scopes, expires_at: shown.expires_at },
        rate_limits: quota ? quotaObject(quota) : null,
      };
    },
  );

  app.get(
    "/api/v1/broker/content/:hash",
    { schema: { summary: "A registration, with ownerIdentity for this platform's users", ...docs, params: Type.Object({ hash: Hash }) } },
    async (request) => {
      const caller = requirePlatform(request, "broker:verify");
      const contentHash = contentHashOf({ kind: "hash", contentHash: request.params.hash });
      const row = await store.find(contentHash);
      if (!row) throw new ApiError(404, "NOT_FOUND", `no registration for ${contentHash}`, { contentHash });
      return { success: true, isValid: true, ...(await registrationFor(caller, row)) };
    },
  );

  app.get(
    "/api/v1/broker/content",
    { schema: { summary: "A page of the works one of this platform's users owns, newest first", ...docs, querystring: Page } },
    async (request) => {
      const caller = requirePlatform(request, "broker:verify");
      const { username, limit, cursor } = request.query;
      if (!USERNAME.test(username)) throw validationError([{ field: "querystring.username", message: "must be [A-Za-z0-9_-]{1,255}" }]);
      const ownerId = await users.find(caller.platformId, username);
      const page = ownerId ? await worksOf(db, ownerId, { limit, cursor }) : { items: [], nextCursor: null };
      return {
        success: true,
        ownerIdentity: `${username}@${caller.domain}`,
        items: await Promise.all(page.items.map((row) => registrationFor(caller, row, username))),
        nextCursor: page.nextCursor,
      };
    },
  );

  app.post(
    "/api/v1/broker/transfer",
    {
      schema: {
        summary: "Move a work from one of this platform's users to another",
        ...docs,
        querystring: Type.Object({ wait: Type.Optional(Type.String({ maxLength: 8 })) }),
        body: Type.Object({
          contentHash: Hash,
          currentOwner: Identity,
          newOwner: Identity,
          reason: Type.Optional(Type.Unsafe<string | null>({ type: ["string", "null"], maxLength: 500 })),
        }),
      },
    },
    async (request, reply) => {
      const caller = requirePlatform(request, "broker:transfer");
      const body = request.body;
      const wait = waitMs(request.query.wait, options.protectWaitMs);
      const contentHash = contentHashOf({ kind: "hash", contentHash: body.contentHash });
      const from = usernameOf(body.currentOwner, caller, "currentOwner");
      const to = usernameOf(body.newOwner, caller, "newOwner");
      const previousOwner = await users.find(caller.platformId, from);
      // Unknown user, unknown work or another owner: the same refusal, so nothing is revealed.
      if (!previousOwner) throw new ApiError(403, "NOT_OWNER", "the work is not owned by currentOwner");
      const newOwner = await users.ownerOf(caller.platformId, to);
      const requested = await requestTransfer(db, { contentHash, previousOwner, newOwner, reason: body.reason ?? null }).catch((error) => {
        if (error instanceof ApiError && error.code === "NOT_OWNER")
          throw new ApiError(403, "NOT_OWNER", "the work is not owned by currentOwner");
        throw error;
      });
      const transfer = await awaitTransfer(
        { db, confirmations: options.confirmations, ledgerDown: Boolean(options.indexer.lastError) },
        requested,
        wait,
      );
      return reply.code(transfer.status === "confirmed" ? 201 : 202).send({
        success: true,
        transfer: {
          ...transferObject(transfer),
          reason: transfer.reason,
          previousOwnerIdentity: `${from}@${caller.domain}`,
          newOwnerIdentity: `${to}@${caller.domain}`,
        },
      });
    },
  );

  app.get(
    "/api/v1/broker/usage",
    {
      schema: {
        summary: "This platform's calls: summary and per endpoint, method and UTC hour (at most 31 days)",
        ...docs,
        querystring: Type.Object({
          start_date: Type.Optional(Type.String({ maxLength: 40 })),
          end_date: Type.Optional(Type.String({ maxLength: 40 })),
        }),
      },
    },
    async (request) => {
      const caller = requirePlatform(request);
      const [start, end] = usageRange(request.query);
      return {
        success: true,
        start_date: start.toISOString(),
        end_date: end.toISOString(),
        ...(await usage.report(caller.platformId, start, end)),
      };
    },
  );

  app.get("/api/v1/broker/keys", { schema: { summary: "This platform's keys (never their secrets)", ...docs } }, async (request) => {
    const caller = requirePlatform(request);
    return { success: true, keys: (await keys.list(caller.platformId)).map((row) => keyObject(row)) };
  });

  app.post(
    "/api/v1/broker/keys",
    { schema: { summary: "A new key for this platform, with at most the caller's scopes; shown once", ...docs, body: NewKeyBody } },
    async (request, reply) => {
      const caller = requirePlatform(request);
      const scopes = parseScopes(request.body.scopes, "body.scopes");
      requireScopesWithin(scopes, caller.scopes);
      const issued = await keys.issue({
        platformId: caller.platformId,
        name: request.body.name,
        scopes,
        expiresAt: expiryIn(request.body.expires_in_days),
      });
      request.log.info({ platform: caller.platformId, keyId: issued.row.id, by: caller.keyId }, "platform key issued");
      return reply.code(201).send({ success: true, api_key: issued.key, key: keyObject(issued.row), warning: KEY_SHOWN_ONCE });
    },
  );

  app.delete(
    "/api/v1/broker/keys/:id",
    { schema: { summary: "Revoke one of this platform's keys", ...docs, params: Type.Object({ id: Type.String({ maxLength: 64 }) }) } },
    async (request) => {
      const caller = requirePlatform(request);
      const key = await keys.revoke(caller.platformId, request.params.id);
      if (!key) throw new ApiError(404, "NOT_FOUND", "no such key for this platform");
      request.log.info({ platform: caller.platformId, keyId: key.id, by: caller.keyId }, "platform key revoked");
      return { success: true, key: keyObject(key) };
    },
  );

  app.post(
    "/api/v1/broker/keys/rotate",
    {
      schema: {
        summary: "A new key with the caller's scopes; the caller's key expires after overlap_hours (24)",
        ...docs,
        body: Type.Object({ overlap_hours: Type.Optional(Type.Integer({ minimum: 0, maximum: 720 })) }),
      },
      // The body is optional: none means the default overlap.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const caller = requirePlatform(request);
      const { key } = platformRequest(request);
      const { issued, previous } = await keys.rotate(key, request.body.overlap_hours ?? 24);
      request.log.info({ platform: caller.platformId, keyId: issued.row.id, replaces: key.id }, "platform key rotated");
      return reply.code(201).send({
        success: true,
        api_key: issued.key,
        key: keyObject(issued.row),
        previous_key: keyObject(previous),
        warning: KEY_SHOWN_ONCE,
      });
    },
  );
};
