import { ContentError, hashBytes } from "@daon/core";

export {
  canonicaliseText,
  ContentError,
  type ContentErrorCode,
  hashBytes,
  hashRawText,
  hashText,
  parseContentHash,
  toLedgerHash,
} from "@daon/core";

/** Bytes of a file in any form Node or a browser hands out. */
export type FileInput = Uint8Array | ArrayBuffer | Blob;

/** The bytes of a file input, read once. */
export async function bytesOf(file: FileInput): Promise<Uint8Array> {
  if (file instanceof Uint8Array) return file;
  if (file instanceof ArrayBuffer) return new Uint8Array(file);
  return new Uint8Array(await file.arrayBuffer());
}

/**
 * A file's content hash (SHA-256 of its bytes, as `sha256sum`), computed here: the file never
 * leaves this machine. Web Crypto where present (fast on large files), else `core`'s hash.
 */
export async function hashFile(file: FileInput): Promise<string> {
  const bytes = await bytesOf(file);
  if (bytes.length === 0) throw new ContentError("EMPTY_FILE", "The file is empty.");
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return hashBytes(bytes);
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
