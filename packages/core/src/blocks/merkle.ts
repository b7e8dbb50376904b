import { sha256 } from "@noble/hashes/sha2.js";

/** A CometBFT simple Merkle proof (`crypto/merkle.Proof`). */
export interface MerkleProof {
  total: number;
  index: number;
  leafHash: Uint8Array;
  aunts: Uint8Array[];
}

const LEAF_PREFIX = Uint8Array.of(0);
const INNER_PREFIX = Uint8Array.of(1);

export function leafHash(leaf: Uint8Array): Uint8Array {
  return sha256.create().update(LEAF_PREFIX).update(leaf).digest();
}

export function innerHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(INNER_PREFIX).update(left).update(right).digest();
}

/** Largest power of two strictly below n: where CometBFT splits a tree of n leaves. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** `merkle.HashFromByteSlices`: RFC 6962 tree; the empty tree hashes to SHA-256 of nothing. */
export function merkleRoot(items: readonly Uint8Array[]): Uint8Array {
  if (items.length === 0) return sha256(new Uint8Array());
  return subtreeRoot(items, 0, items.length);
}

function subtreeRoot(items: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const n = to - from;
  if (n === 1) return leafHash(items[from]);
  const k = splitPoint(n);
  return innerHash(subtreeRoot(items, from, from + k), subtreeRoot(items, from + k, to));
}

/** `merkle.ProofsFromByteSlices` for one index: aunts listed from the leaf upwards. */
export function merkleProof(items: readonly Uint8Array[], index: number): MerkleProof {
  if (index < 0 || index >= items.length) throw new RangeError(`no leaf ${index} in ${items.length}`);
  const aunts: Uint8Array[] = [];
  let from = 0;
  let to = items.length;
  while (to - from > 1) {
    const k = splitPoint(to - from);
    if (index < from + k) {
      aunts.push(subtreeRoot(items, from + k, to));
      to = from + k;
    } else {
      aunts.push(subtreeRoot(items, from, from + k));
      from += k;
    }
  }
  return { total: items.length, index, leafHash: leafHash(items[index]), aunts: aunts.reverse() };
}

/** Recomputes the root from a proof and a leaf; false on any mismatch. */
export function verifyMerkleProof(proof: MerkleProof, root: Uint8Array, leaf: Uint8Array): boolean {
  if (!Number.isInteger(proof.total) || !Number.isInteger(proof.index)) return false;
  if (proof.total < 1 || proof.index < 0 || proof.index >= proof.total) return false;
  const computedLeaf = leafHash(leaf);
  if (!equalBytes(computedLeaf, proof.leafHash)) return false;
  const computed = rootFromAunts(proof.index, proof.total, computedLeaf, proof.aunts);
  return computed !== undefined && equalBytes(computed, root);
}

function rootFromAunts(index: number, total: number, leaf: Uint8Array, aunts: readonly Uint8Array[]): Uint8Array | undefined {
  if (total === 1) return aunts.length === 0 ? leaf : undefined;
  if (aunts.length === 0) return undefined;
  const k = splitPoint(total);
  const last = aunts[aunts.length - 1];
  const rest = aunts.slice(0, -1);
  if (index < k) {
    const left = rootFromAunts(index, k, leaf, rest);
    return left && innerHash(left, last);
  }
  const right = rootFromAunts(index - k, total - k, leaf, rest);
  return right && innerHash(last, right);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
