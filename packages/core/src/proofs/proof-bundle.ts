import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { TxBody, TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { type CommitJson, commitFromJson, type HeaderJson, headerFromJson } from "../blocks/comet-json.js";
import { equalBytes, leafHash, verifyMerkleProof } from "../blocks/merkle.js";
import { toLedgerHash } from "../content/hash.js";
import { ContentRecord, MsgRegisterContent } from "../registry/messages.js";
import { ProofError, verifyCommittedHeader, verifyRegistrationProof } from "./registration-proof.js";

/** What `GET /api/v1/proof/:hash` returns (api.md §2.4): everything needed to check a registration offline. */
export interface ProofBundle {
  version: "daon-proof-v1";
  chainId: string;
  contentHash: string;
  present: boolean;
  record?: Record<string, unknown>;
  tx?: { hash: string; height: number; index: number; msgIndex: number; raw: string };
  txProof?: { rootHash: string; total: number; index: number; leafHash: string; aunts: string[] };
  header?: HeaderJson;
  commit?: CommitJson;
  validators: { address: string; pub_key: { type: string; value: string }; voting_power: string }[];
  stateProof: { height: number; key: string; value: string; proofOps: { type: string; key: string; data: string }[] };
  stateHeader: HeaderJson;
  stateCommit: CommitJson;
}

export type VerifiedBundle = { present: true; record: ContentRecord; height: number; txHash: string } | { present: false; height: number };

const fromBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromHex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (h) => Number.parseInt(h, 16));

/**
 * Verifies a proof bundle without any network and without trusting the server: every header
 * must carry the trusted validator's signature, the tx must be in its block's data, and the
 * record (or its absence) must be in the state committed by the following block's app hash.
 */
export function verifyProofBundle(bundle: ProofBundle, trusted: { validatorPublicKey: Uint8Array; chainId?: string }): VerifiedBundle {
  try {
    return check(bundle, trusted);
  } catch (error) {
    if (error instanceof ProofError) throw error;
    throw new ProofError(`malformed proof bundle: ${(error as Error).message}`);
  }
}

function check(bundle: ProofBundle, trusted: { validatorPublicKey: Uint8Array; chainId?: string }): VerifiedBundle {
  if (bundle.version !== "daon-proof-v1") throw new ProofError(`unknown bundle version ${JSON.stringify(bundle.version)}`);
  if (trusted.chainId && bundle.chainId !== trusted.chainId) throw new ProofError(`the bundle is for chain ${bundle.chainId}`);
  const ledgerHash = toLedgerHash(bundle.contentHash);

  const stateHeader = headerFromJson(bundle.stateHeader);
  if (stateHeader.chainId !== bundle.chainId) throw new ProofError("the state header is for another chain");
  verifyCommittedHeader(stateHeader, commitFromJson(bundle.stateCommit), trusted.validatorPublicKey);
  const stateHeight = Number(bundle.stateProof.height);
  if (Number(stateHeader.height) !== stateHeight + 1) throw new ProofError("the state header does not follow the proved height");
  const [op] = bundle.stateProof.proofOps;
  if (!op || bundle.stateProof.proofOps.length !== 1) throw new ProofError("the state proof needs exactly one proof op");
  const proved = verifyRegistrationProof(stateHeader.appHash, ledgerHash, {
    type: op.type,
    key: fromBase64(op.key),
    data: fromBase64(op.data),
  });
  if (!proved.present) {
    if (bundle.present) throw new ProofError("the bundle claims a registration its state proof shows absent");
    return { present: false, height: stateHeight };
  }
  if (!bundle.present) throw new ProofError("the bundle claims absence but its state proof shows a record");
  // What the bundle states in plain fields must be what its proof proves.
  if (bundle.stateProof.value !== toBase64(ContentRecord.encode(proved.record).finish()))
    throw new ProofError("the stated record bytes are not the proved ones");
  for (const [field, value] of Object.entries(proved.record)) {
    const stated = bundle.record?.[field];
    if (stated === undefined || JSON.stringify(stated) !== JSON.stringify(Array.isArray(value) ? value : String(value))) {
      throw new ProofError(`the stated record's ${field} is not the proved one`);
    }
  }
  if (!bundle.tx || !bundle.txProof || !bundle.header || !bundle.commit)
    throw new ProofError("a present registration needs its tx, tx proof, header and commit");

  const header = headerFromJson(bundle.header);
  if (header.chainId !== bundle.chainId) throw new ProofError("the block header is for another chain");
  verifyCommittedHeader(header, commitFromJson(bundle.commit), trusted.validatorPublicKey);
  if (Number(header.height) !== bundle.tx.height) throw new ProofError("the tx is not claimed for this block");

  const raw = fromBase64(bundle.tx.raw);
  const txHash = sha256(raw);
  if (bytesToHex(txHash).toUpperCase() !== bundle.tx.hash.toUpperCase()) throw new ProofError("the tx hash does not match its bytes");
  const merkle = {
    total: bundle.txProof.total,
    index: bundle.txProof.index,
    leafHash: fromBase64(bundle.txProof.leafHash),
    aunts: bundle.txProof.aunts.map(fromBase64),
  };
  if (!equalBytes(merkle.leafHash, leafHash(txHash)) || !equalBytes(fromHex(bundle.txProof.rootHash.toLowerCase()), header.dataHash)) {
    throw new ProofError("the tx proof is not for this tx and block");
  }
  if (!verifyMerkleProof(merkle, header.dataHash, txHash)) throw new ProofError("the tx is not in the block's data");

  const message = TxBody.decode(TxRaw.decode(raw).bodyBytes).messages[bundle.tx.msgIndex];
  if (message?.typeUrl !== MsgRegisterContent.typeUrl || MsgRegisterContent.decode(message.value).contentHash !== ledgerHash) {
    throw new ProofError("the tx does not register this hash at the given message");
  }
  if (Number(proved.record.height) !== bundle.tx.height || proved.record.txHash.toUpperCase() !== bundle.tx.hash.toUpperCase()) {
    throw new ProofError("the ledger's record names another tx");
  }
  return { present: true, record: proved.record, height: bundle.tx.height, txHash: bundle.tx.hash.toUpperCase() };
}
