import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sha256 } from "@noble/hashes/sha2.js";
import { comparePaths, EMPTY_SUBTREE, StateTree, verifyStateAbsence, verifyStateMembership } from "../src/index.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

function treeOf(count: number, seed = "k") {
  const tree = new StateTree();
  const values = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const key = `${seed}/${i}`;
    const value = utf8(`value of ${key}`);
    values.set(key, value);
    tree.set(utf8(key), value);
  }
  const valueAt = (key: Uint8Array) => values.get(new TextDecoder().decode(key)) ?? new Uint8Array();
  return { tree, values, valueAt };
}

describe("state tree", () => {
  test("the empty tree commits to 32 zero bytes and proves every key absent", () => {
    const tree = new StateTree();
    assert.deepEqual(tree.root(), EMPTY_SUBTREE);
    const proof = tree.prove(utf8("anything"), () => new Uint8Array());
    assert.equal(verifyStateAbsence(tree.root(), utf8("anything"), proof), true);
  });

  test("the root depends on contents, not on insertion order, and changes with any value", () => {
    const forward = treeOf(200).tree.root();
    const backward = new StateTree();
    for (let i = 199; i >= 0; i--) backward.set(utf8(`k/${i}`), utf8(`value of k/${i}`));
    assert.deepEqual(backward.root(), forward);
    backward.set(utf8("k/77"), utf8("changed"));
    assert.notDeepEqual(backward.root(), forward);
  });

  test("every key of a 500-key tree is proved present, and 200 other keys absent", () => {
    const { tree, values, valueAt } = treeOf(500);
    const root = tree.root();
    for (const [key, value] of values) {
      const proof = tree.prove(utf8(key), valueAt);
      assert.equal(verifyStateMembership(root, utf8(key), value, proof), true, key);
      assert.equal(verifyStateMembership(root, utf8(key), utf8("other value"), proof), false, key);
    }
    for (let i = 0; i < 200; i++) {
      const key = utf8(`absent/${i}`);
      const proof = tree.prove(key, valueAt);
      assert.ok(proof.nonexist, `absent/${i}`);
      assert.equal(verifyStateAbsence(root, key, proof), true, `absent/${i}`);
      assert.equal(verifyStateAbsence(root, utf8("k/3"), { nonexist: { ...proof.nonexist, key: utf8("k/3") } }), false);
    }
  });

  test("a non-existence proof whose neighbours are not adjacent is refused", () => {
    const { tree, values, valueAt } = treeOf(64);
    const root = tree.root();
    const sorted = [...values.keys()].sort((a, b) => comparePaths(sha256(utf8(a)), sha256(utf8(b))));
    // Claim that the middle key is absent by citing the leaves on either side of it.
    for (const middle of [1, 20, 40, 62]) {
      const left = tree.prove(utf8(sorted[middle - 1]), valueAt).exist;
      const right = tree.prove(utf8(sorted[middle + 1]), valueAt).exist;
      const forged = { nonexist: { key: utf8(sorted[middle]), left, right } };
      assert.equal(verifyStateAbsence(root, utf8(sorted[middle]), forged), false, `hid ${sorted[middle]}`);
    }
    // Nor can a present key be declared absent with only one neighbour.
    const first = sorted[0];
    const onlyRight = { nonexist: { key: utf8(first), right: tree.prove(utf8(sorted[1]), valueAt).exist } };
    assert.equal(verifyStateAbsence(root, utf8(first), onlyRight), false);
  });

  test("a leaf's proof cannot be presented for another key at the same place", () => {
    const { tree, valueAt } = treeOf(50);
    const proof = tree.prove(utf8("k/5"), valueAt);
    const moved = { exist: { ...proof.exist!, key: utf8("k/6") } };
    assert.equal(verifyStateMembership(tree.root(), utf8("k/6"), proof.exist!.value, moved), false);
  });
});
