import { errors, jwtVerify, SignJWT } from "jose";
import { ApiError } from "../http/errors.js";
import type { RotatingSecret } from "../secrets/keyring.js";

const encoder = new TextEncoder();

/**
 * Access tokens (api.md §3): JWT HS256 with claims `sub sid typ iat exp`, signed with
 * JWT_SECRET; while rotating, tokens signed with JWT_SECRET_PREVIOUS are still accepted.
 * The secrets are read at use time, so a reload (SIGHUP) applies to the next token.
 */
export class AccessTokens {
  constructor(
    private readonly secrets: () => RotatingSecret,
    readonly lifetimeSeconds: number,
  ) {}

  issue(accountId: string, sessionId: string): Promise<string> {
    const { current } = this.secrets();
    if (!current) throw new Error("JWT_SECRET is not set");
    return new SignJWT({ sid: sessionId, typ: "access" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(accountId)
      .setIssuedAt()
      .setExpirationTime(`${this.lifetimeSeconds}s`)
      .sign(encoder.encode(current));
  }

  /**
   * The account and session a token names; undefined if it is no token of ours. A genuine
   * but expired token throws TOKEN_EXPIRED, so the client knows to refresh.
   */
  async verify(token: string): Promise<{ accountId: string; sessionId: string } | undefined> {
    const { current, previous } = this.secrets();
    for (const secret of [current, previous]) {
      if (!secret) continue;
      try {
        const { payload } = await jwtVerify(token, encoder.encode(secret), {
          algorithms: ["HS256"],
          requiredClaims: ["sub", "iat", "exp"],
        });
        if (payload.typ !== "access" || typeof payload.sub !== "string" || typeof payload.sid !== "string") return undefined;
        return { accountId: payload.sub, sessionId: payload.sid };
      } catch (error) {
        if (error instanceof errors.JWTExpired) throw new ApiError(401, "TOKEN_EXPIRED", "the access token has expired; refresh it");
        if (error instanceof errors.JWSSignatureVerificationFailed) continue; // perhaps signed with the other secret
        return undefined;
      }
    }
    return undefined;
  }
}
