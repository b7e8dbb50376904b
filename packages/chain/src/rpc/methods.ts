import {
  blockIdToJson,
  commitToJson,
  ContentRecord,
  headerToJson,
  timeToJson,
  merkleProof,
  Params as ParamsCodec,
  QUERY_PARAMS,
  QUERY_VERIFY_CONTENT,
  QueryVerifyContentRequest,
  QueryVerifyContentResponse,
  STATE_PROOF_OP,
  stateKeys,
  txHash,
} from "@daon/core";
import { BinaryReader, BinaryWriter } from "cosmjs-types/binary";
import { BaseAccount } from "cosmjs-types/cosmos/auth/v1beta1/auth";
import { QueryAccountRequest, QueryAccountResponse } from "cosmjs-types/cosmos/auth/v1beta1/query";
import { CommitmentProof } from "cosmjs-types/cosmos/ics23/v1/proofs";
import { nodeId } from "../home/keys.js";
import { hex, type LedgerNode } from "../node.js";
import { BASE_ACCOUNT_TYPE, readAccount, readParams, type TxResult } from "../state/app.js";
import { txHashHex } from "../state/digest.js";
import type { StateReader } from "../state/ledger-state.js";
import type { TxLocation } from "../store/ledger-store.js";
import { base64, blockJson, hexUpper, txResultJson } from "./json.js";
import { attributeMap, type Condition, heightRange, matches, parseQuery, QueryError } from "./query.js";

export type ParamKind = "string" | "int" | "bool" | "bytes" | "hex";
export type Params = Record<string, string | number | boolean | Uint8Array | undefined>;

/** A JSON-RPC error the caller caused: invalid params (-32602) or a failed request (-32603). */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: string,
  ) {
    super(message);
  }
}

export const invalidParams = (data: string) => new RpcError(-32602, "Invalid params", data);
const failed = (data: string) => new RpcError(-32603, "Internal error", data);

export interface Method {
  params: Record<string, ParamKind>;
  handle(node: LedgerNode, params: Params): Promise<unknown> | unknown;
}

const ABCI_VERSION = "0.1.0";
const COMET_VERSION = "0.38.17";
const MAX_PER_PAGE = 100;
const DEFAULT_PER_PAGE = 30;
const BROADCAST_COMMIT_TIMEOUT_MS = 10_000;

function heightOrLatest(node: LedgerNode, height: unknown): number {
  if (height === undefined || height === 0) {
    if (node.height === 0) throw failed("no block has been committed yet");
    return node.height;
  }
  const h = Number(height);
  if (!Number.isSafeInteger(h) || h < 0) throw invalidParams("height must be a positive integer");
  if (h > node.height) throw failed(`height ${h} must be less than or equal to the current blockchain height ${node.height}`);
  return h;
}

function paging(params: Params): { page: number; perPage: number } {
  const perPage = Math.min(Math.max(Number(params.per_page ?? DEFAULT_PER_PAGE) || DEFAULT_PER_PAGE, 1), MAX_PER_PAGE);
  const page = Number(params.page ?? 1);
  if (!Number.isSafeInteger(page) || page < 1) throw invalidParams("page must be a positive integer");
  return { page, perPage };
}

function orderBy(params: Params): "asc" | "desc" {
  const order = String(params.order_by ?? "asc") || "asc";
  if (order !== "asc" && order !== "desc") throw invalidParams('order_by must be "asc" or "desc"');
  return order;
}

function conditions(params: Params): Condition[] {
  try {
    return parseQuery(String(params.query ?? ""));
  } catch (error) {
    if (error instanceof QueryError) throw invalidParams(error.message);
    throw error;
  }
}

async function blockAt(node: LedgerNode, height: number) {
  const stored = await node.store.block(height);
  if (!stored) throw failed(`block ${height} is not in the store`);
  return stored;
}

