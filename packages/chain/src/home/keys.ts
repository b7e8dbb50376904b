import { validatorAddress } from "@daon/core";
import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** CometBFT's `priv_validator_key.json`. */
export interface ValidatorKeyFile {
  address: string;
  pub_key: { type: "tendermint/PubKeyEd25519"; value: string };
  priv_key: { type: "tendermint/PrivKeyEd25519"; value: string };
}

/** CometBFT's `node_key.json`. */
export interface NodeKeyFile {
  priv_key: { type: "tendermint/PrivKeyEd25519"; value: string };
}

export interface ValidatorSigner {
  address: Uint8Array;
  publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

function newEd25519(): { seed: Uint8Array; publicKey: Uint8Array; privKeyValue: string } {
  const seed = ed25519.utils.randomSecretKey();
  const publicKey = ed25519.getPublicKey(seed);
  // CometBFT stores the 64-byte form: seed followed by the public key.
  const full = new Uint8Array(64);
  full.set(seed);
  full.set(publicKey, 32);
  return { seed, publicKey, privKeyValue: b64(full) };
}

export function newValidatorKey(): ValidatorKeyFile {
  const { publicKey, privKeyValue } = newEd25519();
  return {
    address: bytesToHex(validatorAddress(publicKey)).toUpperCase(),
    pub_key: { type: "tendermint/PubKeyEd25519", value: b64(publicKey) },
    priv_key: { type: "tendermint/PrivKeyEd25519", value: privKeyValue },
  };
}

export function newNodeKey(): NodeKeyFile {
  return { priv_key: { type: "tendermint/PrivKeyEd25519", value: newEd25519().privKeyValue } };
}

/** Node ID: hex of the first 20 bytes of SHA-256 of the node key's public half. */
export function nodeId(key: NodeKeyFile): string {
  const full = Buffer.from(key.priv_key.value, "base64");
  return bytesToHex(validatorAddress(full.subarray(32))).toLowerCase();
}

export function validatorSigner(file: ValidatorKeyFile): ValidatorSigner {
  const full = Buffer.from(file.priv_key.value, "base64");
  if (full.length !== 64) throw new Error("priv_validator_key.json: priv_key must be 64 bytes");
  const seed = new Uint8Array(full.subarray(0, 32));
  const publicKey = ed25519.getPublicKey(seed);
  if (b64(publicKey) !== file.pub_key.value) throw new Error("priv_validator_key.json: pub_key does not match priv_key");
  return { address: validatorAddress(publicKey), publicKey, sign: (message) => ed25519.sign(message, seed) };
}
