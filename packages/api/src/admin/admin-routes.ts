import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { requireAdmin } from "../auth/caller.js";
import { validationError } from "../http/errors.js";
import { expiryIn, KEY_SHOWN_ONCE, NewKeyBody } from "../platforms/broker-routes.js";
import { isEd25519PublicKey, normaliseDomain, platformObject, TIERS } from "../platforms/platform.js";
import { keyObject, parseScopes } from "../platforms/platform-keys.js";
import type { PlatformStore } from "../platforms/platform-store.js";
import { type AuditLog, auditActor } from "./audit-log.js";

export interface AdminRoutesOptions {
  platforms: PlatformStore;
  audit: AuditLog;
}

const EMAIL = /^[^\s@\p{Cc}]{1,64}@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
const Tier = Type.Union(TIERS.map((t) => Type.Literal(t)));
const Status = Type.Union([Type.Literal("pending"), Type.Literal("active"), Type.Literal("suspended")]);
const Id = Type.String({ minLength: 1, maxLength: 64 });
/**
 * Nullable fields as one `type` list, not a union: with coerceTypes, ajv would turn null
 * into the first branch's 0 or "" (see registrations/routes.ts).
 */
const PublicKey = Type.Unsafe<string | null>({
  type: ["string", "null"],
  maxLength: 1000,
  description: "Ed25519 public key, base64 SPKI DER, or null",
});
const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20 });
const Cursor = Type.Optional(Type.String({ maxLength: 512 }));
const Quota = Type.Unsafe<number | null>({
  type: ["integer", "null"],
  minimum: 0,
  maximum: 100_000_000,
  description: "an override of the tier's quota, or null for the tier's",
});
const NewPlatform = Type.Object({
  domain: Type.String({ minLength: 1, maxLength: 253 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  contact_email: Type.String({ minLength: 3, maxLength: 254 }),
  certification_tier: Type.Optional(Tier),
  public_key: Type.Optional(PublicKey),
  require_signature: Type.Optional(Type.Boolean()),
});
const PlatformPatch = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  contact_email: Type.Optional(Type.String({ minLength: 3, maxLength: 254 })),
  certification_tier: Type.Optional(Tier),
  rate_limits: Type.Optional(Type.Object({ hourly: Type.Optional(Quota), daily: Type.Optional(Quota) })),
  public_key: Type.Optional(PublicKey),
  require_signature: Type.Optional(Type.Boolean()),
});
const PlatformParams = Type.Object({ id: Id });

function checkContact(email: string | undefined, field: string): string | undefined {
  if (email === undefined) return undefined;
  const trimmed = email.trim();
  if (!EMAIL.test(trimmed)) throw validationError([{ field, message: "must be an e-mail address" }]);
  return trimmed;
}

function checkName(name: string | undefined, field: string): string | undefined {
  if (name === undefined) return undefined;
  const trimmed = name.trim();
  if (!trimmed) throw validationError([{ field, message: "must not be blank" }]);
  return trimmed;
}

function checkPublicKey(key: string | null | undefined, field: string): string | null | undefined {
  if (key === undefined || key === null) return key;
  if (!isEd25519PublicKey(key)) throw validationError([{ field, message: "must be an Ed25519 public key as base64 SPKI DER" }]);
  return key;
}

/**
 * `/api/v1/admin/…` (api.md §6) and its alias `POST /api/v1/broker/register`: administrators
 * only, each change with its audit entry; every refusal is logged as a security event.
 */
