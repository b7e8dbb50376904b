import assert from "node:assert/strict";
import { test } from "node:test";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Secp256k1Verifier } from "../src/state/signatures.js";

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

test("secp256k1 signatures verify as the Cosmos SDK checks them: low S only, exact message and key", () => {
  const verifier = new Secp256k1Verifier();
  for (let i = 0; i < 20; i++) {
    const secret = secp256k1.utils.randomSecretKey();
    const publicKey = secp256k1.getPublicKey(secret);
    const message = new TextEncoder().encode(`sign doc ${i}`);
    const signature = secp256k1.sign(message, secret);
    assert.equal(verifier.verify(signature, message, publicKey), true);

    const otherMessage = new TextEncoder().encode(`sign doc ${i}!`);
    assert.equal(verifier.verify(signature, otherMessage, publicKey), false);
    assert.equal(verifier.verify(signature, message, secp256k1.getPublicKey(secp256k1.utils.randomSecretKey())), false);

    // The malleable twin (r, n - s) is a valid ECDSA signature that Cosmos refuses.
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString("hex")}`);
    const twin = Uint8Array.from([...signature.subarray(0, 32), ...Buffer.from((ORDER - s).toString(16).padStart(64, "0"), "hex")]);
    assert.equal(secp256k1.verify(twin, message, publicKey, { lowS: false }), true);
    assert.equal(verifier.verify(twin, message, publicKey), false);
  }
  assert.equal(verifier.verify(new Uint8Array(64), new Uint8Array(1), new Uint8Array(33)), false);
  assert.equal(verifier.verify(new Uint8Array(63), new Uint8Array(1), new Uint8Array(33)), false);
});
