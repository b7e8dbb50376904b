import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { ClassicLevel } from "classic-level";
import { homePaths } from "../home/home.js";
import { type Genesis, validateGenesis } from "../home/genesis.js";
import { hex } from "../node.js";
import { LedgerState } from "../state/ledger-state.js";
import { LedgerStore } from "../store/ledger-store.js";

/** What a snapshot holds: one committed height of one chain. */
export interface LedgerSnapshot {
  chainId: string;
  height: number;
  /** App hash of the state after `height` (the next header carries it). */
  appHash: string;
  /** SHA-256 of genesis.json as stored, hex. */
  genesisHash: string;
  keys: boolean;
}

const BATCH_ENTRIES = 1000;

/**
 * Copies a node home at the store's committed height into `out` (a new or empty directory):
 * genesis and config, the store (entry by entry into a fresh LevelDB, so a compaction running
 * meanwhile cannot tear the copy), the validator's signing state, and the keys only if asked.
 * The caller guarantees no block is committed meanwhile (the node pauses, or is not running).
 */
export async function copyLedgerHome(home: string, store: LedgerStore, out: string, options: { keys: boolean }): Promise<LedgerSnapshot> {
  const from = homePaths(home);
  const to = homePaths(out);
  if (existsSync(out) && (await readdir(out)).length > 0) throw new Error(`snapshot target ${out} is not empty`);
  for (const dir of [to.home, to.configDir, to.dataDir]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  const head = await store.head();
  const genesisText = await readFile(from.genesis, "utf8");
  const genesis = JSON.parse(genesisText) as Genesis;
  await copyPrivate(from.genesis, to.genesis, 0o644);
  await copyPrivate(from.config, to.config, 0o644);
  if (options.keys) {
    await copyPrivate(from.validatorKey, to.validatorKey, 0o600);
    await copyPrivate(from.nodeKey, to.nodeKey, 0o600);
  }
  if (existsSync(from.validatorState)) await copyPrivate(from.validatorState, to.validatorState, 0o600);

  const copy = new ClassicLevel<string, Uint8Array>(to.ledgerDb, { keyEncoding: "utf8", valueEncoding: "view" });
  await copy.open();
  try {
    let batch = copy.batch();
    for await (const [key, value] of store.entries()) {
      batch.put(key, value);
      if (batch.length >= BATCH_ENTRIES) {
        await batch.write();
        batch = copy.batch();
      }
    }
    await batch.write({ sync: true });
  } finally {
    await copy.close();
  }
  await chmod(to.ledgerDb, 0o700);
  return {
    chainId: genesis.chain_id,
    height: head?.height ?? 0,
    appHash: head?.appHash ?? "",
    genesisHash: sha256(genesisText),
    keys: options.keys,
  };
}

/** Copies a home whose node is not running (its store is opened here; a running node holds its lock). */
export async function copyStoppedLedgerHome(home: string, out: string, options: { keys: boolean }): Promise<LedgerSnapshot> {
  const store = new LedgerStore(homePaths(home).ledgerDb);
  try {
    await store.open();
  } catch (error) {
    throw new Error(
      `cannot open the ledger store at ${homePaths(home).ledgerDb} (a node holds it, but its admin socket did not answer?): ${(error as Error).message}`,
    );
  }
  try {
    return await copyLedgerHome(home, store, out, options);
  } finally {
    await store.close();
  }
}

/** A home's committed point as a restarted node would see it: the app hash recomputed from the stored state. */
export interface LedgerInspection extends LedgerSnapshot {
  /** App hash recomputed from every stored state entry; equals `appHash` in a sound store. */
  computedAppHash: string;
  /** The block at `height` is present. */
  headBlock: boolean;
  stateEntries: number;
}

/** Loads a home's store read-only the way the node does at start and recomputes its app hash (for backup verify). */
export async function inspectLedgerHome(home: string): Promise<LedgerInspection> {
  const paths = homePaths(home);
  const genesisText = await readFile(paths.genesis, "utf8");
  const genesis = JSON.parse(genesisText) as Genesis;
  validateGenesis(genesis);
  if (!existsSync(paths.ledgerDb)) throw new Error(`no ledger store in ${home}`);
  const store = new LedgerStore(paths.ledgerDb);
  await store.open();
  try {
    const head = await store.head();
    const entries: [string, Uint8Array][] = [];
    for await (const entry of store.stateEntries()) entries.push(entry);
    const state = LedgerState.fromEntries(entries);
    return {
      chainId: genesis.chain_id,
      height: head?.height ?? 0,
      appHash: head?.appHash ?? "",
      genesisHash: sha256(genesisText),
      keys: existsSync(paths.validatorKey),
      computedAppHash: head ? hex(state.appHash()) : "",
      headBlock: head ? (await store.block(head.height)) !== undefined : true,
      stateEntries: entries.length,
    };
  } finally {
    await store.close();
  }
}

async function copyPrivate(from: string, to: string, mode: number): Promise<void> {
  await copyFile(from, to);
  await chmod(to, mode);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
