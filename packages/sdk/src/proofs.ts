import { type ProofBundle, ProofError, type VerifiedBundle, verifyProofBundle } from "@daon/core";

export { type ProofBundle, ProofError, type VerifiedBundle, verifyProofBundle } from "@daon/core";

/** What a proof is checked against: the chain's validator key, and its chain id. */
export interface TrustedValidator {
  validatorPublicKey: Uint8Array;
  chainId: string;
}

/** A genesis document (`genesis.json`, or the node's `/genesis` result) or the API's genesis-validators answer. */
export type GenesisLike =
  | { chain_id: string; validators: { pub_key: { type: string; value: string } }[] }
  | { chainId: string; validators: { pub_key: { type: string; value: string } }[] };

/** The trusted validator named by a genesis (DAON chains have exactly one validator). */
export function trustedValidator(genesis: GenesisLike): TrustedValidator {
  const chainId = "chain_id" in genesis ? genesis.chain_id : genesis.chainId;
  if (genesis.validators.length !== 1)
    throw new ProofError(`the genesis names ${genesis.validators.length} validators; expected exactly one`);
  const { type, value } = genesis.validators[0].pub_key;
  if (type !== "tendermint/PubKeyEd25519") throw new ProofError(`the validator key is ${type}, not Ed25519`);
  const validatorPublicKey = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  if (validatorPublicKey.length !== 32) throw new ProofError("the validator key is not 32 bytes");
  return { validatorPublicKey, chainId };
}

/**
 * Checks a proof bundle offline against a genesis: no network, no trust in the server that
 * produced the bundle. Throws ProofError when it does not hold; says what it proves otherwise.
 */
export function verifyProof(bundle: ProofBundle, genesis: GenesisLike | TrustedValidator): VerifiedBundle {
  const trusted = "validatorPublicKey" in genesis ? genesis : trustedValidator(genesis);
  return verifyProofBundle(bundle, trusted);
}
