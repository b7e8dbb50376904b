import {
  BLOCK_ID_FLAG_COMMIT,
  commitHash,
  consensusHash,
  dataHash,
  headerHash,
  merkleRoot,
  resultsHash,
  validatorsHash,
  voteSignBytes,
} from "@daon/core";
import type { Timestamp } from "cosmjs-types/google/protobuf/timestamp";
import { Block } from "cosmjs-types/tendermint/types/block";
import type { BlockID, Commit, Header } from "cosmjs-types/tendermint/types/types";
import type { ValidatorSigner } from "../home/keys.js";
import type { TxResult } from "../state/app.js";

/** CometBFT 0.38's block protocol version. */
export const BLOCK_PROTOCOL = 11n;
const PART_SIZE = 65536;

export interface PreviousBlock {
  blockId: BlockID | undefined;
  commit: Commit | undefined;
  results: TxResult[];
  /** State after the previous block. */
  appHash: Uint8Array;
}

export interface ChainParams {
  chainId: string;
  blockMaxBytes: bigint;
  blockMaxGas: bigint;
  validator: ValidatorSigner;
}

export function emptyBlockId(): BlockID {
  return { hash: new Uint8Array(), partSetHeader: { total: 0, hash: new Uint8Array() } };
}

/** Assembles the header and block for `height`, as CometBFT's `MakeBlock` would. */
export function buildBlock(
  chain: ChainParams,
  height: bigint,
  time: Timestamp,
  txs: Uint8Array[],
  previous: PreviousBlock,
): { block: Block; blockId: BlockID } {
  const validators = validatorsHash([{ ed25519PublicKey: chain.validator.publicKey, votingPower: 10n }]);
  const header: Header = {
    version: { block: BLOCK_PROTOCOL, app: 0n },
    chainId: chain.chainId,
    height,
    time,
    lastBlockId: previous.blockId ?? emptyBlockId(),
    lastCommitHash: commitHash(previous.commit?.signatures ?? []),
    dataHash: dataHash(txs),
    validatorsHash: validators,
    nextValidatorsHash: validators,
    consensusHash: consensusHash(chain.blockMaxBytes, chain.blockMaxGas),
    appHash: previous.appHash,
    lastResultsHash: resultsHash(previous.results),
    evidenceHash: merkleRoot([]),
    proposerAddress: chain.validator.address,
  };
  const block: Block = {
    header,
    data: { txs },
    evidence: { evidence: [] },
    lastCommit: previous.commit ?? { height: 0n, round: 0, blockId: emptyBlockId(), signatures: [] },
  };
  // The part set splits the encoded block into 64 KiB parts, as CometBFT gossips it.
  const encoded = Block.encode(block).finish();
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < encoded.length; offset += PART_SIZE) parts.push(encoded.subarray(offset, offset + PART_SIZE));
  return { block, blockId: { hash: headerHash(header), partSetHeader: { total: parts.length, hash: merkleRoot(parts) } } };
}

/** The single validator's precommit for a block, as the block's commit. */
export function signCommit(chain: ChainParams, height: bigint, blockId: BlockID, voteTime: Timestamp): Commit {
  const signature = chain.validator.sign(voteSignBytes(chain.chainId, height, 0, blockId, voteTime));
  return {
    height,
    round: 0,
    blockId,
    signatures: [{ blockIdFlag: BLOCK_ID_FLAG_COMMIT, validatorAddress: chain.validator.address, timestamp: voteTime, signature }],
  };
}
