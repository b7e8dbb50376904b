import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { equalBytes } from "@daon/core";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Timestamp } from "cosmjs-types/google/protobuf/timestamp";
import type { Block } from "cosmjs-types/tendermint/types/block";
import type { BlockID, Commit } from "cosmjs-types/tendermint/types/types";
import { buildBlock, type ChainParams, type PreviousBlock, signCommit } from "./blocks/block-builder.js";
import { genesisState } from "./home/genesis.js";
import { type LoadedHome, writeFileAtomic } from "./home/home.js";
import { validatorSigner } from "./home/keys.js";
import { hashOf, Mempool, type PendingTx } from "./mempool/mempool.js";
import { type BlockContext, failure, RegistryApp, type TxResult } from "./state/app.js";
import { sdk } from "./state/errors.js";
import { LedgerState } from "./state/ledger-state.js";
import { type CommittedHead, LedgerStore } from "./store/ledger-store.js";

export interface CommittedBlock {
  height: number;
  block: Block;
  blockId: BlockID;
  results: TxResult[];
  txHashes: string[];
}

export interface BroadcastResult {
  hash: string;
  result: TxResult;
}

export interface TxInclusion {
  height: number;
  index: number;
  result: TxResult;
}

/** Clock used by block production only; the state machine gets time from the block. */
export type Clock = () => number;

const TICK_MS = 10;

/**
 * A single-validator ledger node: mempool, block production (the commit loop CometBFT runs
 * with one validator), atomic block + state commits, and the reads the RPC serves.
 */
export class LedgerNode {
  readonly events = new EventEmitter();
  readonly chainId: string;
  readonly chain: ChainParams;
  readonly mempool: Mempool;
  readonly app: RegistryApp;
  readonly startedAt = Date.now();
  #state = new LedgerState();
  #head: CommittedHead = { height: 0, appHash: "", blockHash: "", signedHeight: 0 };
  #previous: PreviousBlock = { blockId: undefined, commit: undefined, results: [], appHash: new Uint8Array() };
  #latestBlockTime: Timestamp | undefined;
  /** App hash carried by the latest header: the state before the latest block. */
  #lastHeaderAppHash: Uint8Array = new Uint8Array();
  #lastCommitAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #producing: Promise<void> | undefined;
  #stopped = true;
  #paused = 0;
  readonly #inclusionWaiters = new Map<string, ((inclusion: TxInclusion) => void)[]>();

  private constructor(
    readonly home: LoadedHome,
    readonly store: LedgerStore,
    private readonly clock: Clock,
  ) {
    this.chainId = home.genesis.chain_id;
    const block = home.genesis.consensus_params.block;
    this.chain = {
      chainId: this.chainId,
      blockMaxBytes: BigInt(block.max_bytes),
      blockMaxGas: BigInt(block.max_gas),
      validator: validatorSigner(home.validatorKey),
    };
    if (home.genesis.validators[0].pub_key.value !== home.validatorKey.pub_key.value) {
      throw new Error("priv_validator_key.json is not the genesis validator's key");
    }
    this.mempool = new Mempool({ size: home.config.mempool.size, maxTxsBytes: home.config.mempool.maxTxsBytes });
    this.app = new RegistryApp(this.chainId);
  }

  /** Opens the store and resumes at the last committed height (or initialises from genesis). */
  static async open(home: LoadedHome, clock: Clock = Date.now): Promise<LedgerNode> {
    const store = new LedgerStore(home.paths.ledgerDb);
    try {
      await store.open();
    } catch (error) {
      throw new Error(
        `cannot open the ledger store at ${home.paths.ledgerDb} (is another node running on this home?): ${(error as Error).message}`,
      );
    }
    const node = new LedgerNode(home, store, clock);
    try {
      await node.#resume();
    } catch (error) {
      await store.close();
      throw error;
    }
    return node;
  }

