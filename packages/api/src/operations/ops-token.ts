import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { ApiError } from "../http/errors.js";

/** The operators' token for `/internal/ops/*` (ops.md §13): hex HMAC-SHA256(API_KEY_SECRET, "daon-ops-v1"). */
export function opsToken(apiKeySecret: string): string {
  return createHmac("sha256", apiKeySecret).update("daon-ops-v1").digest("hex");
}

/**
 * Refuses a request to `/internal/ops/*` without the ops token of the current or, while
 * rotating, the previous API_KEY_SECRET. A refusal is a 404, as for any route that is not public.
 */
export function requireOpsToken(request: FastifyRequest, secrets: { current?: string; previous?: string }): void {
  const given = /^Bearer ([0-9a-f]{64})$/.exec(request.headers.authorization ?? "")?.[1];
  const accepted = [secrets.current, secrets.previous].filter((s): s is string => Boolean(s)).map(opsToken);
  const ok = given !== undefined && accepted.some((token) => timingSafeEqual(Buffer.from(token), Buffer.from(given)));
  if (!ok) throw new ApiError(404, "NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0].slice(0, 200)}`);
}
