import { createPublicKey, type KeyObject, verify } from "node:crypto";

// DER prefix of a SubjectPublicKeyInfo holding a compressed secp256k1 point (id-ecPublicKey, secp256k1).
const SPKI_PREFIX = Buffer.from("3036301006072a8648ce3d020106052b8104000a032200", "hex");
const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const MAX_CACHED_KEYS = 10_000;

/**
 * secp256k1 ECDSA over SHA-256 as the Cosmos SDK checks it: 64-byte r‖s, low S only (no
 * malleable twins), compressed 33-byte keys. OpenSSL does the curve work: several times
 * faster than a JavaScript implementation, and CheckTx runs it for every tx.
 */
export class Secp256k1Verifier {
  readonly #keys = new Map<string, KeyObject>();

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 33) return false;
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString("hex")}`);
    if (s === 0n || s > HALF_ORDER) return false;
    try {
      return verify("sha256", message, { key: this.#key(publicKey), dsaEncoding: "ieee-p1363" }, signature);
    } catch {
      return false;
    }
  }

  #key(publicKey: Uint8Array): KeyObject {
    const id = Buffer.from(publicKey).toString("hex");
    let key = this.#keys.get(id);
    if (!key) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
      if (this.#keys.size >= MAX_CACHED_KEYS) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}
