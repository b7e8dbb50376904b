import { StateTree } from "@daon/core";
import type { CommitmentProof } from "cosmjs-types/cosmos/ics23/v1/proofs";
import { nativeDigest } from "./digest.js";

const utf8 = new TextEncoder();

export interface StateReader {
  get(key: string): Uint8Array | undefined;
}

/**
 * The committed application state: every key and value in memory, committed to by a
 * state tree whose root is the app hash. Changes arrive only through `apply`, one block at a time.
 */
export class LedgerState implements StateReader {
  readonly #entries = new Map<string, Uint8Array>();
  readonly #tree = new StateTree(nativeDigest);

  static fromEntries(entries: Iterable<readonly [string, Uint8Array]>): LedgerState {
    const state = new LedgerState();
    state.apply(new Map(entries));
    return state;
  }

  get(key: string): Uint8Array | undefined {
    return this.#entries.get(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Applies a block's changes and returns the new app hash. */
  apply(changes: ReadonlyMap<string, Uint8Array>): Uint8Array {
    for (const [key, value] of changes) {
      this.#entries.set(key, value);
      this.#tree.set(utf8.encode(key), value);
    }
    return this.#tree.root();
  }

  appHash(): Uint8Array {
    return this.#tree.root();
  }

  prove(key: string): CommitmentProof {
    return this.#tree.prove(utf8.encode(key), (k) => this.#entries.get(new TextDecoder().decode(k)) ?? new Uint8Array());
  }
}

/** Uncommitted writes over a reader; a tx or a block works in one, then merges or drops it. */
export class StateOverlay implements StateReader {
  readonly writes = new Map<string, Uint8Array>();

  constructor(private readonly parent: StateReader) {}

  get(key: string): Uint8Array | undefined {
    return this.writes.get(key) ?? this.parent.get(key);
  }

  set(key: string, value: Uint8Array): void {
    this.writes.set(key, value);
  }

  mergeInto(target: StateOverlay): void {
    for (const [key, value] of this.writes) target.set(key, value);
  }
}
