import { existsSync } from "node:fs";
import { chmod, mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { type NodeConfig, defaultConfig, parseConfig, renderConfig } from "./config.js";
import { type Genesis, newGenesis, validateGenesis } from "./genesis.js";
import { type NodeKeyFile, type ValidatorKeyFile, newNodeKey, newValidatorKey } from "./keys.js";

/** The files of a node home, named as CometBFT names them. */
export function homePaths(home: string) {
  return {
    home,
    configDir: join(home, "config"),
    dataDir: join(home, "data"),
    genesis: join(home, "config", "genesis.json"),
    config: join(home, "config", "config.toml"),
    validatorKey: join(home, "config", "priv_validator_key.json"),
    nodeKey: join(home, "config", "node_key.json"),
    validatorState: join(home, "data", "priv_validator_state.json"),
    ledgerDb: join(home, "data", "ledger.db"),
  };
}

export interface LoadedHome {
  paths: ReturnType<typeof homePaths>;
  genesis: Genesis;
  config: NodeConfig;
  validatorKey: ValidatorKeyFile;
  nodeKey: NodeKeyFile;
}

/** Writes a file so that a crash or power loss leaves either the old or the new content, never half of it. */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const partial = `${path}.partial`;
  const file = await open(partial, "w", mode);
  try {
    await file.writeFile(content);
    await file.chmod(mode);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(partial, path);
}

export function isHomeInitialised(home: string): boolean {
  return existsSync(homePaths(home).validatorKey) || existsSync(homePaths(home).genesis);
}

/** Creates a node home: keys, genesis and config; refuses to overwrite a keyed home. */
export async function initHome(options: {
  home: string;
  chainId: string;
  accounts: string[];
  genesisTime?: Date;
  config?: Partial<NodeConfig>;
}): Promise<LoadedHome> {
  const paths = homePaths(options.home);
  if (isHomeInitialised(options.home)) throw new Error(`${options.home} already holds a node (keys or genesis); refusing to overwrite`);
  for (const dir of [paths.home, paths.configDir, paths.dataDir]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  const validatorKey = newValidatorKey();
  const nodeKey = newNodeKey();
  const genesis = newGenesis({
    chainId: options.chainId,
    genesisTime: options.genesisTime ?? new Date(),
    validator: { address: validatorKey.address, publicKeyBase64: validatorKey.pub_key.value, name: "daon-validator" },
    accounts: options.accounts,
  });
  validateGenesis(genesis);
  const config: NodeConfig = { ...defaultConfig, ...options.config };
  await writeFileAtomic(paths.validatorKey, `${JSON.stringify(validatorKey, null, 2)}\n`);
  await writeFileAtomic(paths.nodeKey, `${JSON.stringify(nodeKey)}\n`);
  await writeFileAtomic(paths.genesis, `${JSON.stringify(genesis, null, 2)}\n`, 0o644);
  await writeFileAtomic(paths.config, renderConfig(config), 0o644);
  await writeFileAtomic(paths.validatorState, `${JSON.stringify({ height: "0", round: 0, step: 0 }, null, 2)}\n`);
  return { paths, genesis, config, validatorKey, nodeKey };
}

export async function loadHome(home: string): Promise<LoadedHome> {
  const paths = homePaths(home);
  const readJson = async <T>(path: string, what: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(path, "utf8")) as T;
    } catch (error) {
      throw new Error(`cannot read ${what} at ${path}: ${(error as Error).message}`);
    }
  };
  const genesis = await readJson<Genesis>(paths.genesis, "genesis");
  validateGenesis(genesis);
  const config = parseConfig(await readFile(paths.config, "utf8"));
  return {
    paths,
    genesis,
    config,
    validatorKey: await readJson<ValidatorKeyFile>(paths.validatorKey, "validator key"),
    nodeKey: await readJson<NodeKeyFile>(paths.nodeKey, "node key"),
  };
}
