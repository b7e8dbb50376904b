import { createHash, type Hash } from "node:crypto";
import { Transform } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CredentialResolver, PlatformCaller } from "../auth/caller.js";
import type { HttpApp } from "../http/app.js";
import { ApiError } from "../http/errors.js";
import { type PlatformRow, quotaLimits } from "./platform.js";
import type { PlatformKeyRow, PlatformKeys } from "./platform-keys.js";
import type { PlatformStore } from "./platform-store.js";
import { type QuotaCharge, type QuotaState, type Quotas, quotaExceeded, quotaHeaders } from "./quotas.js";
import type { Signatures } from "./signatures.js";
import type { UsageLog } from "./usage.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Quota units one platform request to this route takes (default 1; bulk: one per item). Runs before schema validation. */
    platformQuotaUnits?: (request: FastifyRequest) => number;
  }
}

/** What a platform-key request carries besides its caller: the key and platform rows, the body's hash, the quota taken. */
export interface PlatformRequest {
  key: PlatformKeyRow;
  platform: PlatformRow;
  body?: Hash;
  charge?: QuotaCharge;
  quota?: QuotaState;
}

const requests = new WeakMap<FastifyRequest, PlatformRequest>();

/** The platform request behind a platform caller (the rows resolved with its key). */
export function platformRequest(request: FastifyRequest): PlatformRequest {
  const state = requests.get(request);
  if (!state) throw new ApiError(401, "UNAUTHORIZED", "a platform key is required");
  return state;
}

export interface PlatformRequestServices {
  keys: PlatformKeys;
  platforms: PlatformStore;
  quotas: Quotas;
  usage: UsageLog;
  signatures: Signatures;
}

/**
 * Resolves `DAON_BR_…` keys for `authenticate()`: unknown, revoked or expired → undefined
 * (401 UNAUTHORIZED); a pending or suspended platform → 403 PLATFORM_NOT_ACTIVE.
 */
export function platformResolver(services: PlatformRequestServices): CredentialResolver {
  return async (credential, request) => {
    const key = await services.keys.resolve(credential);
    if (!key) return undefined;
    const platform = await services.platforms.find(key.platform_id);
    if (!platform) return undefined;
    if (platform.certification_status !== "active") {
      throw new ApiError(403, "PLATFORM_NOT_ACTIVE", `the platform is ${platform.certification_status}`, {
        status: platform.certification_status,
      });
    }
    requests.set(request, { key, platform });
    const caller: PlatformCaller = {
      kind: "platform",
      platformId: platform.id,
      domain: platform.domain,
      keyId: key.id,
      scopes: key.scopes.split(" ").filter(Boolean) as PlatformCaller["scopes"],
    };
    return caller;
  };
}

/** A refusal after admission gives the quota back: the request was not served (api.md §4). */
const REFUSED = new Set([401, 403, 429]);

/**
 * What every platform-key request goes through, on any route: its body is hashed as it
 * arrives; a signature is checked when sent or required; the quota is taken before the
 * handler (refused → 429, nothing counted) and given back if the request is refused
 * further on; the call is recorded for usage; and the answer carries the quota headers
 * and is never cached.
 */
export function platformRequests(app: HttpApp, services: PlatformRequestServices): void {
  app.addHook("preParsing", async (request, _reply, payload) => {
    const state = requests.get(request);
    if (!state) return payload;
    const hash = createHash("sha256");
    state.body = hash;
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback(null, chunk);
        },
      }),
    );
  });

  app.addHook("preValidation", async (request, reply) => {
    const state = requests.get(request);
    if (!state) return;
    const timestamp = header(request, "x-daon-timestamp");
    const signature = header(request, "x-daon-signature");
    if (state.platform.require_signature || timestamp !== undefined || signature !== undefined) {
      await services.signatures.check(state.platform.id, state.platform.public_key, {
        timestamp,
        signature,
        method: request.method,
        url: request.url,
        bodySha256: (state.body ?? createHash("sha256")).copy().digest("hex"),
      });
    }
    const units = request.routeOptions.config.platformQuotaUnits?.(request) ?? 1;
    const taken = await services.quotas.consume(state.platform.id, quotaLimits(state.platform), units);
    state.quota = taken.state;
    if (!taken.allowed) throw quotaExceeded(taken.state, units);
    state.charge = taken.charge;
    reply.headers(quotaHeaders(taken.state));
  });

  app.addHook("onSend", async (request, reply, payload) => {
    const state = requests.get(request);
    if (!state) {
      if (isPlatformOrAdminPath(request)) reply.header("Cache-Control", "no-store");
      return payload;
    }
    reply.header("Cache-Control", "no-store");
    await settle(request, reply, state, services).catch((error) => request.log.warn({ err: error }, "platform usage not recorded"));
    return payload;
  });
}

async function settle(request: FastifyRequest, reply: FastifyReply, state: PlatformRequest, services: PlatformRequestServices) {
  if (state.charge && REFUSED.has(reply.statusCode)) {
    const { units } = state.charge;
    await services.quotas.refund(state.charge);
    state.charge = undefined;
    if (state.quota) {
      state.quota.hourly.remaining += units;
      state.quota.daily.remaining += units;
      reply.headers(quotaHeaders(state.quota));
    }
  }
  await services.usage.record({
    platformId: state.platform.id,
    endpoint: request.routeOptions.url ?? "unmatched",
    method: request.method,
    status: reply.statusCode,
    durationMs: reply.elapsedTime,
  });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const isPlatformOrAdminPath = (request: FastifyRequest) =>
  request.url.startsWith("/api/v1/broker") || request.url.startsWith("/api/v1/admin");
