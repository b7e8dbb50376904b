import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ApiConfig, ApiService, fingerprint, KEYRING_NAMES, loadConfig, productionSecretProblems } from "@daon/api";
import { homePaths, type LedgerService } from "@daon/chain";
import { type Deployment, readEnv, UsageError } from "../deployment.js";
import { initDeployment } from "./init.js";
import { runUntilSignalled, startNode } from "./node.js";

type Log = (line: string) => void;

/** Names SIGHUP takes from `.env` even when the process environment set them at start (compose's env_file). */
const RELOADED = [...KEYRING_NAMES, "API_MNEMONIC", "DATABASE_URL"] as const;

/** Shutdown timing (ops.md §2: 5 s draining, 25 s for in-flight requests); the environment may shorten it (tests). */
function shutdownOptions(): { drainMs?: number; shutdownTimeoutMs?: number } {
  const number = (name: string) => (process.env[name] && /^\d+$/.test(process.env[name] as string) ? Number(process.env[name]) : undefined);
  return { drainMs: number("DAON_DRAIN_MS"), shutdownTimeoutMs: number("DAON_SHUTDOWN_TIMEOUT_MS") };
}

/** API settings: `.env`, then the process environment, then what the command knows. */
export function apiConfig(deployment: Deployment, overrides: Record<string, string>): ApiConfig {
  const fromFile = existsSync(deployment.envFile) ? readEnv(deployment.envFile) : {};
  return loadConfig({ DAON_STATE_DIR: deployment.stateDir, ...fromFile, ...process.env, ...overrides });
}

/** The settings after a rotation: as at start, but the rotatable secrets as `.env` has them now. */
function reloadedConfig(deployment: Deployment, overrides: Record<string, string>): ApiConfig {
  const fromFile = readEnv(deployment.envFile);
  const rotated = Object.fromEntries(RELOADED.map((name) => [name, fromFile[name] ?? ""]));
  return loadConfig({ DAON_STATE_DIR: deployment.stateDir, ...fromFile, ...process.env, ...overrides, ...rotated });
}

/** ops.md §2: production refuses missing, short, default, example or equal secrets. */
export function refuseWeakSecrets(config: ApiConfig): void {
  if (config.NODE_ENV !== "production") return;
  const problems = productionSecretProblems(config as unknown as Record<string, string | undefined>);
  if (problems.length > 0) throw new UsageError(`refusing to start in production: ${problems.join("; ")}`);
}

function refuseGenesisMismatch(deployment: Deployment, home: string): void {
  if (!existsSync(deployment.envFile)) return;
  const expected = readEnv(deployment.envFile).CHAIN_ID;
  const genesisPath = homePaths(home).genesis;
  if (!expected || !existsSync(genesisPath)) return;
  const genesisChain = JSON.parse(readFileSync(genesisPath, "utf8")).chain_id;
  if (genesisChain !== expected)
    throw new UsageError(`refusing to start: CHAIN_ID in ${deployment.envFile} is ${expected} but ${genesisPath} is chain ${genesisChain}`);
}

/** The API's CHAIN_ID must be the node's `network`; a node still starting gets 60 s (ops.md §2). */
export async function refuseNodeMismatch(config: ApiConfig, log: Log, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      const response = await fetch(`${config.CHAIN_RPC.replace(/\/$/, "")}/status`, { signal: AbortSignal.timeout(3000) });
      const network = ((await response.json()) as { result?: { node_info?: { network?: string } } }).result?.node_info?.network;
      if (network === config.CHAIN_ID) return;
      if (network)
        throw new UsageError(
          `refusing to start: CHAIN_ID is ${config.CHAIN_ID} but the ledger node at ${config.CHAIN_RPC} is chain ${network}`,
        );
    } catch (error) {
      if (error instanceof UsageError) throw error;
    }
    if (Date.now() > deadline)
      throw new UsageError(
        `refusing to start: the ledger node at ${config.CHAIN_RPC} did not answer /status in ${Math.round(timeoutMs / 1000)} s`,
      );
    if (!said) log(`waiting for the ledger node at ${config.CHAIN_RPC} (up to ${Math.round(timeoutMs / 1000)} s)`);
    said = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function openNode(home: string, rpcLaddr: string | undefined, log: Log, prometheusLaddr?: string): Promise<LedgerService> {
  try {
    return await startNode(home, rpcLaddr, log, prometheusLaddr);
  } catch (error) {
    const message = (error as Error).message;
    if (/another node running|LOCK|locked/i.test(message)) throw new UsageError(`refusing to start: the ledger home is locked: ${message}`);
    throw error;
  }
}

/**
 * A running process's record under `<state>/run/instances/` (removed on exit): how `daon
 * status`, `preflight` and `rotate-keys` find every instance to ask and to send SIGHUP to.
 */
