import { sha256 } from "@noble/hashes/sha2.js";
import { type CommitmentProof, type ExistenceProof, HashOp } from "cosmjs-types/cosmos/ics23/v1/proofs";
import { equalBytes } from "../blocks/merkle.js";
import { bitAt, comparePaths, EMPTY_SUBTREE, STATE_LEAF_OP, stateInnerHash, stateLeafHash } from "./state-tree.js";

interface Step {
  bit: 0 | 1;
  sibling: Uint8Array;
}

/** Top-down steps of an existence proof, or undefined if it is not of the state tree's shape. */
function stepsOf(proof: ExistenceProof): { root: Uint8Array; steps: Step[] } | undefined {
  const leaf = proof.leaf;
  if (
    !leaf ||
    leaf.hash !== STATE_LEAF_OP.hash ||
    leaf.prehashKey !== STATE_LEAF_OP.prehashKey ||
    leaf.prehashValue !== STATE_LEAF_OP.prehashValue ||
    leaf.length !== STATE_LEAF_OP.length ||
    !equalBytes(leaf.prefix, STATE_LEAF_OP.prefix)
  ) {
    return undefined;
  }
  const path = sha256(proof.key);
  let hash = stateLeafHash(path, sha256(proof.value));
  const steps: Step[] = [];
  const depthOfLeaf = proof.path.length;
  for (let i = 0; i < proof.path.length; i++) {
    const op = proof.path[i];
    const depth = depthOfLeaf - 1 - i;
    if (op.hash !== HashOp.SHA256 || depth >= 256) return undefined;
    const isLeftChild = op.prefix.length === 1 && op.suffix.length === 32;
    const isRightChild = op.prefix.length === 33 && op.suffix.length === 0;
    if (op.prefix[0] !== 1 || (!isLeftChild && !isRightChild)) return undefined;
    const bit = bitAt(path, depth);
    // The direction must follow the key's path: a leaf cannot be proved at another key's place.
    if (bit !== (isLeftChild ? 0 : 1)) return undefined;
    const sibling = isLeftChild ? op.suffix : op.prefix.subarray(1);
    hash = isLeftChild ? stateInnerHash(hash, sibling) : stateInnerHash(sibling, hash);
    steps.unshift({ bit, sibling });
  }
  return { root: hash, steps };
}

/** True iff `proof` shows that `key` holds exactly `value` in the state committed by `appHash`. */
export function verifyStateMembership(appHash: Uint8Array, key: Uint8Array, value: Uint8Array, proof: CommitmentProof): boolean {
  const exist = proof.exist;
  if (!exist || !equalBytes(exist.key, key) || !equalBytes(exist.value, value)) return false;
  const computed = stepsOf(exist);
  return computed !== undefined && equalBytes(computed.root, appHash);
}

/** True iff `proof` shows that `key` is absent from the state committed by `appHash`. */
export function verifyStateAbsence(appHash: Uint8Array, key: Uint8Array, proof: CommitmentProof): boolean {
  const absent = proof.nonexist;
  if (!absent || !equalBytes(absent.key, key)) return false;
  const path = sha256(key);
  if (!absent.left && !absent.right) return equalBytes(appHash, EMPTY_SUBTREE);

  const left = absent.left && stepsOf(absent.left);
  const right = absent.right && stepsOf(absent.right);
  if (absent.left && (!left || !equalBytes(left.root, appHash) || comparePaths(sha256(absent.left.key), path) >= 0)) return false;
  if (absent.right && (!right || !equalBytes(right.root, appHash) || comparePaths(sha256(absent.right.key), path) <= 0)) return false;

  // Adjacency: below the point where the two paths part, the left leaf is the rightmost
  // leaf of its side and the right leaf the leftmost of its side (empty siblings only).
  const split = left && right ? firstDifference(left.steps, right.steps) : -1;
  if (left && right && split < 0) return false;
  if (left && !isEdge(left.steps, split + 1, 0)) return false;
  if (right && !isEdge(right.steps, split + 1, 1)) return false;
  return true;
}

function firstDifference(left: Step[], right: Step[]): number {
  const shared = Math.min(left.length, right.length);
  for (let depth = 0; depth < shared; depth++) {
    if (left[depth].bit !== right[depth].bit) return left[depth].bit === 0 ? depth : -1;
    if (!equalBytes(left[depth].sibling, right[depth].sibling)) return -1;
  }
  return -1;
}

/** Every step from `from` down where the leaf turns `towards` has an empty sibling on the other side. */
function isEdge(steps: Step[], from: number, towards: 0 | 1): boolean {
  for (let depth = from; depth < steps.length; depth++) {
    if (steps[depth].bit === towards && !equalBytes(steps[depth].sibling, EMPTY_SUBTREE)) return false;
  }
  return true;
}
