import { createHash, randomBytes, randomInt, scrypt, timingSafeEqual } from "node:crypto";
import { HOTP, Secret } from "otpauth";
import QRCode from "qrcode";

/** A 256-bit bearer secret (magic link, sign-in session, refresh token), base64url. */
export function randomToken(): string {
  return randomBytes(32).toString("base64url");
}

/** How high-entropy bearer secrets are stored: their SHA-256, never the value. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

// TOTP as api.md §3: RFC 6238, SHA-1, 6 digits, 30 s steps, ±1 step.
const PERIOD_MS = 30_000;
const DIGITS = 6;
const ISSUER = "DAON";

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** What an authenticator app needs; shown only during enrolment. */
export async function enrolment(secret: string, email: string) {
  const label = encodeURIComponent(`${ISSUER}:${email}`);
  const otpauthUrl = `otpauth://totp/${label}?secret=${secret}&issuer=${ISSUER}&algorithm=SHA1&digits=${DIGITS}&period=${PERIOD_MS / 1000}`;
  return {
    secret,
    otpauth_url: otpauthUrl,
    qr_code: await QRCode.toDataURL(otpauthUrl, { errorCorrectionLevel: "M" }),
    manual_entry_key: secret.match(/.{1,4}/g)!.join(" "),
  };
}

/**
 * The time step a TOTP code belongs to, within ±1 step of now and after `lastStep` (codes
 * at or before the last accepted step are replays); undefined if it matches none.
 */
export function totpStep(secret: string, code: string, lastStep: number | null, now = Date.now()): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const key = Secret.fromBase32(secret);
  const current = Math.floor(now / PERIOD_MS);
  for (const step of [current - 1, current, current + 1]) {
    if (lastStep !== null && step <= lastStep) continue;
    const expected = HOTP.generate({ secret: key, counter: step, algorithm: "SHA1", digits: DIGITS });
    if (timingSafeEqual(Buffer.from(expected), Buffer.from(code))) return step;
  }
  return undefined;
}

// Backup codes: 10 × XXXX-XXXX from an alphabet without look-alikes (no 0 O 1 I L).
const BACKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const BACKUP_CODE_COUNT = 10;

export function newBackupCodes(): string[] {
  return Array.from({ length: BACKUP_CODE_COUNT }, () => {
    const chars = Array.from({ length: 8 }, () => BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)]).join("");
    return `${chars.slice(0, 4)}-${chars.slice(4)}`;
  });
}

/** Case and `-` insensitive (spaces too, as people type them); undefined if it cannot be a backup code. */
export function normalizeBackupCode(input: string): string | undefined {
  const code = input.replace(/[-\s]/g, "").toUpperCase();
  return code.length === 8 && [...code].every((c) => BACKUP_ALPHABET.includes(c)) ? code : undefined;
}

/** Backup codes have ~40 bits: a memory-hard hash with a per-generation salt keeps a leaked table from giving them away. */
export function hashBackupCode(normalized: string, salt: string): Promise<string> {
  return new Promise((resolve, reject) =>
    scrypt(normalized, salt, 32, { N: 16384, r: 8, p: 1 }, (error, key) => (error ? reject(error) : resolve(key.toString("hex")))),
  );
}

export function newSalt(): string {
  return randomBytes(16).toString("hex");
}