export interface InstanceRecord {
  kind: "up" | "api" | "node";
  pid: number;
  apiUrl?: string;
  rpcUrl?: string;
  startedAt: string;
}

export function instancesDir(stateDir: string): string {
  return join(stateDir, "run", "instances");
}

async function recordInstance(stateDir: string, record: InstanceRecord): Promise<() => Promise<void>> {
  const dir = instancesDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${record.kind}-${record.pid}.json`);
  await writeFile(path, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  return () => rm(path, { force: true });
}

function reloader(api: ApiService, deployment: Deployment, overrides: Record<string, string>, log: Log) {
  return async () => {
    const config = reloadedConfig(deployment, overrides);
    refuseWeakSecrets(config);
    const { walletSwitched } = await api.reloadSecrets(config);
    const shown = Object.entries(api.keyring.fingerprints())
      .filter(([, fp]) => fp)
      .map(([name, fp]) => `${name}=${fp}`);
    log(
      `SIGHUP: secrets reloaded (${[...shown, `API_MNEMONIC=${fingerprint(config.API_MNEMONIC)}`].join(" ")})${walletSwitched ? `; batcher now signs as ${api.batcher.address}` : ""}`,
    );
  };
}

/** `daon up`: node + API + portal in one process (creating an embedded test deployment if there is none). */
export async function runUp(deployment: Deployment, options: { rpcLaddr?: string; prometheusLaddr?: string }, log: Log): Promise<number> {
  if (!existsSync(deployment.envFile)) {
    log(`no ${deployment.envFile}: creating an embedded test deployment under ${deployment.stateDir}`);
    const created = await initDeployment(deployment, { profile: "embedded", test: true });
    log(`created test chain ${created.chainId}; API wallet ${created.walletAddress}`);
  }
  const configAtStart = apiConfig(deployment, {});
  refuseWeakSecrets(configAtStart);
  refuseGenesisMismatch(deployment, deployment.nodeHome);
  const node = await openNode(deployment.nodeHome, options.rpcLaddr, log, options.prometheusLaddr);
  const overrides = { CHAIN_RPC: node.rpcUrl };
  let api: ApiService;
  try {
    api = await ApiService.start(apiConfig(deployment, overrides), shutdownOptions());
  } catch (error) {
    await node.stop();
    throw error;
  }
  const forget = await recordInstance(deployment.stateDir, {
    kind: "up",
    pid: process.pid,
    apiUrl: api.url,
    rpcUrl: node.rpcUrl,
    startedAt: new Date().toISOString(),
  });
  log(`ready: API ${api.url} (docs ${api.url}/docs), ledger RPC ${node.rpcUrl}`);
  const code = await runUntilSignalled(
    {
      // The node stops last, after the API's batcher has seen its last block committed.
      stop: async () => {
        let failure: Error | undefined;
        await api.stop().catch((error: Error) => {
          failure = error;
        });
        await node.stop();
        if (failure) throw failure;
      },
    },
    log,
    { onReload: reloader(api, deployment, overrides, log) },
  );
  await forget();
  return code;
}

/** `daon api`: the HTTP API alone, against the node at CHAIN_RPC. */
export async function runApi(deployment: Deployment, options: { port?: string }, log: Log): Promise<number> {
  const overrides: Record<string, string> = options.port ? { PORT: options.port } : {};
  const config = apiConfig(deployment, overrides);
  refuseWeakSecrets(config);
  await refuseNodeMismatch(config, log);
  const api = await ApiService.start(config, shutdownOptions());
  const forget = await recordInstance(deployment.stateDir, {
    kind: "api",
    pid: process.pid,
    apiUrl: api.url,
    startedAt: new Date().toISOString(),
  });
  log(`ready: API ${api.url} against ledger ${api.config.CHAIN_RPC}`);
  const code = await runUntilSignalled(api, log, { onReload: reloader(api, deployment, overrides, log) });
  await forget();
  return code;
}

/** `daon node --home DIR`: the ledger node alone. */
export async function runNode(
  deployment: Deployment,
  options: { home: string; rpcLaddr?: string; prometheusLaddr?: string },
  log: Log,
): Promise<number> {
  refuseGenesisMismatch(deployment, options.home);
  const service = await openNode(options.home, options.rpcLaddr, log, options.prometheusLaddr);
  const forget = existsSync(deployment.stateDir)
    ? await recordInstance(deployment.stateDir, {
        kind: "node",
        pid: process.pid,
        rpcUrl: service.rpcUrl,
        startedAt: new Date().toISOString(),
      })
    : async () => {};
  const code = await runUntilSignalled(service, log);
  await forget();
  return code;
}
