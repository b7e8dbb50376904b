import type { FastifyRequest } from "fastify";
import type { HttpApp } from "../http/app.js";
import { ApiError } from "../http/errors.js";

/** Who is making a request (api.md §1 "Credentials"): nobody, a signed-in account, or a platform key. */
export type Caller = AnonymousCaller | UserCaller | PlatformCaller;

export interface AnonymousCaller {
  kind: "anonymous";
}

export interface UserCaller {
  kind: "user";
  accountId: string;
  sessionId: string;
  ownerId: string;
  role: "user" | "admin";
}

export type PlatformScope = "broker:register" | "broker:verify" | "broker:transfer" | "broker:webhooks";

export interface PlatformCaller {
  kind: "platform";
  platformId: string;
  domain: string;
  keyId: string;
  scopes: PlatformScope[];
}

/** Turns a bearer credential into a caller; undefined = not a credential it knows (401). It may throw an ApiError for a more precise refusal (TOKEN_EXPIRED, PLATFORM_NOT_ACTIVE). */
export type CredentialResolver = (credential: string, request: FastifyRequest) => Promise<Caller | undefined>;

export interface CredentialResolvers {
  /** User access tokens (JWT). */
  user?: CredentialResolver;
  /** Platform keys (`DAON_BR_…`). */
  platform?: CredentialResolver;
}

const ANONYMOUS: AnonymousCaller = { kind: "anonymous" };
const PLATFORM_KEY_PREFIX = "DAON_BR_";

declare module "fastify" {
  interface FastifyRequest {
    caller: Caller;
  }
}

const unauthorized = (message: string) => new ApiError(401, "UNAUTHORIZED", message);

/**
 * Resolves `Authorization: Bearer …` into `request.caller` before any handler runs. An
 * absent header is anonymous; a present but unknown, malformed or revoked one is refused,
 * never ignored.
 */
export function authenticate(app: HttpApp, resolvers: CredentialResolvers): void {
  app.decorateRequest("caller", undefined as unknown as AnonymousCaller);
  app.addHook("onRequest", async (request) => {
    request.caller = ANONYMOUS;
    const header = request.headers.authorization;
    if (header === undefined || !request.url.startsWith("/api/v1")) return;
    const match = /^Bearer ([\x21-\x7e]{1,2048})$/.exec(header);
    if (!match) throw unauthorized("the Authorization header must be 'Bearer <token or platform key>'");
    const credential = match[1];
    const resolver = credential.startsWith(PLATFORM_KEY_PREFIX) ? resolvers.platform : resolvers.user;
    const caller = resolver ? await resolver(credential, request) : undefined;
    if (!caller) throw unauthorized("the credential is unknown, expired or revoked");
    request.caller = caller;
  });
}

export function requireUser(request: FastifyRequest): UserCaller {
  if (request.caller.kind !== "user") throw unauthorized("sign in first");
  return request.caller;
}

export function requireAdmin(request: FastifyRequest): UserCaller {
  const user = requireUser(request);
  if (user.role !== "admin") throw new ApiError(403, "FORBIDDEN", "administrators only");
  return user;
}

export function requirePlatform(request: FastifyRequest, scope?: PlatformScope): PlatformCaller {
  if (request.caller.kind !== "platform") throw unauthorized("a platform key is required");
  if (scope && !request.caller.scopes.includes(scope)) {
    throw new ApiError(403, "INSUFFICIENT_SCOPE", `this key lacks the ${scope} scope`, { required: scope });
  }
  return request.caller;
}
