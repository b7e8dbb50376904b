import { existsSync, readFileSync } from "node:fs";
import { homePaths } from "@daon/chain";
import { type Deployment, deploymentPaths, readEnv, UsageError } from "../deployment.js";
import { type ServiceController, serviceController } from "./controller.js";
import { ServiceEndpoints } from "./endpoints.js";

/** A deployment with its settings as `.env` has them now, its services' controller and their endpoints. */
export interface DeploymentServices {
  deployment: Deployment;
  env: Record<string, string>;
  controller: ServiceController;
  endpoints: ServiceEndpoints;
}

/** Reads `.env` (exit 2 when missing or without CHAIN_ID) and builds the controller and endpoints for it. */
export function openDeployment(envFile: string): DeploymentServices {
  const deployment = deploymentPaths({ envFile });
  if (!existsSync(deployment.envFile))
    throw new UsageError(`cannot read ${deployment.envFile}: no such file (run from the project directory, or pass --env-file)`);
  return withSettings(deployment, readEnv(deployment.envFile));
}

/** The same deployment after `.env` changed (a wipe's init, a restore). */
export function withSettings(deployment: Deployment, env: Record<string, string>): DeploymentServices {
  return { deployment, env, controller: serviceController(deployment, env), endpoints: new ServiceEndpoints(deployment, env) };
}

/** The chain ID in the ledger home's genesis, if there is one. */
export function genesisChainId(nodeHome: string): string | undefined {
  try {
    return JSON.parse(readFileSync(homePaths(nodeHome).genesis, "utf8")).chain_id;
  } catch {
    return undefined;
  }
}

/** The genesis time, for the age of a chain without `run/launch.json`. */
export function genesisTime(nodeHome: string): Date | undefined {
  try {
    const time = new Date(JSON.parse(readFileSync(homePaths(nodeHome).genesis, "utf8")).genesis_time);
    return Number.isNaN(time.getTime()) ? undefined : time;
  } catch {
    return undefined;
  }
}

/** The chain a deployment runs, as `.env`, the genesis and the node (when it answers) say. */
export interface CurrentChain {
  chainId: string;
  fromEnv?: string;
  fromGenesis?: string;
  fromNode?: string;
  height?: number;
  /** Registrations the API reports (`/api/v1/stats`), when it answers. */
  registrations?: number;
}

/** Reads the chain ID from every place that names it; they must agree (else exit 2), and at least `.env` must say one. */
export async function currentChain(services: DeploymentServices): Promise<CurrentChain> {
  const { deployment, env, endpoints } = services;
  const [node, stats] = await Promise.all([endpoints.nodeStatus(), endpoints.stats()]);
  const chain: CurrentChain = {
    chainId: env.CHAIN_ID ?? "",
    fromEnv: env.CHAIN_ID,
    fromGenesis: genesisChainId(deployment.nodeHome),
    fromNode: node?.chainId,
    height: node?.height,
    registrations: stats?.totalProtected,
  };
  if (!chain.fromEnv) throw new UsageError(`${deployment.envFile} has no CHAIN_ID`);
  const named = [
    ["`.env`", chain.fromEnv],
    ["genesis", chain.fromGenesis],
    ["node", chain.fromNode],
  ].filter((entry): entry is [string, string] => entry[1] !== undefined);
  if (new Set(named.map(([, id]) => id)).size > 1) {
    throw new UsageError(`the chain IDs disagree: ${named.map(([where, id]) => `${where} ${id}`).join(", ")}; fix that first`);
  }
  return chain;
}
