import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/**
 * Secrets at rest (TOTP secrets, webhook secrets): AES-256-GCM under ENCRYPTION_KEY. Each
 * ciphertext names its key by id, so a key rotation can re-encrypt in batches while both
 * the current and the previous key still open what they sealed (ops.md §8 `totp-key`).
 */
export interface SealingKey {
  id: string;
  key: Buffer;
}

const VERSION = "v1";

/** Derives the AES key and its public id from a configured key string (any length, any alphabet). */
export function sealingKey(secret: string): SealingKey {
  const key = createHash("sha256").update(`daon-seal-v1:${secret}`).digest();
  const id = createHash("sha256").update(key).digest("hex").slice(0, 8);
  return { id, key };
}

export class Sealer {
  private readonly keys: Map<string, SealingKey>;

  /** `current` seals; `previous` (while rotating) only opens. */
  constructor(
    readonly current: SealingKey,
    previous?: SealingKey,
  ) {
    this.keys = new Map([[current.id, current]]);
    if (previous) this.keys.set(previous.id, previous);
  }

  /** `v1.<key id>.<iv>.<tag>.<ciphertext>`, base64url parts. */
  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.current.key, iv);
    const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [
      VERSION,
      this.current.id,
      iv.toString("base64url"),
      cipher.getAuthTag().toString("base64url"),
      sealed.toString("base64url"),
    ].join(".");
  }

  open(sealed: string): string {
    const [version, keyId, iv, tag, body] = sealed.split(".");
    const key = this.keys.get(keyId);
    if (version !== VERSION || !key || body === undefined) throw new Error(`cannot open a secret sealed under key ${keyId ?? "?"}`);
    const decipher = createDecipheriv("aes-256-gcm", key.key, Buffer.from(iv, "base64url"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
  }

  /** The key id a sealed value was made with: rotation re-seals those not under the current key. */
  static keyIdOf(sealed: string): string {
    return sealed.split(".")[1] ?? "";
  }
}
