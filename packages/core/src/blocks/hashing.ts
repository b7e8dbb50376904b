import { sha256 } from "@noble/hashes/sha2.js";
import { BinaryWriter } from "cosmjs-types/binary";
import { ExecTxResult } from "cosmjs-types/tendermint/abci/types";
import { HashedParams } from "cosmjs-types/tendermint/types/params";
import {
  type BlockID,
  type CommitSig,
  type Header,
  BlockID as BlockIDCodec,
  CommitSig as CommitSigCodec,
} from "cosmjs-types/tendermint/types/types";
import { SimpleValidator } from "cosmjs-types/tendermint/types/validator";
import { Consensus } from "cosmjs-types/tendermint/version/types";
import { Timestamp } from "cosmjs-types/google/protobuf/timestamp";
import { merkleRoot } from "./merkle.js";

/** CometBFT's `SignedMsgType` for precommits: the only vote a commit holds. */
export const PRECOMMIT = 2;
/** `BlockIDFlagCommit`: the validator signed this block. */
export const BLOCK_ID_FLAG_COMMIT = 2;

/** Tx hash as CometBFT computes it: SHA-256 of the raw tx bytes. */
export function txHash(tx: Uint8Array): Uint8Array {
  return sha256(tx);
}

/** `Data.Hash()`: Merkle root of the tx hashes. */
export function dataHash(txs: readonly Uint8Array[]): Uint8Array {
  return merkleRoot(txs.map(txHash));
}

// cdcEncode in CometBFT wraps scalars in gogoproto wrapper messages (field 1).
function wrapString(value: string): Uint8Array {
  return value === "" ? new Uint8Array() : new BinaryWriter().uint32(10).string(value).finish();
}

function wrapInt64(value: bigint): Uint8Array {
  return value === 0n ? new Uint8Array() : new BinaryWriter().uint32(8).int64(value).finish();
}

function wrapBytes(value: Uint8Array): Uint8Array {
  return value.length === 0 ? new Uint8Array() : new BinaryWriter().uint32(10).bytes(value).finish();
}

/** `Header.Hash()`: Merkle root of the 14 header fields, each protobuf-encoded as CometBFT 0.38 does. */
export function headerHash(header: Header): Uint8Array {
  return merkleRoot([
    Consensus.encode(header.version).finish(),
    wrapString(header.chainId),
    wrapInt64(header.height),
    Timestamp.encode(header.time).finish(),
    BlockIDCodec.encode(header.lastBlockId).finish(),
    wrapBytes(header.lastCommitHash),
    wrapBytes(header.dataHash),
    wrapBytes(header.validatorsHash),
    wrapBytes(header.nextValidatorsHash),
    wrapBytes(header.consensusHash),
    wrapBytes(header.appHash),
    wrapBytes(header.lastResultsHash),
    wrapBytes(header.evidenceHash),
    wrapBytes(header.proposerAddress),
  ]);
}

/** `Commit.Hash()`: Merkle root of the protobuf-encoded commit signatures. */
export function commitHash(signatures: readonly CommitSig[]): Uint8Array {
  return merkleRoot(signatures.map((sig) => CommitSigCodec.encode(sig).finish()));
}

export interface ValidatorKey {
  ed25519PublicKey: Uint8Array;
  votingPower: bigint;
}

/** `ValidatorSet.Hash()`: Merkle root of `SimpleValidator{pub_key, voting_power}`. */
export function validatorsHash(validators: readonly ValidatorKey[]): Uint8Array {
  return merkleRoot(
    validators.map((v) => SimpleValidator.encode({ pubKey: { ed25519: v.ed25519PublicKey }, votingPower: v.votingPower }).finish()),
  );
}

/** `ConsensusParams.Hash()`: SHA-256 of `HashedParams{block_max_bytes, block_max_gas}`. */
export function consensusHash(blockMaxBytes: bigint, blockMaxGas: bigint): Uint8Array {
  return sha256(HashedParams.encode({ blockMaxBytes, blockMaxGas }).finish());
}

export interface TxOutcome {
  code: number;
  data: Uint8Array;
  gasWanted: bigint;
  gasUsed: bigint;
}

/** `ABCIResults.Hash()`: Merkle root of the deterministic part of each tx result. */
export function resultsHash(results: readonly TxOutcome[]): Uint8Array {
  return merkleRoot(
    results.map((r) =>
      ExecTxResult.encode(ExecTxResult.fromPartial({ code: r.code, data: r.data, gasWanted: r.gasWanted, gasUsed: r.gasUsed })).finish(),
    ),
  );
}

/**
 * `VoteSignBytes`: the length-delimited `CanonicalVote` a validator signs for a precommit.
 * cosmjs-types has no canonical messages, so they are written field by field.
 */
export function voteSignBytes(chainId: string, height: bigint, round: number, blockId: BlockID, time: Timestamp): Uint8Array {
  const vote = new BinaryWriter();
  vote.uint32(8).int32(PRECOMMIT);
  if (height !== 0n) vote.uint32(17).sfixed64(height);
  if (round !== 0) vote.uint32(25).sfixed64(BigInt(round));
  if (blockId.hash.length > 0 || blockId.partSetHeader.total > 0) {
    vote.uint32(34).fork();
    if (blockId.hash.length > 0) vote.uint32(10).bytes(blockId.hash);
    vote.uint32(18).fork();
    if (blockId.partSetHeader.total !== 0) vote.uint32(8).uint32(blockId.partSetHeader.total);
    if (blockId.partSetHeader.hash.length > 0) vote.uint32(18).bytes(blockId.partSetHeader.hash);
    vote.ldelim();
    vote.ldelim();
  }
  vote.uint32(42).fork();
  Timestamp.encode(time, vote);
  vote.ldelim();
  if (chainId !== "") vote.uint32(50).string(chainId);
  const body = vote.finish();
  return new BinaryWriter().bytes(body).finish();
}
