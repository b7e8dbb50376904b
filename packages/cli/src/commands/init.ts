import { existsSync } from "node:fs";
import { join } from "node:path";
import { initHome, isChainId, isHomeInitialised, writeFileAtomic } from "@daon/chain";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { type Deployment, privateDir, UsageError, writeEnv } from "../deployment.js";

export interface InitOptions {
  mainnet?: boolean;
  test?: boolean | string;
  chainId?: string;
  profile?: "embedded" | "production";
}

export interface InitResult {
  chainId: string;
  walletAddress: string;
  validatorAddress: string;
  nodeHome: string;
  walletFile: string;
  envFile: string;
}

/** `daon-test-YYYYMMDD-HHMMSS` in UTC. */
export function testChainId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `daon-test-${stamp}`;
}

export function chooseChainId(options: InitOptions): string {
  const chosen = [options.mainnet, options.test !== undefined && options.test !== false, options.chainId !== undefined].filter(
    Boolean,
  ).length;
  if (chosen > 1) throw new UsageError("choose one of --mainnet, --test[=SUFFIX] and --chain-id");
  const chainId = options.mainnet
    ? "daon-mainnet-1"
    : (options.chainId ?? (typeof options.test === "string" ? `daon-test-${options.test}` : testChainId()));
  if (!isChainId(chainId))
    throw new UsageError(`chain ID ${JSON.stringify(chainId)} must be daon-mainnet-1 or daon-test-[a-z0-9][a-z0-9-]{0,38}`);
  return chainId;
}

/** The ledger part of `daon init`: keys, genesis, config, the API wallet and `.env`. */
export async function initDeployment(deployment: Deployment, options: InitOptions): Promise<InitResult> {
  const chainId = chooseChainId(options);
  const walletFile = join(deployment.secretsDir, `api-wallet-${chainId}.txt`);
  const existing = [
    existsSync(deployment.envFile) && deployment.envFile,
    isHomeInitialised(deployment.nodeHome) && deployment.nodeHome,
    existsSync(walletFile) && walletFile,
  ].filter(Boolean);
  if (existing.length > 0) throw new UsageError(`refusing to overwrite an existing deployment: ${existing.join(", ")}`);

  const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
  const [{ address }] = await wallet.getAccounts();
  await privateDir(deployment.stateDir);
  await privateDir(deployment.secretsDir);
  const home = await initHome({ home: deployment.nodeHome, chainId, accounts: [address] });
  await writeFileAtomic(walletFile, `address: ${address}\nmnemonic: ${wallet.mnemonic}\n`);
  const production = options.mainnet || options.profile === "production";
  await writeEnv(deployment.envFile, {
    CHAIN_ID: chainId,
    NODE_ENV: production ? "production" : "development",
    DAON_STATE_DIR: deployment.stateDir,
    API_MNEMONIC: wallet.mnemonic,
  });
  return {
    chainId,
    walletAddress: address,
    validatorAddress: home.validatorKey.address,
    nodeHome: deployment.nodeHome,
    walletFile,
    envFile: deployment.envFile,
  };
}
