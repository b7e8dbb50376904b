import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { fingerprint } from "@daon/api";

/** `env.enc` and `secrets.tar.enc`: "DAONENC1", the key's fingerprint, IV, AES-256-GCM ciphertext, tag. */
const MAGIC = Buffer.from("DAONENC1");
const FINGERPRINT_BYTES = 12;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** BACKUP_KEY as AES-256 key: 64 hex digits as they are (daon init), any other value through SHA-256. */
function keyBytes(backupKey: string): Buffer {
  return /^[0-9a-f]{64}$/i.test(backupKey) ? Buffer.from(backupKey, "hex") : createHash("sha256").update(backupKey).digest();
}

export function sealWithBackupKey(backupKey: string, plaintext: Uint8Array): Buffer {
  const header = Buffer.concat([MAGIC, Buffer.from(fingerprint(backupKey), "ascii")]);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyBytes(backupKey), iv);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]);
}

/** Decrypts, saying whether a failure is the wrong key or an altered file. */
export function openWithBackupKey(backupKey: string, sealed: Buffer): Buffer {
  const headerBytes = MAGIC.length + FINGERPRINT_BYTES;
  if (sealed.length < headerBytes + IV_BYTES + TAG_BYTES || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error("not a DAON encrypted file (too short or wrong header)");
  }
  const header = sealed.subarray(0, headerBytes);
  const keyFingerprint = header.subarray(MAGIC.length).toString("ascii");
  if (keyFingerprint !== fingerprint(backupKey)) {
    throw new Error(`encrypted under another BACKUP_KEY (fingerprint ${keyFingerprint}, this one is ${fingerprint(backupKey)})`);
  }
  const iv = sealed.subarray(headerBytes, headerBytes + IV_BYTES);
  const body = sealed.subarray(headerBytes + IV_BYTES, sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", keyBytes(backupKey), iv);
  decipher.setAAD(header);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new Error("authentication failed: the file was altered or truncated");
  }
}

/** The same format as `sealWithBackupKey`, streamed (a whole backup set for the off-site copy). */
export async function* sealStream(backupKey: string, source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const header = Buffer.concat([MAGIC, Buffer.from(fingerprint(backupKey), "ascii")]);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyBytes(backupKey), iv);
  cipher.setAAD(header);
  yield Buffer.concat([header, iv]);
  for await (const chunk of source) yield cipher.update(chunk);
  yield Buffer.concat([cipher.final(), cipher.getAuthTag()]);
}