async function txJson(node: LedgerNode, location: TxLocation, prove: boolean, results?: TxResult[]) {
  const { block } = await blockAt(node, location.height);
  const raw = block.data.txs[location.index];
  const result = (results ?? (await node.store.results(location.height)) ?? [])[location.index];
  const hash = txHashHex(raw);
  const answer: Record<string, unknown> = {
    hash,
    height: String(location.height),
    index: location.index,
    tx_result: txResultJson(result),
    tx: base64(raw),
  };
  if (prove) {
    // The leaves of data_hash are the tx hashes, so the proof is over them.
    const proof = merkleProof(block.data.txs.map(txHash), location.index);
    answer.proof = {
      root_hash: hexUpper(block.header.dataHash),
      data: base64(raw),
      proof: {
        total: String(proof.total),
        index: String(proof.index),
        leaf_hash: base64(proof.leafHash),
        aunts: proof.aunts.map(base64),
      },
    };
  }
  return answer;
}

async function searchTxs(node: LedgerNode, query: Condition[]): Promise<TxLocation[]> {
  const hashCondition = query.find((c) => c.key === "tx.hash" && c.op === "=");
  let candidates: AsyncIterable<TxLocation> | TxLocation[];
  if (hashCondition) {
    const location = await node.store.txLocation(hashCondition.value);
    candidates = location ? [location] : [];
  } else {
    const indexed = query.find((c) => c.op === "=" && c.key !== "tx.height");
    const [from, to] = heightRange(query, "tx.height", node.height);
    candidates = indexed ? node.store.txsWithAttribute(indexed.key, indexed.value) : from <= to ? node.store.txsInHeights(from, to) : [];
  }
  const found: TxLocation[] = [];
  const resultsCache = new Map<number, TxResult[]>();
  for await (const location of candidates) {
    let results = resultsCache.get(location.height);
    if (!results) {
      results = (await node.store.results(location.height)) ?? [];
      resultsCache.set(location.height, results);
    }
    const { block } = await blockAt(node, location.height);
    const hash = txHashHex(block.data.txs[location.index]);
    const attributes = attributeMap(results[location.index]?.events ?? [], { "tx.height": String(location.height), "tx.hash": hash });
    if (matches(query, attributes)) found.push(location);
    if (found.length > 100_000) throw failed("query matches more than 100000 txs; narrow it");
  }
  return found;
}

function status(node: LedgerNode) {
  const genesis = node.home.genesis;
  const validator = node.home.validatorKey;
  return {
    node_info: {
      protocol_version: { p2p: "8", block: "11", app: "0" },
      id: nodeId(node.home.nodeKey),
      listen_addr: "tcp://0.0.0.0:26656",
      network: node.chainId,
      version: COMET_VERSION,
      channels: "40202122233038606100",
      moniker: node.home.config.moniker,
      other: { tx_index: "on", rpc_address: node.home.config.rpc.laddr },
    },
    sync_info: {
      latest_block_hash: node.head.blockHash,
      latest_app_hash: node.head.height > 0 ? node.head.appHash : "",
      latest_block_height: String(node.height),
      latest_block_time: timeToJson(node.latestBlockTime),
      earliest_block_hash: "",
      earliest_app_hash: "",
      earliest_block_height: node.height > 0 ? "1" : "0",
      earliest_block_time: genesis.genesis_time,
      catching_up: false,
    },
    validator_info: { address: validator.address, pub_key: validator.pub_key, voting_power: "10" },
  };
}

