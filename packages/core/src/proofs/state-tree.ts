import { sha256 } from "@noble/hashes/sha2.js";
import {
  type CommitmentProof,
  type ExistenceProof,
  HashOp,
  type InnerOp,
  type LeafOp,
  LengthOp,
} from "cosmjs-types/cosmos/ics23/v1/proofs";

/**
 * The ledger's state commitment: a compressed binary sparse Merkle tree over SHA-256(key)
 * (ICS-23's SMT layout). A leaf sits at the shallowest depth where its key path is unique,
 * so an insert rehashes about log2(n) nodes, and a proof is an ICS-23 existence proof
 * or a pair of neighbouring leaves (non-existence).
 */
export const EMPTY_SUBTREE = new Uint8Array(32);
export const STATE_LEAF_OP: LeafOp = {
  hash: HashOp.SHA256,
  prehashKey: HashOp.SHA256,
  prehashValue: HashOp.SHA256,
  length: LengthOp.NO_PREFIX,
  prefix: Uint8Array.of(0),
};
const INNER_PREFIX = Uint8Array.of(1);

interface Leaf {
  readonly kind: "leaf";
  readonly path: Uint8Array;
  readonly key: Uint8Array;
  readonly valueHash: Uint8Array;
  readonly hash: Uint8Array;
}

interface Inner {
  readonly kind: "inner";
  left: TreeNode | undefined;
  right: TreeNode | undefined;
  hash: Uint8Array | undefined;
}

type TreeNode = Leaf | Inner;

export function bitAt(path: Uint8Array, depth: number): 0 | 1 {
  return ((path[depth >> 3] >> (7 - (depth & 7))) & 1) as 0 | 1;
}

/** SHA-256 of the concatenated parts; a Node host may pass a native one to StateTree for speed. */
export type Digest = (...parts: Uint8Array[]) => Uint8Array;

export const portableDigest: Digest = (...parts) => {
  const hash = sha256.create();
  for (const part of parts) hash.update(part);
  return hash.digest();
};

export function stateLeafHash(path: Uint8Array, valueHash: Uint8Array, digest: Digest = portableDigest): Uint8Array {
  return digest(STATE_LEAF_OP.prefix, path, valueHash);
}

export function stateInnerHash(left: Uint8Array, right: Uint8Array, digest: Digest = portableDigest): Uint8Array {
  return digest(INNER_PREFIX, left, right);
}

export function comparePaths(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

export class StateTree {
  #root: TreeNode | undefined;
  #size = 0;

  constructor(private readonly digest: Digest = portableDigest) {}

  get size(): number {
    return this.#size;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    const path = this.digest(key);
    const valueHash = this.digest(value);
    const leaf: Leaf = { kind: "leaf", path, key, valueHash, hash: stateLeafHash(path, valueHash, this.digest) };
    this.#root = this.#insert(this.#root, leaf, 0);
  }

  root(): Uint8Array {
    return this.#root ? hashOf(this.#root, this.digest) : EMPTY_SUBTREE;
  }

  /** ICS-23 proof that `key` holds `value` (value supplied by the caller's store), or that it is absent. */
  prove(key: Uint8Array, valueAt: (key: Uint8Array) => Uint8Array): CommitmentProof {
    const path = this.digest(key);
    const { leaf } = this.#walk(path);
    if (leaf && comparePaths(leaf.path, path) === 0) {
      return { exist: this.#existence(leaf, valueAt) };
    }
    const { below, above } = neighbours(this.#root, path, 0);
    return {
      nonexist: {
        key,
        left: below && this.#existence(below, valueAt),
        right: above && this.#existence(above, valueAt),
      },
    };
  }

  #existence(leaf: Leaf, valueAt: (key: Uint8Array) => Uint8Array): ExistenceProof {
    const { siblings } = this.#walk(leaf.path);
    const path: InnerOp[] = [];
    for (let depth = siblings.length - 1; depth >= 0; depth--) {
      const sibling = siblings[depth];
      path.push(
        bitAt(leaf.path, depth) === 0
          ? { hash: HashOp.SHA256, prefix: INNER_PREFIX, suffix: sibling }
          : { hash: HashOp.SHA256, prefix: concat(INNER_PREFIX, sibling), suffix: new Uint8Array() },
      );
    }
    return { key: leaf.key, value: valueAt(leaf.key), leaf: STATE_LEAF_OP, path };
  }

  #walk(path: Uint8Array): { leaf: Leaf | undefined; siblings: Uint8Array[] } {
    const siblings: Uint8Array[] = [];
    let node = this.#root;
    let depth = 0;
    while (node && node.kind === "inner") {
      const goRight = bitAt(path, depth) === 1;
      const sibling = goRight ? node.left : node.right;
      siblings.push(sibling ? hashOf(sibling, this.digest) : EMPTY_SUBTREE);
      node = goRight ? node.right : node.left;
      depth++;
    }
    return { leaf: node, siblings };
  }

  #insert(node: TreeNode | undefined, leaf: Leaf, depth: number): TreeNode {
    if (!node) {
      this.#size++;
      return leaf;
    }
    if (node.kind === "leaf") {
      if (comparePaths(node.path, leaf.path) === 0) return leaf;
      this.#size++;
      return split(node, leaf, depth);
    }
    node.hash = undefined;
    if (bitAt(leaf.path, depth) === 0) node.left = this.#insert(node.left, leaf, depth + 1);
    else node.right = this.#insert(node.right, leaf, depth + 1);
    return node;
  }
}

function split(a: Leaf, b: Leaf, depth: number): Inner {
  const bitA = bitAt(a.path, depth);
  if (bitA === bitAt(b.path, depth)) {
    const child = split(a, b, depth + 1);
    return { kind: "inner", left: bitA === 0 ? child : undefined, right: bitA === 1 ? child : undefined, hash: undefined };
  }
  return { kind: "inner", left: bitA === 0 ? a : b, right: bitA === 0 ? b : a, hash: undefined };
}

function hashOf(node: TreeNode, digest: Digest): Uint8Array {
  if (node.kind === "leaf") return node.hash;
  if (!node.hash) {
    node.hash = stateInnerHash(
      node.left ? hashOf(node.left, digest) : EMPTY_SUBTREE,
      node.right ? hashOf(node.right, digest) : EMPTY_SUBTREE,
      digest,
    );
  }
  return node.hash;
}

/** The leaves just below and just above `path` in key-path order. */
function neighbours(node: TreeNode | undefined, path: Uint8Array, depth: number): { below?: Leaf; above?: Leaf } {
  if (!node) return {};
  if (node.kind === "leaf") return comparePaths(node.path, path) < 0 ? { below: node } : { above: node };
  if (bitAt(path, depth) === 0) {
    const found = neighbours(node.left, path, depth + 1);
    return { below: found.below, above: found.above ?? edgeLeaf(node.right, "left") };
  }
  const found = neighbours(node.right, path, depth + 1);
  return { below: found.below ?? edgeLeaf(node.left, "right"), above: found.above };
}

function edgeLeaf(node: TreeNode | undefined, side: "left" | "right"): Leaf | undefined {
  while (node && node.kind === "inner") {
    const first = side === "left" ? node.left : node.right;
    node = first ?? (side === "left" ? node.right : node.left);
  }
  return node;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
