import { ed25519 } from "@noble/curves/ed25519.js";
import { CommitmentProof } from "cosmjs-types/cosmos/ics23/v1/proofs";
import type { Commit, Header } from "cosmjs-types/tendermint/types/types";
import { validatorAddress } from "../accounts/address.js";
import { BLOCK_ID_FLAG_COMMIT, headerHash, voteSignBytes } from "../blocks/hashing.js";
import { equalBytes } from "../blocks/merkle.js";
import { ContentRecord } from "../registry/messages.js";
import { stateKeys } from "../registry/state-keys.js";
import { verifyStateAbsence, verifyStateMembership } from "./verify.js";

/** The proof op type of DAON state proofs in `abci_query` answers: an ICS-23 proof in the state tree. */
export const STATE_PROOF_OP = "ics23:smt";

export class ProofError extends Error {}

export interface ProofOp {
  type: string;
  key: Uint8Array;
  data: Uint8Array;
}

export type RegistrationProofResult = { present: true; record: ContentRecord } | { present: false };

/**
 * Checks an `abci_query` state proof for a content hash against an app hash (the one in the
 * header that follows the queried height) and returns what it proves: the stored record, or
 * that no record exists. Throws ProofError when the proof does not hold.
 */
export function verifyRegistrationProof(appHash: Uint8Array, ledgerContentHash: string, op: ProofOp): RegistrationProofResult {
  if (op.type !== STATE_PROOF_OP) throw new ProofError(`unknown proof op type ${JSON.stringify(op.type)}`);
  const key = new TextEncoder().encode(stateKeys.record(ledgerContentHash));
  if (!equalBytes(op.key, key)) throw new ProofError("the proof is for another key");
  let proof: CommitmentProof;
  try {
    proof = CommitmentProof.decode(op.data);
  } catch {
    throw new ProofError("the proof does not decode");
  }
  if (proof.exist) {
    if (!verifyStateMembership(appHash, key, proof.exist.value, proof))
      throw new ProofError("the record is not in the state committed by the app hash");
    const record = ContentRecord.decode(proof.exist.value);
    if (record.contentHash !== ledgerContentHash) throw new ProofError("the proved record is for another hash");
    return { present: true, record };
  }
  if (!verifyStateAbsence(appHash, key, proof)) throw new ProofError("the absence proof does not hold for the app hash");
  return { present: false };
}

/**
 * Checks that `commit` is the single trusted validator's precommit for exactly `header`,
 * as a CometBFT light client would; throws ProofError otherwise.
 */
export function verifyCommittedHeader(header: Header, commit: Commit, validatorPublicKey: Uint8Array): void {
  const blockHash = headerHash(header);
  if (commit.height !== header.height) throw new ProofError("the commit is for another height");
  if (!equalBytes(commit.blockId.hash, blockHash)) throw new ProofError("the commit is for another block");
  const address = validatorAddress(validatorPublicKey);
  const signature = commit.signatures.find((sig) => sig.blockIdFlag === BLOCK_ID_FLAG_COMMIT && equalBytes(sig.validatorAddress, address));
  if (!signature) throw new ProofError("the trusted validator did not sign this commit");
  const signBytes = voteSignBytes(header.chainId, commit.height, commit.round, commit.blockId, signature.timestamp!);
  let valid = false;
  try {
    valid = ed25519.verify(signature.signature, signBytes, validatorPublicKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new ProofError("the validator's signature does not verify");
}
