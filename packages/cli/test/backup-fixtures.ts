import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { ApiService, loadConfig } from "@daon/api";
import { LedgerService } from "@daon/chain";
import pg from "pg";
import { pino } from "pino";
import { createDatabase } from "../../api/test/test-system.js";
import { openDeployment } from "../src/services/deployment-services.js";

/** The storage paths every test with a database runs on (as the API's tests). */
export const STORAGE_PATHS = ["pglite", "postgres"] as const;
export type StoragePath = (typeof STORAGE_PATHS)[number];

export const REPO = resolve(import.meta.dirname, "../../..");
export const DAON = join(REPO, "bin/daon.mjs");
/** A Redis database index of its own: the drills FLUSHDB it, other tests use index 0. */
const REDIS_URL = `${process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"}/11`;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `daon …` as an operator runs it, in the project directory. */
export function daon(args: string[], cwd: string, timeoutMs = 400_000): Promise<Ran> {
  return run(process.execPath, [DAON, ...args], cwd, timeoutMs);
}

export function run(command: string, args: string[], cwd: string, timeoutMs = 400_000): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/**
 * A command on a pseudo-terminal (`script` from util-linux), answering each prompt when it
 * appears, as an operator types: `[pattern, answer]`, where the answer may use the match.
 */
export function onTerminal(
  commandLine: string,
  cwd: string,
  dialogue: [RegExp, (match: RegExpMatchArray) => string][],
  timeoutMs = 400_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child: ChildProcess = spawn("script", ["-qefc", commandLine, "/dev/null"], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let next = 0;
    let answeredUpTo = 0;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const step = dialogue[next];
      if (!step) return;
      const match = output.slice(answeredUpTo).match(step[0]);
      if (!match) return;
      answeredUpTo = output.length;
      next += 1;
      child.stdin?.write(`${step[1](match)}\n`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

export interface TestDeployment {
  storage: StoragePath;
  dir: string;
  envFile: string;
  stateDir: string;
  chainId: string;
  apiUrl: string;
  rpcUrl: string;
  env(): Record<string, string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops what runs and removes the directory and the database. */
  destroy(): Promise<void>;
}

/**
 * `daon init --test` in a temp directory, made to run beside other tests: its own ports,
 * short block times (200 ms, an empty block every second), and on the postgres path a fresh
 * database and Redis index 11.
 */
export async function createDeployment(storage: StoragePath, label: string): Promise<TestDeployment> {
  const dir = await mkdtemp(join(tmpdir(), `daon-${label}-`));
  const suffix = `${label}-${Math.random().toString(36).slice(2, 8)}`;
  const init = await daon(["init", `--test=${suffix}`, "--json"], dir);
  if (init.code !== 0) throw new Error(`daon init failed: ${init.stderr}`);
  const chainId = JSON.parse(init.stdout).chainId as string;
  const [apiPort, rpcPort] = [await freePort(), await freePort()];
  const database = storage === "postgres" ? await createDatabase() : undefined;
  // As compose's init-daon.sh does: an extension whose objects live in the DAON schema, owned by the superuser.
  if (database) await sqlAt(database.url, "create extension if not exists pg_stat_statements");
  const envFile = join(dir, ".env");
  await appendFile(envFile, `PORT=${apiPort}\nLOG_LEVEL=warn\n${database ? `DATABASE_URL=${database.url}\nREDIS_URL=${REDIS_URL}\n` : ""}`);
  const stateDir = join(dir, "data");
  const config = join(stateDir, "node", "config", "config.toml");
  writeFileSync(
    config,
    readFileSync(config, "utf8")
      .replace(/laddr = "[^"]*"/, `laddr = "tcp://127.0.0.1:${rpcPort}"`)
      .replace(/timeout_commit = "[^"]*"/, 'timeout_commit = "200ms"')
      .replace(/create_empty_blocks_interval = "[^"]*"/, 'create_empty_blocks_interval = "1s"'),
  );
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const controller = () => openDeployment(envFile).controller;
  return {
    storage,
    dir,
    envFile,
    stateDir,
    chainId,
    apiUrl,
    rpcUrl: `http://127.0.0.1:${rpcPort}`,
    env: () => parseEnv(readFileSync(envFile, "utf8")) as Record<string, string>,
    async start() {
      await controller().start();
      await waitFor(
        async () => (await fetch(`${apiUrl}/health`).catch(() => undefined))?.status === 200,
        180_000,
        "the API to answer /health",
      );
    },
    stop: () => controller().stop(),
    async destroy() {
      await controller()
        .stop()
        .catch(() => {});
      await database?.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Registers a text and waits for its confirmation; returns the content hash and block height. */
export async function register(apiUrl: string, content: string): Promise<{ contentHash: string; blockHeight: number }> {
  const response = await fetch(`${apiUrl}/api/v1/protect`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content, metadata: { title: content, type: "test" } }),
  });
  const body = (await response.json()) as { contentHash: string; blockHeight: number; status: string };
  if (response.status !== 201 || body.status !== "confirmed")
    throw new Error(`protect answered ${response.status} ${JSON.stringify(body)}`);
  return { contentHash: body.contentHash, blockHeight: body.blockHeight };
}

export async function nodeStatus(rpcUrl: string): Promise<{ network: string; height: number }> {
  const { result } = (await (await fetch(`${rpcUrl}/status`)).json()) as {
    result: { node_info: { network: string }; sync_info: { latest_block_height: string } };
  };
  return { network: result.node_info.network, height: Number(result.sync_info.latest_block_height) };
}

export const mode = (path: string) => statSync(path).mode & 0o777;

/** The deployment's node and API in this process (as `daon up` runs them), on the ports of its `.env` and config.toml. */
export async function startInProcess(deployment: TestDeployment, env: Record<string, string> = {}) {
  const ledger = await LedgerService.start(join(deployment.stateDir, "node"));
  const config = loadConfig({ ...deployment.env(), DAON_STATE_DIR: deployment.stateDir, CHAIN_RPC: ledger.rpcUrl, ...env });
  const logger = pino({ level: "silent" });
  let api: ApiService;
  try {
    api = await ApiService.start(config, { logger, drainMs: 0 });
  } catch (error) {
    await ledger.stop();
    throw error;
  }
  return {
    api,
    ledger,
    async stop() {
      await api.stop().catch(() => {});
      await ledger.stop().catch(() => {});
    },
  };
}

/** One statement against a PostgreSQL database; the rows it returns. */
export async function sqlAt(url: string, statement: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(statement)).rows;
  } finally {
    await client.end();
  }
}
