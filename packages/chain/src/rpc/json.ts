import { bytesToHex } from "@noble/hashes/utils.js";
import { commitToJson, headerToJson } from "@daon/core";
import type { Block } from "cosmjs-types/tendermint/types/block";
import type { TxResult } from "../state/app.js";

/**
 * CometBFT 0.38's JSON: numbers as strings (int64) or numbers (int32), bytes as upper-case
 * hex (hashes, addresses) or base64 (txs, signatures, ABCI data). The rest of the node never sees it.
 */
export const hexUpper = (bytes: Uint8Array) => bytesToHex(bytes).toUpperCase();
export const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

export function blockJson(block: Block) {
  return {
    header: headerToJson(block.header),
    data: { txs: block.data.txs.map(base64) },
    evidence: { evidence: [] },
    last_commit: commitToJson(block.lastCommit!),
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