async function abciQuery(node: LedgerNode, params: Params) {
  const path = String(params.path ?? "");
  const data = (params.data as Uint8Array | undefined) ?? new Uint8Array();
  const state = await node.committedState();
  const height = node.height;
  if (params.height !== undefined && Number(params.height) !== 0 && Number(params.height) !== height) {
    return queryAnswer({
      code: 26,
      codespace: "sdk",
      log: `only the latest height (${height}) can be queried; state of past heights is not kept`,
      height,
    });
  }
  const prove = params.prove === true;
  const withProof = (key: string) => {
    const value = state.get(key) ?? new Uint8Array();
    const proof = prove ? CommitmentProof.encode(state.prove(key)).finish() : undefined;
    return { value, proof };
  };
  try {
    switch (path) {
      case QUERY_VERIFY_CONTENT: {
        const request = QueryVerifyContentRequest.decode(data);
        const key = stateKeys.record(request.contentHash);
        const { value, proof } = withProof(key);
        const record = value.length ? ContentRecord.decode(value) : undefined;
        const response = QueryVerifyContentResponse.fromPartial(
          record
            ? {
                verified: true,
                creator: record.creator,
                license: record.license,
                timestamp: record.timestamp,
                owner: record.owner,
                aiTrainingPolicy: record.aiTrainingPolicy,
                height: record.height,
                txHash: record.txHash,
              }
            : { verified: false },
        );
        // The proof is over the stored record; the answer's value is the query response.
        return queryAnswer({ key: Buffer.from(key), value: QueryVerifyContentResponse.encode(response).finish(), proof, height });
      }
      case QUERY_PARAMS: {
        const params = readParams(state);
        const value = new BinaryWriter().uint32(10).bytes(ParamsCodec.encode(params).finish()).finish();
        return queryAnswer({ value, height });
      }
      case "/cosmos.auth.v1beta1.Query/Account": {
        const { address } = QueryAccountRequest.decode(data);
        const account = readAccount(state, address);
        if (!account) {
          return queryAnswer({
            code: 22,
            codespace: "sdk",
            log: `rpc error: code = NotFound desc = account ${address} not found: key not found`,
            height,
          });
        }
        const value = QueryAccountResponse.encode({
          account: { typeUrl: BASE_ACCOUNT_TYPE, value: BaseAccount.encode(account).finish() },
        }).finish();
        return queryAnswer({ value, height });
      }
      case "/cosmos.tx.v1beta1.Service/Simulate":
        return queryAnswer(simulate(node, state, data, height));
      default:
        return queryAnswer({ code: 6, codespace: "sdk", log: `unknown query path ${JSON.stringify(path.slice(0, 200))}`, height });
    }
  } catch (error) {
    return queryAnswer({ code: 2, codespace: "sdk", log: `cannot decode query data: ${(error as Error).message}`, height });
  }
}

function simulate(node: LedgerNode, state: StateReader, data: Uint8Array, height: number) {
  const txBytes = decodeSimulateRequest(data);
  const outcome = node.app.simulate(
    state,
    { chainId: node.chainId, height: BigInt(height + 1), time: node.latestBlockTime?.seconds ?? 0n },
    txBytes,
  );
  if (outcome.code !== 0) return { code: outcome.code, codespace: outcome.codespace, log: outcome.log, height };
  const writer = new BinaryWriter();
  writer.uint32(10).fork().uint32(8).uint64(outcome.gasWanted).uint32(16).uint64(outcome.gasUsed).ldelim();
  writer.uint32(18).fork().ldelim();
  return { value: writer.finish(), height };
}

function decodeSimulateRequest(data: Uint8Array): Uint8Array {
  // SimulateRequest: field 2 is tx_bytes; field 1 (the deprecated decoded tx) is ignored.
  const reader = new BinaryReader(data);
  let txBytes: Uint8Array = new Uint8Array();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 2 && (tag & 7) === 2) txBytes = reader.bytes();
    else reader.skipType(tag & 7);
  }
  return txBytes;
}

function queryAnswer(answer: {
  code?: number;
  codespace?: string;
  log?: string;
  key?: Uint8Array;
  value?: Uint8Array;
  proof?: Uint8Array;
  height: number;
}) {
  return {
    response: {
      code: answer.code ?? 0,
      log: answer.log ?? "",
      info: "",
      index: "0",
      key: answer.key ? base64(answer.key) : null,
      value: answer.value ? base64(answer.value) : null,
      proofOps: answer.proof
        ? { ops: [{ type: STATE_PROOF_OP, key: base64(answer.key ?? new Uint8Array()), data: base64(answer.proof) }] }
        : null,
      height: String(answer.height),
      codespace: answer.codespace ?? "",
    },
  };
}

