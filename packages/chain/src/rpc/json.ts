import { bytesToHex } from "@noble/hashes/utils.js";
import type { Timestamp } from "cosmjs-types/google/protobuf/timestamp";
import type { Block } from "cosmjs-types/tendermint/types/block";
import type { BlockID, Commit, Header } from "cosmjs-types/tendermint/types/types";
import type { TxResult } from "../state/app.js";

/**
 * CometBFT 0.38's JSON: numbers as strings (int64) or numbers (int32), bytes as upper-case
 * hex (hashes, addresses) or base64 (txs, signatures, ABCI data). The rest of the node never sees it.
 */
export const hexUpper = (bytes: Uint8Array) => bytesToHex(bytes).toUpperCase();
export const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

export function rfc3339(time: Timestamp | undefined): string {
  if (!time) return "0001-01-01T00:00:00Z";
  const iso = new Date(Number(time.seconds) * 1000).toISOString().slice(0, 19);
  const nanos = time.nanos === 0 ? "" : `.${String(time.nanos).padStart(9, "0").replace(/0+$/, "")}`;
  return `${iso}${nanos}Z`;
}

export function blockIdJson(id: BlockID | undefined) {
  return {
    hash: id ? hexUpper(id.hash) : "",
    parts: { total: id?.partSetHeader.total ?? 0, hash: id ? hexUpper(id.partSetHeader.hash) : "" },
  };
}

export function headerJson(header: Header) {
  return {
    version: { block: String(header.version.block), app: String(header.version.app) },
    chain_id: header.chainId,
    height: String(header.height),
    time: rfc3339(header.time),
    last_block_id: blockIdJson(header.lastBlockId.hash.length ? header.lastBlockId : undefined),
    last_commit_hash: hexUpper(header.lastCommitHash),
    data_hash: hexUpper(header.dataHash),
    validators_hash: hexUpper(header.validatorsHash),
    next_validators_hash: hexUpper(header.nextValidatorsHash),
    consensus_hash: hexUpper(header.consensusHash),
    app_hash: hexUpper(header.appHash),
    last_results_hash: hexUpper(header.lastResultsHash),
    evidence_hash: hexUpper(header.evidenceHash),
    proposer_address: hexUpper(header.proposerAddress),
  };
}

export function commitJson(commit: Commit) {
  return {
    height: String(commit.height),
    round: commit.round,
    block_id: blockIdJson(commit.blockId.hash.length ? commit.blockId : undefined),
    signatures: commit.signatures.map((sig) => ({
      block_id_flag: sig.blockIdFlag,
      validator_address: hexUpper(sig.validatorAddress),
      timestamp: rfc3339(sig.timestamp),
      signature: base64(sig.signature),
    })),
  };
}

export function blockJson(block: Block) {
  return {
    header: headerJson(block.header),
    data: { txs: block.data.txs.map(base64) },
    evidence: { evidence: [] },
    last_commit: commitJson(block.lastCommit!),
  };
}

export function txResultJson(result: TxResult) {
  return {
    code: result.code,
    data: base64(result.data),
    log: result.log,
    info: "",
    gas_wanted: String(result.gasWanted),
    gas_used: String(result.gasUsed),
    events: result.events,
    codespace: result.codespace,
  };
}
