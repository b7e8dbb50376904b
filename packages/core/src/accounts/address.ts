import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bech32 } from "@scure/base";

export const ACCOUNT_PREFIX = "daon";
export const VALIDATOR_OPERATOR_PREFIX = "daonvaloper";

/** Cosmos SDK account address of a compressed secp256k1 key: RIPEMD-160(SHA-256(key)), bech32 `daon`. */
export function accountAddress(secp256k1PublicKey: Uint8Array, prefix = ACCOUNT_PREFIX): string {
  return bech32.encode(prefix, bech32.toWords(ripemd160(sha256(secp256k1PublicKey))));
}

/** CometBFT validator address of an ed25519 key: the first 20 bytes of its SHA-256. */
export function validatorAddress(ed25519PublicKey: Uint8Array): Uint8Array {
  return sha256(ed25519PublicKey).subarray(0, 20);
}

/** True iff `address` is a well-formed bech32 address with the given prefix and a 20-byte payload. */
export function isAccountAddress(address: string, prefix = ACCOUNT_PREFIX): boolean {
  if (typeof address !== "string" || address.length > 90 || !address.startsWith(`${prefix}1`)) return false;
  try {
    const decoded = bech32.decode(address as `${string}1${string}`);
    return decoded.prefix === prefix && bech32.fromWords(decoded.words).length === 20;
  } catch {
    return false;
  }
}