async function broadcast(node: LedgerNode, params: Params, mode: "async" | "sync" | "commit") {
  const tx = params.tx as Uint8Array | undefined;
  if (!tx || tx.length === 0) throw invalidParams("tx is empty");
  const { hash, result } = node.checkAndAdd(tx);
  if (mode !== "commit") {
    const check =
      mode === "async"
        ? { code: 0, data: "", log: "", codespace: "" }
        : { code: result.code, data: base64(result.data), log: result.log, codespace: result.codespace };
    return { ...check, hash };
  }
  const checkTx = txResultJson(result);
  if (result.code !== 0)
    return { check_tx: checkTx, tx_result: txResultJson({ ...result, code: 0, log: "", events: [] }), hash, height: "0" };
  const inclusion = await node.waitForInclusion(hash, BROADCAST_COMMIT_TIMEOUT_MS);
  if (!inclusion) throw failed("timed out waiting for tx to be included in a block");
  return { check_tx: checkTx, tx_result: txResultJson(inclusion.result), hash, height: String(inclusion.height) };
}

export const methods: Record<string, Method> = {
  health: { params: {}, handle: () => ({}) },
  status: { params: {}, handle: (node) => status(node) },
  net_info: { params: {}, handle: () => ({ listening: true, listeners: ["Listener(@)"], n_peers: "0", peers: [] }) },
  abci_info: {
    params: {},
    handle: (node) => ({
      response: {
        data: "daon",
        version: ABCI_VERSION,
        app_version: "0",
        last_block_height: String(node.height),
        last_block_app_hash: node.height > 0 ? Buffer.from(node.head.appHash, "hex").toString("base64") : "",
      },
    }),
  },
  abci_query: { params: { path: "string", data: "hex", height: "int", prove: "bool" }, handle: abciQuery },
  genesis: { params: {}, handle: (node) => ({ genesis: node.home.genesis }) },
  block: {
    params: { height: "int" },
    handle: async (node, params) => {
      const { block, blockId } = await blockAt(node, heightOrLatest(node, params.height));
      return { block_id: blockIdToJson(blockId), block: blockJson(block) };
    },
  },
  block_by_hash: {
    params: { hash: "bytes" },
    handle: async (node, params) => {
      const height = await node.store.heightOfBlockHash(hexUpper((params.hash as Uint8Array) ?? new Uint8Array()));
      if (height === undefined) return { block_id: blockIdToJson(undefined), block: null };
      const { block, blockId } = await blockAt(node, height);
      return { block_id: blockIdToJson(blockId), block: blockJson(block) };
    },
  },
  block_results: {
    params: { height: "int" },
    handle: async (node, params) => {
      const height = heightOrLatest(node, params.height);
      const results = (await node.store.results(height)) ?? [];
      const next = height < node.height ? await node.store.block(height + 1) : undefined;
      return {
        height: String(height),
        txs_results: results.length ? results.map(txResultJson) : null,
        finalize_block_events: [],
        validator_updates: null,
        consensus_param_updates: null,
        app_hash: next ? hexUpper(next.block.header.appHash) : node.head.appHash,
      };
    },
  },
  blockchain: {
    params: { minHeight: "int", maxHeight: "int" },
    handle: async (node, params) => {
      const max = Math.min(Number(params.maxHeight || node.height), node.height);
      const min = Math.max(Number(params.minHeight || 1), max - 19, 1);
      if (min > max && node.height > 0) throw invalidParams(`min height ${min} can't be greater than max height ${max}`);
      const metas = [];
      for (let h = max; h >= min; h--) {
        const { block, blockId } = await blockAt(node, h);
        metas.push({
          block_id: blockIdToJson(blockId),
          block_size: String(await node.store.blockSize(h)),
          header: headerToJson(block.header),
          num_txs: String(block.data.txs.length),
        });
      }
      return { last_height: String(node.height), block_metas: metas };
    },
  },
  commit: {
    params: { height: "int" },
    handle: async (node, params) => {
      const height = heightOrLatest(node, params.height);
      const { block } = await blockAt(node, height);
      const commit = await node.store.commit(height);
      return { signed_header: { header: headerToJson(block.header), commit: commitToJson(commit!) }, canonical: true };
    },
  },
  validators: {
    params: { height: "int", page: "int", per_page: "int" },
    handle: (node, params) => {
      const height = heightOrLatest(node, params.height);
      const v = node.home.validatorKey;
      return {
        block_height: String(height),
        validators: [{ address: v.address, pub_key: v.pub_key, voting_power: "10", proposer_priority: "0" }],
        count: "1",
        total: "1",
      };
    },
  },
  consensus_params: {
    params: { height: "int" },
    handle: (node, params) => ({
      block_height: String(heightOrLatest(node, params.height)),
      consensus_params: node.home.genesis.consensus_params,
    }),
  },
  tx: {
    params: { hash: "bytes", prove: "bool" },
    handle: async (node, params) => {
      const hash = hexUpper((params.hash as Uint8Array) ?? new Uint8Array());
      const location = await node.store.txLocation(hash);
      if (!location) throw failed(`tx (${hash}) not found`);
      return txJson(node, location, params.prove === true);
    },
  },
  tx_search: {
    params: { query: "string", prove: "bool", page: "int", per_page: "int", order_by: "string" },
    handle: async (node, params) => {
      const query = conditions(params);
      const { page, perPage } = paging(params);
      const order = orderBy(params);
      const found = await searchTxs(node, query);
      found.sort((a, b) => (a.height - b.height || a.index - b.index) * (order === "asc" ? 1 : -1));
      const pageItems = found.slice((page - 1) * perPage, page * perPage);
      if (page > 1 && pageItems.length === 0)
        throw invalidParams(`page should be within [1, ${Math.max(1, Math.ceil(found.length / perPage))}] range, given ${page}`);
      const txs = [];
      for (const location of pageItems) txs.push(await txJson(node, location, params.prove === true));
      return { txs, total_count: String(found.length) };
    },
  },
  block_search: {
    params: { query: "string", page: "int", per_page: "int", order_by: "string" },
    handle: async (node, params) => {
      const query = conditions(params);
      const { page, perPage } = paging(params);
      const order = orderBy(params);
      const [from, to] = heightRange(query, "block.height", node.height);
      const heights: number[] = [];
      for (let h = from; h <= to; h++) if (matches(query, attributeMap([], { "block.height": String(h) }))) heights.push(h);
      if (order === "desc") heights.reverse();
      const blocks = [];
      for (const h of heights.slice((page - 1) * perPage, page * perPage)) {
        const { block, blockId } = await blockAt(node, h);
        blocks.push({ block_id: blockIdToJson(blockId), block: blockJson(block) });
      }
      return { blocks, total_count: String(heights.length) };
    },
  },
  broadcast_tx_async: { params: { tx: "bytes" }, handle: (node, params) => broadcast(node, params, "async") },
  broadcast_tx_sync: { params: { tx: "bytes" }, handle: (node, params) => broadcast(node, params, "sync") },
  broadcast_tx_commit: { params: { tx: "bytes" }, handle: (node, params) => broadcast(node, params, "commit") },
  num_unconfirmed_txs: {
    params: {},
    handle: (node) => ({
      n_txs: String(node.mempool.size),
      total: String(node.mempool.size),
      total_bytes: String(node.mempool.bytes),
      txs: null,
    }),
  },
  unconfirmed_txs: {
    params: { limit: "int" },
    handle: (node, params) => {
      const limit = Math.min(Math.max(Number(params.limit ?? 30) || 30, 1), MAX_PER_PAGE);
      const txs = node.mempool.list(limit);
      return {
        n_txs: String(txs.length),
        total: String(node.mempool.size),
        total_bytes: String(node.mempool.bytes),
        txs: txs.map((tx) => base64(tx.raw)),
      };
    },
  },
};
