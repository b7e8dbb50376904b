import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { ApiService, loadConfig } from "@daon/api";
import { initHome, LedgerService } from "@daon/chain";
import { pino } from "pino";
import { createDatabase, REDIS_URL } from "../../api/test/test-system.js";

export const REPO = resolve(import.meta.dirname, "../../..");
export const DEPLOY = join(REPO, "deploy");

/** One API instance of a deployment, with the log lines it wrote. */
export interface ApiInstance {
  service: ApiService;
  url: string;
  port: number;
  logs: string[];
}

/**
 * A production-shaped system in this process: a ledger node serving CometBFT metrics (as
 * `daon node --prometheus-laddr` does), PostgreSQL + Redis, and any number of API instances
 * sharing them, as `daon-api@PORT` units or compose replicas do.
 */
export interface DeploySystem {
  ledger: LedgerService;
  rpcUrl: string;
  nodeMetricsUrl: string;
  chainId: string;
  apis: ApiInstance[];
  startApi(port?: number, options?: { drainMs?: number }): Promise<ApiInstance>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

export async function startDeploySystem(options: { env?: Record<string, string>; drainMs?: number } = {}): Promise<DeploySystem> {
  const dir = await mkdtemp(join(tmpdir(), "daon-deploy-"));
  const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
  const [{ address }] = await wallet.getAccounts();
  const chainId = `daon-test-${Math.random().toString(36).slice(2, 10)}`;
  await initHome({
    home: join(dir, "node"),
    chainId,
    accounts: [address],
    config: { consensus: { timeoutCommitMs: 300, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 5000 } } as never,
  });
  const ledger = await LedgerService.start(join(dir, "node"), {
    rpcListen: "tcp://127.0.0.1:0",
    prometheusListen: "127.0.0.1:0",
  });
  while (ledger.node.height < 1) await new Promise((ready) => setTimeout(ready, 20));
  const database = await createDatabase();
  const apis: ApiInstance[] = [];

  async function startApi(port = 0, apiOptions: { drainMs?: number } = {}): Promise<ApiInstance> {
    const logs: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logs.push(line) });
    const config = loadConfig({
      NODE_ENV: "test",
      PORT: String(port),
      CHAIN_ID: chainId,
      CHAIN_RPC: ledger.rpcUrl,
      API_MNEMONIC: wallet.mnemonic,
      DAON_STATE_DIR: dir,
      DATABASE_URL: database.url,
      REDIS_URL,
      ...options.env,
    });
    const service = await ApiService.start(config, { logger, drainMs: apiOptions.drainMs ?? options.drainMs ?? 0 });
    const instance = { service, url: service.url, port: Number(new URL(service.url).port), logs };
    apis.push(instance);
    return instance;
  }

  return {
    ledger,
    rpcUrl: ledger.rpcUrl,
    nodeMetricsUrl: ledger.metricsUrl!,
    chainId,
    apis,
    startApi,
    async stop() {
      for (const api of apis) await api.service.stop().catch(() => {});
      await ledger.stop().catch(() => {});
      await database.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a tool to completion: exit code and output. */
export function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs` with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    await new Promise((ready) => setTimeout(ready, 250));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
}

/** Metric names a live `/metrics` exposes (declared by `# TYPE`, or with samples). */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const typed = /^# TYPE (\S+) (\S+)/.exec(line);
    if (typed) {
      names.add(typed[1]);
      if (typed[2] === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(typed[1] + suffix);
      if (typed[2] === "summary") for (const suffix of ["_sum", "_count"]) names.add(typed[1] + suffix);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]);
  }
  return names;
}

const PROMQL_WORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "inf",
  "nan",
  "atan2",
]);

/** The metric names a PromQL expression reads (functions, keywords, labels and Grafana variables left out). */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{?\w+\}?/g, " ");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![A-Za-z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (match[2] || PROMQL_WORDS.has(match[1].toLowerCase())) continue;
    names.add(match[1]);
  }
  return [...names];
}
