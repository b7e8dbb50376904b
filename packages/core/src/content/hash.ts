import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { assertWellFormed, canonicaliseText, ContentError } from "./canonicalise.js";

// ContentError lives with canonicalisation (the lowest module) so the two files do not import each other.
export { ContentError, type ContentErrorCode } from "./canonicalise.js";

/** A content hash: SHA-256 as 64 lowercase hex digits. */
export type ContentHash = string;

/** A content hash as the ledger stores it. */
export type LedgerHash = `sha256:${string}`;

const LEDGER_PREFIX = "sha256:";

/** SHA-256 of zero bytes: never the hash of registrable content. */
export const EMPTY_CONTENT_HASH: ContentHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const HEX_64 = /^[0-9a-fA-F]{64}$/;

/** Content hash of a text: SHA-256 of the UTF-8 of its canonical form. */
export function hashText(text: string): ContentHash {
  return sha256Hex(utf8ToBytes(canonicaliseText(text)));
}

/** SHA-256 of the text's UTF-8 as given, with no canonicalisation: a fallback match for text hashed elsewhere. */
export function hashRawText(text: string): ContentHash {
  assertWellFormed(text);
  // Empty text is refused here as well, as its hash is the empty-input hash that parseContentHash refuses.
  if (text === "") throw new ContentError("NO_TEXT_CONTENT", "The text is empty.");
  return sha256Hex(utf8ToBytes(text));
}

/** Content hash of a file: SHA-256 of its bytes, as `sha256sum` prints it. */
export function hashBytes(bytes: Uint8Array): ContentHash {
  if (bytes.length === 0) throw new ContentError("EMPTY_FILE", "The file is empty.");
  return sha256Hex(bytes);
}

/**
 * A pre-computed content hash: 64 hex digits in any case, optionally prefixed `sha256:` (lowercase prefix only).
 * Returns 64 lowercase hex digits.
 */
export function parseContentHash(input: string): ContentHash {
  const hex = input.startsWith(LEDGER_PREFIX) ? input.slice(LEDGER_PREFIX.length) : input;
  return parseHex(hex, input);
}

/** The ledger form of a content hash: `sha256:` and 64 lowercase hex digits. */
export function toLedgerHash(hash: string): LedgerHash {
  return `${LEDGER_PREFIX}${parseContentHash(hash)}`;
}

/** The content hash in a ledger hash; the `sha256:` prefix is required. */
export function fromLedgerHash(ledgerHash: string): ContentHash {
  if (!ledgerHash.startsWith(LEDGER_PREFIX)) {
    throw new ContentError("INVALID_HASH", `A ledger hash starts with "${LEDGER_PREFIX}": ${quote(ledgerHash)}.`);
  }
  return parseHex(ledgerHash.slice(LEDGER_PREFIX.length), ledgerHash);
}

function parseHex(hex: string, input: string): ContentHash {
  if (!HEX_64.test(hex)) {
    throw new ContentError("INVALID_HASH", `A content hash is 64 hex digits, optionally prefixed "sha256:": ${quote(input)}.`);
  }
  const hash = hex.toLowerCase();
  if (hash === EMPTY_CONTENT_HASH) {
    throw new ContentError("EMPTY_FILE", "This is the hash of empty content, so there is nothing to register or verify.");
  }
  return hash;
}

function sha256Hex(bytes: Uint8Array): ContentHash {
  return bytesToHex(sha256(bytes));
}

// Long or odd input is cut and JSON-quoted, so the message stays one readable line.
function quote(input: string): string {
  return JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
}
