import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import type { Timestamp } from "cosmjs-types/google/protobuf/timestamp";
import type { BlockID, Commit, Header } from "cosmjs-types/tendermint/types/types";

/**
 * CometBFT 0.38's JSON for headers and commits: int64 as strings, hashes and addresses as
 * upper-case hex, signatures as base64, times as RFC 3339 with nanoseconds. Both directions
 * live here so the node that writes it and a verifier that reads it cannot drift apart.
 */
export interface BlockIdJson {
  hash: string;
  parts: { total: number; hash: string };
}

export interface HeaderJson {
  version: { block: string; app: string };
  chain_id: string;
  height: string;
  time: string;
  last_block_id: BlockIdJson;
  last_commit_hash: string;
  data_hash: string;
  validators_hash: string;
  next_validators_hash: string;
  consensus_hash: string;
  app_hash: string;
  last_results_hash: string;
  evidence_hash: string;
  proposer_address: string;
}

export interface CommitJson {
  height: string;
  round: number;
  block_id: BlockIdJson;
  signatures: { block_id_flag: number; validator_address: string; timestamp: string; signature: string | null }[];
}

const hex = (bytes: Uint8Array) => bytesToHex(bytes).toUpperCase();
const fromHex = (text: string) => hexToBytes(text.toLowerCase());
const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

export function timeToJson(time: Timestamp | undefined): string {
  if (!time) return "0001-01-01T00:00:00Z";
  const iso = new Date(Number(time.seconds) * 1000).toISOString().slice(0, 19);
  const nanos = time.nanos === 0 ? "" : `.${String(time.nanos).padStart(9, "0").replace(/0+$/, "")}`;
  return `${iso}${nanos}Z`;
}

export function timeFromJson(text: string): Timestamp {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!match) throw new Error(`not an RFC 3339 UTC time: ${JSON.stringify(text)}`);
  return { seconds: BigInt(Date.parse(`${match[1]}Z`) / 1000), nanos: Number((match[2] ?? "").padEnd(9, "0")) };
}

export function blockIdToJson(id: BlockID | undefined): BlockIdJson {
  const empty = !id || (id.hash.length === 0 && id.partSetHeader.total === 0);
  return {
    hash: empty ? "" : hex(id.hash),
    parts: { total: empty ? 0 : id.partSetHeader.total, hash: empty ? "" : hex(id.partSetHeader.hash) },
  };
}

export function blockIdFromJson(json: BlockIdJson): BlockID {
  return { hash: fromHex(json.hash), partSetHeader: { total: json.parts.total, hash: fromHex(json.parts.hash) } };
}

export function headerToJson(header: Header): HeaderJson {
  return {
    version: { block: String(header.version.block), app: String(header.version.app) },
    chain_id: header.chainId,
    height: String(header.height),
    time: timeToJson(header.time),
    last_block_id: blockIdToJson(header.lastBlockId),
    last_commit_hash: hex(header.lastCommitHash),
    data_hash: hex(header.dataHash),
    validators_hash: hex(header.validatorsHash),
    next_validators_hash: hex(header.nextValidatorsHash),
    consensus_hash: hex(header.consensusHash),
    app_hash: hex(header.appHash),
    last_results_hash: hex(header.lastResultsHash),
    evidence_hash: hex(header.evidenceHash),
    proposer_address: hex(header.proposerAddress),
  };
}

export function headerFromJson(json: HeaderJson): Header {
  return {
    version: { block: BigInt(json.version.block), app: BigInt(json.version.app ?? "0") },
    chainId: json.chain_id,
    height: BigInt(json.height),
    time: timeFromJson(json.time),
    lastBlockId: blockIdFromJson(json.last_block_id),
    lastCommitHash: fromHex(json.last_commit_hash),
    dataHash: fromHex(json.data_hash),
    validatorsHash: fromHex(json.validators_hash),
    nextValidatorsHash: fromHex(json.next_validators_hash),
    consensusHash: fromHex(json.consensus_hash),
    appHash: fromHex(json.app_hash),
    lastResultsHash: fromHex(json.last_results_hash),
    evidenceHash: fromHex(json.evidence_hash),
    proposerAddress: fromHex(json.proposer_address),
  };
}

export function commitToJson(commit: Commit): CommitJson {
  return {
    height: String(commit.height),
    round: commit.round,
    block_id: blockIdToJson(commit.blockId),
    signatures: commit.signatures.map((sig) => ({
      block_id_flag: sig.blockIdFlag,
      validator_address: hex(sig.validatorAddress),
      timestamp: timeToJson(sig.timestamp),
      signature: sig.signature.length ? base64(sig.signature) : null,
    })),
  };
}

export function commitFromJson(json: CommitJson): Commit {
  return {
    height: BigInt(json.height),
    round: json.round,
    blockId: blockIdFromJson(json.block_id),
    signatures: json.signatures.map((sig) => ({
      blockIdFlag: sig.block_id_flag,
      validatorAddress: fromHex(sig.validator_address),
      timestamp: timeFromJson(sig.timestamp),
      signature: sig.signature ? fromBase64(sig.signature) : new Uint8Array(),
    })),
  };
}