  async #resume(): Promise<void> {
    const head = await this.store.head();
    const signedOnDisk = await readSignedHeight(this.home.paths.validatorState);
    if (!head) {
      if (signedOnDisk > 0)
        throw new Error(`validator state says height ${signedOnDisk} was signed but the store is empty: refusing to sign again`);
      this.#state = LedgerState.fromEntries(genesisState(this.home.genesis));
      this.#previous.appHash = this.#state.appHash();
      return;
    }
    if (signedOnDisk > head.signedHeight) {
      throw new Error(
        `validator state says height ${signedOnDisk} was signed but the store ends at ${head.height}: refusing to sign again`,
      );
    }
    const entries: [string, Uint8Array][] = [];
    for await (const entry of this.store.stateEntries()) entries.push(entry);
    this.#state = LedgerState.fromEntries(entries);
    const appHash = hex(this.#state.appHash());
    if (appHash !== head.appHash) throw new Error(`state in the store hashes to ${appHash}, the committed head says ${head.appHash}`);
    const last = await this.store.block(head.height);
    if (!last) throw new Error(`block ${head.height} is missing from the store`);
    this.#head = head;
    this.#previous = {
      blockId: last.blockId,
      commit: await this.store.commit(head.height),
      results: (await this.store.results(head.height)) ?? [],
      appHash: this.#state.appHash(),
    };
    this.#latestBlockTime = last.block.header?.time;
    this.#lastHeaderAppHash = last.block.header?.appHash ?? new Uint8Array();
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#lastCommitAt = this.clock();
    this.#tick();
  }

  /** Stops producing blocks, waits for a block being committed, closes the store. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#producing;
    await this.store.close();
  }

  get height(): number {
    return this.#head.height;
  }

  get head(): CommittedHead {
    return this.#head;
  }

  get latestBlockTime(): Timestamp | undefined {
    return this.#latestBlockTime;
  }

  get latestBlockId(): BlockID | undefined {
    return this.#previous.blockId;
  }

  /** Runs `work` between two blocks: none is produced until it ends (consistent snapshots of the store). */
  async betweenBlocks<T>(work: () => Promise<T>): Promise<T> {
    this.#paused += 1;
    try {
      await this.#producing;
      return await work();
    } finally {
      this.#paused -= 1;
    }
  }

  /** Committed state, read only after any commit in progress has finished. */
  async committedState(): Promise<LedgerState> {
    await this.#producing;
    return this.#state;
  }

  /** CheckTx, then admission to the mempool. */
  checkAndAdd(raw: Uint8Array): BroadcastResult {
    const hash = hashOf(raw);
    if (raw.length > this.home.config.mempool.maxTxBytes) {
      return { hash, result: failure(sdk.txTooLarge(`tx of ${raw.length} bytes is larger than ${this.home.config.mempool.maxTxBytes}`)) };
    }
    if (this.mempool.has(hash)) return { hash, result: failure(sdk.txDecode("tx already exists in cache")) };
    if (this.mempool.isFull(raw.length)) return { hash, result: failure(sdk.mempoolIsFull("mempool is full")) };
    const { result, checked } = this.app.checkTx(this.#state, this.#nextContext(), raw, (signer) => this.mempool.nextSequence(signer));
    if (checked) this.mempool.add(raw, checked);
    return { hash, result };
  }

  /** Resolves when the tx is committed in a block, or undefined after `timeoutMs`. */
  waitForInclusion(hash: string, timeoutMs: number): Promise<TxInclusion | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#inclusionWaiters.get(hash) ?? [];
      const timer = setTimeout(() => {
        const list = this.#inclusionWaiters.get(hash);
        if (list) list.splice(list.indexOf(done), 1);
        resolve(undefined);
      }, timeoutMs);
      const done = (inclusion: TxInclusion) => {
        clearTimeout(timer);
        resolve(inclusion);
      };
      waiters.push(done);
      this.#inclusionWaiters.set(hash, waiters);
    });
  }

  #nextContext(): BlockContext {
    const time = this.#latestBlockTime?.seconds ?? BigInt(Math.floor(Date.parse(this.home.genesis.genesis_time) / 1000));
    return { chainId: this.chainId, height: BigInt(this.#head.height + 1), time };
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      if (!this.#shouldProduce()) return this.#tick();
      this.#producing = this.#produceBlock()
        .catch((error) => {
          // A failed commit leaves memory ahead of disk: stop rather than sign on top of it.
          this.#stopped = true;
          this.events.emit("fatal", error);
        })
        .finally(() => {
          this.#producing = undefined;
          this.#tick();
        });
    }, TICK_MS);
  }

  /** CometBFT's rules for when the next block may be proposed. */
  #shouldProduce(): boolean {
    const { timeoutCommitMs, createEmptyBlocks, createEmptyBlocksIntervalMs } = this.home.config.consensus;
    if (this.#paused > 0) return false;
    const since = this.clock() - this.#lastCommitAt;
    if (this.#head.height > 0 && since < timeoutCommitMs) return false;
    if (this.#head.height === 0 || this.mempool.size > 0) return true;
    // A block that changed the state needs a next block whose header carries the new app hash.
    if (!equalBytes(this.#state.appHash(), this.#lastHeaderAppHash)) return true;
    const waitsForTxs = !createEmptyBlocks || createEmptyBlocksIntervalMs > 0;
    if (!waitsForTxs) return true;
    return createEmptyBlocksIntervalMs > 0 && since >= createEmptyBlocksIntervalMs;
  }

  async #produceBlock(): Promise<void> {
    const height = this.#head.height + 1;
    if (this.#head.signedHeight >= height) throw new Error(`height ${height} was already signed`);
    const time = this.#nextBlockTime();
    const pending = this.mempool.reap(Number(this.chain.blockMaxBytes) - 100_000, this.chain.blockMaxGas);
    const txs = pending.map((tx) => tx.raw);
    const ctx: BlockContext = { chainId: this.chainId, height: BigInt(height), time: time.seconds };
    const { results, changes } = this.app.executeBlock(this.#state, ctx, txs);
    const { block, blockId } = buildBlock(this.chain, BigInt(height), time, txs, this.#previous);
    const commit = signCommit(this.chain, BigInt(height), blockId, this.#voteTime(time));
    const appHash = this.#state.apply(changes);
    const txHashes = pending.map((tx) => tx.hash);
    const head: CommittedHead = { height, appHash: hex(appHash), blockHash: hex(blockId.hash), signedHeight: height };
    // The first block's batch also persists the genesis state: a restart rebuilds the whole state from the store.
    const stateChanges = this.#head.height === 0 ? new Map([...genesisState(this.home.genesis), ...changes]) : changes;
    await this.store.commitBlock({ height, block, blockId, commit, results, txHashes, stateChanges, head });
    await writeFileAtomic(this.home.paths.validatorState, `${JSON.stringify({ height: String(height), round: 0, step: 3 }, null, 2)}\n`);

    this.#head = head;
    this.#lastHeaderAppHash = block.header.appHash;
    this.#previous = { blockId, commit, results, appHash };
    this.#latestBlockTime = time;
    this.#lastCommitAt = this.clock();
    this.mempool.update(txHashes, (tx: PendingTx) => {
      const { checked } = this.app.checkTx(this.#state, this.#nextContext(), tx.raw, (signer) => this.mempool.nextSequence(signer));
      return checked;
    });
    const committed: CommittedBlock = { height, block, blockId, results, txHashes };
    txHashes.forEach((hash, index) => {
      const waiters = this.#inclusionWaiters.get(hash);
      this.#inclusionWaiters.delete(hash);
      for (const resolve of waiters ?? []) resolve({ height, index, result: results[index] });
    });
    this.events.emit("block", committed);
  }

  #nextBlockTime(): Timestamp {
    const ms = Math.max(this.clock(), this.#latestBlockTime ? timestampMs(this.#latestBlockTime) + 1 : 0);
    return msTimestamp(ms);
  }

  #voteTime(blockTime: Timestamp): Timestamp {
    return msTimestamp(Math.max(this.clock(), timestampMs(blockTime)));
  }
}

export function hex(bytes: Uint8Array): string {
  return bytesToHex(bytes).toUpperCase();
}

export function timestampMs(time: Timestamp): number {
  return Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6);
}

export function msTimestamp(ms: number): Timestamp {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

async function readSignedHeight(path: string): Promise<number> {
  try {
    return Number(JSON.parse(await readFile(path, "utf8")).height ?? 0);
  } catch {
    return 0;
  }
}

export type { Commit };