export const adminRoutes: FastifyPluginAsyncTypebox<AdminRoutesOptions> = async (app, options) => {
  const { platforms, audit } = options;
  const docs = { tags: ["admin"], description: "Requires an administrator's access token (`Authorization: Bearer …`)." };

  app.addHook("onRequest", async (request) => {
    requireAdmin(request);
  });
  app.addHook("onResponse", async (request, reply) => {
    if (reply.statusCode !== 401 && reply.statusCode !== 403) return;
    const caller = request.caller;
    request.log.warn(
      {
        security: true,
        event: "admin_access_refused",
        status: reply.statusCode,
        route: request.routeOptions.url,
        method: request.method,
        ip: request.ip,
        caller:
          caller?.kind === "user"
            ? { kind: "user", accountId: caller.accountId }
            : caller?.kind === "platform"
              ? { kind: "platform", platformId: caller.platformId, keyId: caller.keyId }
              : { kind: "anonymous" },
      },
      "security: administrator route refused",
    );
  });

  app.get(
    "/api/v1/admin/platforms",
    {
      schema: {
        summary: "Platforms, newest first",
        ...docs,
        querystring: Type.Object({ status: Type.Optional(Status), limit: Limit, cursor: Cursor }),
      },
    },
    async (request) => {
      const page = await platforms.page(request.query.status, request.query.limit, request.query.cursor);
      return { success: true, items: page.items.map(platformObject), nextCursor: page.nextCursor };
    },
  );

  const register = {
    schema: { summary: "Register a platform (pending) and its first key, shown once", ...docs, body: NewPlatform },
  };
  for (const url of ["/api/v1/admin/platforms", "/api/v1/broker/register"]) {
    app.post(url, register, async (request, reply) => {
      const admin = requireAdmin(request);
      const body = request.body;
      const domain = normaliseDomain(body.domain);
      if (!domain) throw validationError([{ field: "body.domain", message: "must be a DNS name such as example.com" }]);
      const publicKey = checkPublicKey(body.public_key, "body.public_key") ?? null;
      if (body.require_signature && !publicKey) {
        throw validationError([{ field: "body.require_signature", message: "needs a public_key to check signatures against" }]);
      }
      const { platform, issued } = await platforms.create(
        {
          domain,
          name: checkName(body.name, "body.name")!,
          contactEmail: checkContact(body.contact_email, "body.contact_email")!,
          tier: body.certification_tier ?? "community",
          publicKey,
          requireSignature: body.require_signature ?? false,
        },
        auditActor(request, admin),
      );
      return reply.code(201).send({
        success: true,
        broker: platformObject(platform),
        api_key: issued.key,
        key: keyObject(issued.row),
        warning: KEY_SHOWN_ONCE,
      });
    });
  }

  app.get(
    "/api/v1/admin/platforms/:id",
    { schema: { summary: "A platform and its keys (never their secrets)", ...docs, params: PlatformParams } },
    async (request) => {
      const platform = await platforms.get(request.params.id);
      return { success: true, broker: platformObject(platform), api_keys: await platforms.keyObjects(platform.id) };
    },
  );

  app.patch(
    "/api/v1/admin/platforms/:id",
    {
      schema: {
        summary: "Change a platform's name, contact, tier, quotas, key or signature rule",
        ...docs,
        params: PlatformParams,
        body: PlatformPatch,
      },
    },
    async (request) => {
      const admin = requireAdmin(request);
      const body = request.body;
      const platform = await platforms.update(
        request.params.id,
        {
          name: checkName(body.name, "body.name"),
          contactEmail: checkContact(body.contact_email, "body.contact_email"),
          tier: body.certification_tier,
          hourlyLimit: body.rate_limits?.hourly,
          dailyLimit: body.rate_limits?.daily,
          publicKey: checkPublicKey(body.public_key, "body.public_key"),
          requireSignature: body.require_signature,
        },
        auditActor(request, admin),
      );
      return { success: true, broker: platformObject(platform) };
    },
  );

  app.post(
    "/api/v1/admin/platforms/:id/approve",
    { schema: { summary: "pending → active", ...docs, params: PlatformParams } },
    async (request) => {
      const platform = await platforms.approve(request.params.id, auditActor(request, requireAdmin(request)));
      return { success: true, broker: platformObject(platform) };
    },
  );

  app.post(
    "/api/v1/admin/platforms/:id/suspend",
    {
      schema: {
        summary: "→ suspended: its keys are refused (PLATFORM_NOT_ACTIVE) and its webhooks wait",
        ...docs,
        params: PlatformParams,
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }),
      },
    },
    async (request) => {
      const platform = await platforms.suspend(request.params.id, request.body.reason, auditActor(request, requireAdmin(request)));
      return { success: true, broker: platformObject(platform) };
    },
  );

  app.post(
    "/api/v1/admin/platforms/:id/unsuspend",
    { schema: { summary: "suspended → active", ...docs, params: PlatformParams } },
    async (request) => {
      const platform = await platforms.unsuspend(request.params.id, auditActor(request, requireAdmin(request)));
      return { success: true, broker: platformObject(platform) };
    },
  );

  app.post(
    "/api/v1/admin/platforms/:id/keys",
    {
      schema: {
        summary: "Issue a key for a platform (all scopes unless narrowed); shown once",
        ...docs,
        params: PlatformParams,
        body: Type.Partial(NewKeyBody),
      },
    },
    async (request, reply) => {
      const scopes = parseScopes(request.body.scopes, "body.scopes");
      const issued = await platforms.issueKey(
        request.params.id,
        { name: request.body.name ?? "issued by an administrator", scopes, expiresAt: expiryIn(request.body.expires_in_days) },
        auditActor(request, requireAdmin(request)),
      );
      return reply.code(201).send({ success: true, api_key: issued.key, key: keyObject(issued.row), warning: KEY_SHOWN_ONCE });
    },
  );

  app.delete(
    "/api/v1/admin/platforms/:id/keys/:keyId",
    { schema: { summary: "Revoke a platform's key", ...docs, params: Type.Object({ id: Id, keyId: Id }) } },
    async (request) => {
      const key = await platforms.revokeKey(request.params.id, request.params.keyId, auditActor(request, requireAdmin(request)));
      return { success: true, key: keyObject(key) };
    },
  );

  app.get(
    "/api/v1/admin/audit-log",
    {
      schema: {
        summary: "Administrator changes, newest first",
        ...docs,
        querystring: Type.Object({
          action: Type.Optional(Type.String({ maxLength: 100 })),
          target_id: Type.Optional(Type.String({ maxLength: 100 })),
          since: Type.Optional(Type.String({ maxLength: 40, description: "ISO 8601 time" })),
          limit: Limit,
          cursor: Cursor,
        }),
      },
    },
    async (request) => {
      const { action, target_id, since, limit, cursor } = request.query;
      const sinceDate = since === undefined ? undefined : new Date(since);
      if (sinceDate && (Number.isNaN(sinceDate.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(since!))) {
        throw validationError([{ field: "querystring.since", message: "must be an ISO 8601 time" }]);
      }
      return { success: true, ...(await audit.page({ action, targetId: target_id, since: sinceDate, limit, cursor })) };
    },
  );
};
