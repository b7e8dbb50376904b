import { createHash, createPublicKey, verify } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { ApiError } from "../http/errors.js";

/** How far a signature's timestamp may be from the server's clock (api.md §4). */
export const SIGNATURE_WINDOW_SECONDS = 300;

export interface SignedRequest {
  timestamp: string | undefined;
  signature: string | undefined;
  method: string;
  /** Path and query exactly as sent. */
  url: string;
  bodySha256: string;
}

const invalid = (why: string) => new ApiError(401, "SIGNATURE_INVALID", `the request signature ${why}`);

/** What a platform signs: `<timestamp>\n<METHOD>\n<path?query>\n<hex SHA-256 of the raw body>`. */
export function signedText(timestamp: string, method: string, url: string, bodySha256: string): string {
  return `${timestamp}\n${method.toUpperCase()}\n${url}\n${bodySha256}`;
}

/**
 * Ed25519 request signatures (api.md §4): checked against the platform's registered key,
 * within ±300 s, and each accepted once (shared by every instance through the database).
 */
export class Signatures {
  #lastCleanup = 0;

  constructor(private readonly db: Kysely<Database>) {}

  async check(platformId: string, publicKey: string | null, request: SignedRequest, now = new Date()): Promise<void> {
    const { timestamp, signature } = request;
    if (timestamp === undefined || signature === undefined) throw invalid("is missing (X-DAON-Timestamp and X-DAON-Signature)");
    if (!/^\d{1,12}$/.test(timestamp)) throw invalid("has a malformed X-DAON-Timestamp (unix seconds)");
    if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > SIGNATURE_WINDOW_SECONDS)
      throw invalid(`is more than ${SIGNATURE_WINDOW_SECONDS} s off`);
    if (!/^[A-Za-z0-9+/]{86}==$/.test(signature)) throw invalid("is not a base64 Ed25519 signature");
    if (!publicKey) throw invalid("cannot be checked: the platform has no public key registered");
    const text = signedText(timestamp, request.method, request.url, request.bodySha256);
    let valid = false;
    try {
      const key = createPublicKey({ key: Buffer.from(publicKey, "base64"), format: "der", type: "spki" });
      valid = verify(null, Buffer.from(text), key, Buffer.from(signature, "base64"));
    } catch {
      valid = false;
    }
    if (!valid) throw invalid("does not match the request");
    const digest = createHash("sha256").update(Buffer.from(signature, "base64")).digest("hex");
    const fresh = await this.db
      .insertInto("platform_signatures")
      .values({ digest, platform_id: platformId, seen_at: now })
      .onConflict((c) => c.column("digest").doNothing())
      .returning("digest")
      .executeTakeFirst();
    if (!fresh) throw invalid("was already used (replayed)");
    void this.cleanup(now);
  }

  /** Signatures older than the window can no longer be replayed (their timestamp is stale); dropped once a minute. */
  private async cleanup(now: Date): Promise<void> {
    if (now.getTime() - this.#lastCleanup < 60_000) return;
    this.#lastCleanup = now.getTime();
    await this.db
      .deleteFrom("platform_signatures")
      .where("seen_at", "<", new Date(now.getTime() - 2 * SIGNATURE_WINDOW_SECONDS * 1000))
      .execute()
      .catch(() => {});
  }
}
