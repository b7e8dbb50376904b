import { isAccountAddress, LEDGER_LICENCES, Params } from "@daon/core";
import { BaseAccount } from "cosmjs-types/cosmos/auth/v1beta1/auth";
import { encodeUint64 } from "../state/app.js";
import { stateKeys } from "@daon/core";

/** CometBFT's `genesis.json`, with DAON's app state. */
export interface Genesis {
  genesis_time: string;
  chain_id: string;
  initial_height: string;
  consensus_params: {
    block: { max_bytes: string; max_gas: string };
    evidence: { max_age_num_blocks: string; max_age_duration: string; max_bytes: string };
    validator: { pub_key_types: string[] };
    version: { app: string };
    abci: { vote_extensions_enable_height: string };
  };
  validators: { address: string; pub_key: { type: string; value: string }; power: string; name: string }[];
  app_hash: string;
  app_state: {
    auth: { accounts: { address: string }[] };
    contentregistry: {
      params: { licenses: string[]; max_fingerprint_length: number; max_platform_length: number; max_owner_length: number };
    };
  };
}

const CHAIN_ID = /^(daon-mainnet-1|daon-test-[a-z0-9][a-z0-9-]{0,38})$/;

export function isChainId(id: string): boolean {
  return CHAIN_ID.test(id);
}

export function newGenesis(options: {
  chainId: string;
  genesisTime: Date;
  validator: { address: string; publicKeyBase64: string; name: string };
  accounts: string[];
}): Genesis {
  return {
    genesis_time: options.genesisTime.toISOString(),
    chain_id: options.chainId,
    initial_height: "1",
    consensus_params: {
      block: { max_bytes: "4194304", max_gas: "400000000" },
      evidence: { max_age_num_blocks: "100000", max_age_duration: "172800000000000", max_bytes: "1048576" },
      validator: { pub_key_types: ["ed25519"] },
      version: { app: "0" },
      abci: { vote_extensions_enable_height: "0" },
    },
    validators: [
      {
        address: options.validator.address,
        pub_key: { type: "tendermint/PubKeyEd25519", value: options.validator.publicKeyBase64 },
        power: "10",
        name: options.validator.name,
      },
    ],
    app_hash: "",
    app_state: {
      auth: { accounts: options.accounts.map((address) => ({ address })) },
      contentregistry: {
        params: { licenses: [...LEDGER_LICENCES], max_fingerprint_length: 256, max_platform_length: 253, max_owner_length: 128 },
      },
    },
  };
}

/** Checks what the node relies on; throws with the first problem found. */
export function validateGenesis(genesis: Genesis): void {
  if (!isChainId(genesis.chain_id)) throw new Error(`genesis chain_id ${JSON.stringify(genesis.chain_id)} is not a DAON chain ID`);
  if (genesis.initial_height !== "1") throw new Error("genesis initial_height must be 1");
  if (genesis.validators?.length !== 1) throw new Error("genesis must name exactly one validator");
  if (Number.isNaN(Date.parse(genesis.genesis_time))) throw new Error("genesis_time is not a time");
  for (const { address } of genesis.app_state?.auth?.accounts ?? []) {
    if (!isAccountAddress(address)) throw new Error(`genesis account ${JSON.stringify(address)} is not a daon address`);
  }
}

/** The state InitChain produces: accounts numbered in genesis order, and the module's params. */
export function genesisState(genesis: Genesis): Map<string, Uint8Array> {
  const state = new Map<string, Uint8Array>();
  const accounts = genesis.app_state.auth.accounts;
  accounts.forEach(({ address }, index) => {
    state.set(stateKeys.account(address), BaseAccount.encode(BaseAccount.fromPartial({ address, accountNumber: BigInt(index) })).finish());
  });
  state.set(stateKeys.nextAccountNumber, encodeUint64(BigInt(accounts.length)));
  const params = genesis.app_state.contentregistry.params;
  state.set(
    stateKeys.params,
    Params.encode(
      Params.fromPartial({
        licenses: params.licenses,
        maxFingerprintLength: params.max_fingerprint_length,
        maxPlatformLength: params.max_platform_length,
        maxOwnerLength: params.max_owner_length,
      }),
    ).finish(),
  );
  return state;
}
