import { ClassicLevel } from "classic-level";
import { Block } from "cosmjs-types/tendermint/types/block";
import { BlockID, Commit } from "cosmjs-types/tendermint/types/types";
import type { TxEvent, TxResult } from "../state/app.js";

/** The last committed point: what a restarted node resumes from. */
export interface CommittedHead {
  height: number;
  /** App hash of the state after `height`: it goes into header `height + 1`. */
  appHash: string;
  /** Hex; empty at height 0. */
  blockHash: string;
  /** Height the validator last signed; equal to `height` by construction, checked on start. */
  signedHeight: number;
}

export interface TxLocation {
  height: number;
  index: number;
}

/** Everything one block adds, written in one atomic, synced batch. */
export interface BlockWrite {
  height: number;
  block: Block;
  blockId: BlockID;
  commit: Commit;
  results: TxResult[];
  txHashes: string[];
  stateChanges: ReadonlyMap<string, Uint8Array>;
  head: CommittedHead;
}

interface StoredResult extends Omit<TxResult, "data" | "gasWanted" | "gasUsed"> {
  data: string;
  gasWanted: string;
  gasUsed: string;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");
const heightKey = (h: number) => pad(h, 16);
const keys = {
  head: "meta/head",
  block: (h: number) => `blk/${heightKey(h)}`,
  blockId: (h: number) => `bid/${heightKey(h)}`,
  commit: (h: number) => `cmt/${heightKey(h)}`,
  results: (h: number) => `res/${heightKey(h)}`,
  blockByHash: (hash: string) => `bh/${hash}`,
  tx: (hash: string) => `tx/${hash}`,
  txAt: (h: number, i: number) => `th/${heightKey(h)}/${pad(i, 6)}`,
  event: (compositeKey: string, value: string, h: number, i: number) => `ev/${compositeKey}=${value}\u0000${heightKey(h)}/${pad(i, 6)}`,
  state: (key: string) => `s/${key}`,
};

/** Block store, tx index and state of one node, in LevelDB under the node's data directory. */
export class LedgerStore {
  readonly #db: ClassicLevel<string, Uint8Array>;

  constructor(path: string) {
    this.#db = new ClassicLevel<string, Uint8Array>(path, { keyEncoding: "utf8", valueEncoding: "view" });
  }

  async open(): Promise<void> {
    await this.#db.open();
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async head(): Promise<CommittedHead | undefined> {
    const bytes = await this.#db.get(keys.head);
    return bytes && (JSON.parse(Buffer.from(bytes).toString("utf8")) as CommittedHead);
  }

  async *stateEntries(): AsyncGenerator<[string, Uint8Array]> {
    for await (const [key, value] of this.#db.iterator({ gte: "s/", lt: "s0" })) yield [key.slice(2), value];
  }

  /** Every key and value in key order: what a snapshot copies. */
  async *entries(): AsyncGenerator<[string, Uint8Array]> {
    for await (const entry of this.#db.iterator()) yield entry;
  }

  async commitBlock(write: BlockWrite): Promise<void> {
    const batch = this.#db.batch();
    const h = write.height;
    batch.put(keys.block(h), Block.encode(write.block).finish());
    batch.put(keys.blockId(h), BlockID.encode(write.blockId).finish());
    batch.put(keys.commit(h), Commit.encode(write.commit).finish());
    batch.put(keys.results(h), json(write.results.map(storeResult)));
    batch.put(keys.blockByHash(Buffer.from(write.blockId.hash).toString("hex").toUpperCase()), json(h));
    write.txHashes.forEach((hash, index) => {
      batch.put(keys.tx(hash), json({ height: h, index } satisfies TxLocation));
      batch.put(keys.txAt(h, index), Buffer.from(hash));
      for (const [compositeKey, value] of indexedAttributes(write.results[index].events)) {
        batch.put(keys.event(compositeKey, value, h, index), Buffer.from(hash));
      }
    });
    for (const [key, value] of write.stateChanges) batch.put(keys.state(key), value);
    batch.put(keys.head, json(write.head));
    await batch.write({ sync: true });
  }

  async block(h: number): Promise<{ block: Block; blockId: BlockID } | undefined> {
    const [block, blockId] = await this.#db.getMany([keys.block(h), keys.blockId(h)]);
    return block && blockId ? { block: Block.decode(block), blockId: BlockID.decode(blockId) } : undefined;
  }

  async blockSize(h: number): Promise<number> {
    return (await this.#db.get(keys.block(h)))?.length ?? 0;
  }

  async heightOfBlockHash(hash: string): Promise<number | undefined> {
    const bytes = await this.#db.get(keys.blockByHash(hash.toUpperCase()));
    return bytes && Number(parse(bytes));
  }

  async commit(h: number): Promise<Commit | undefined> {
    const bytes = await this.#db.get(keys.commit(h));
    return bytes && Commit.decode(bytes);
  }

  async results(h: number): Promise<TxResult[] | undefined> {
    const bytes = await this.#db.get(keys.results(h));
    return bytes && (parse(bytes) as StoredResult[]).map(loadResult);
  }

  async txLocation(hash: string): Promise<TxLocation | undefined> {
    const bytes = await this.#db.get(keys.tx(hash.toUpperCase()));
    return bytes && (parse(bytes) as TxLocation);
  }

  /** Locations of txs in a height range, in order. */
  async *txsInHeights(from: number, to: number): AsyncGenerator<TxLocation> {
    for await (const key of this.#db.keys({ gte: `th/${heightKey(from)}/`, lt: `th/${heightKey(to + 1)}/` })) {
      const [, height, index] = key.split("/");
      yield { height: Number(height), index: Number(index) };
    }
  }

  /** Locations of txs whose events carry `compositeKey=value`. */
  async *txsWithAttribute(compositeKey: string, value: string): AsyncGenerator<TxLocation> {
    const prefix = `ev/${compositeKey}=${value}\u0000`;
    for await (const key of this.#db.keys({ gte: prefix, lt: `${prefix}\uffff` })) {
      const [height, index] = key.slice(prefix.length).split("/");
      yield { height: Number(height), index: Number(index) };
    }
  }
}

function indexedAttributes(events: TxEvent[]): [string, string][] {
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const event of events) {
    for (const attribute of event.attributes) {
      if (!attribute.index) continue;
      const compositeKey = `${event.type}.${attribute.key}`;
      const id = `${compositeKey}=${attribute.value}`;
      if (seen.has(id) || attribute.value.length > 512) continue;
      seen.add(id);
      pairs.push([compositeKey, attribute.value]);
    }
  }
  return pairs;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const parse = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString("utf8"));

function storeResult(result: TxResult): StoredResult {
  return {
    ...result,
    data: Buffer.from(result.data).toString("base64"),
    gasWanted: String(result.gasWanted),
    gasUsed: String(result.gasUsed),
  };
}

function loadResult(stored: StoredResult): TxResult {
  return { ...stored, data: Buffer.from(stored.data, "base64"), gasWanted: BigInt(stored.gasWanted), gasUsed: BigInt(stored.gasUsed) };
}
