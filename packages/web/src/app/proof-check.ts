/**
 * The in-browser proof check, loaded only when a visitor asks for it: the bundle is verified
 * here against the genesis validator key, so the result does not rest on the server's word.
 */
import { DaonClient, type GenesisValidators, ProofError, trustedValidator, verifyProof } from "@daon/sdk";

export interface ProofCheck {
  chainId: string;
  validatorAddress: string;
  validatorKey: string;
  keySource: "genesis" | "given";
  blockHeight: number;
  txHash: string;
  stateHeight: number;
  record: { owner: string; license: string; aiTrainingPolicy: string; timestamp: string; platform: string };
}

/** Fetches the proof and the genesis validators, and checks the proof in this browser; throws ProofError when it does not hold. */
export async function checkProof(contentHash: string, givenKey?: string): Promise<ProofCheck> {
  const daon = new DaonClient();
  const [bundle, genesis] = await Promise.all([daon.proof(contentHash), daon.genesisValidators()]);
  const anchor: GenesisValidators = givenKey
    ? {
        ...genesis,
        validators: [{ address: "", name: "given", power: "", pub_key: { type: "tendermint/PubKeyEd25519", value: givenKey.trim() } }],
      }
    : genesis;
  const trusted = trustedValidator(anchor);
  const verified = verifyProof(bundle, trusted);
  if (!verified.present) throw new ProofError("the proof shows this hash is not registered");
  const seconds = Number(verified.record.timestamp);
  return {
    chainId: trusted.chainId,
    validatorAddress: givenKey ? "" : genesis.validators[0].address,
    validatorKey: anchor.validators[0].pub_key.value,
    keySource: givenKey ? "given" : "genesis",
    blockHeight: verified.height,
    txHash: verified.txHash,
    stateHeight: bundle.stateProof.height,
    record: {
      owner: verified.record.owner,
      license: verified.record.license,
      aiTrainingPolicy: verified.record.aiTrainingPolicy,
      timestamp: Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(verified.record.timestamp),
      platform: verified.record.platform,
    },
  };
}
