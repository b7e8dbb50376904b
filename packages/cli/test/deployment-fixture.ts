import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { opsToken } from "@daon/api";
import { Redis } from "ioredis";
import pg from "pg";
import { createDatabase, POSTGRES_ADMIN_URL, REDIS_URL } from "../../api/test/test-system.js";
import { initDeployment } from "../src/commands/init.js";
import { deploymentPaths } from "../src/deployment.js";

/** A real deployment made by `daon init` and run by `daon up` (or `daon node` + `daon api`) in child processes. */

export const DAON = resolve(import.meta.dirname, "../../../bin/daon.mjs");

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function daon(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [DAON, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Redis user with a password (added beside the test server's open default user), so REDIS_URL carries one. */
export async function redisUrlWithPassword(): Promise<string> {
  const admin = new Redis(REDIS_URL);
  const password = "RedisPreflightTestPw4242424242424242";
  await admin.call("ACL", "SETUSER", "daon-preflight-test", "on", `>${password}`, "~*", "&*", "+@all");
  admin.disconnect();
  const url = new URL(REDIS_URL);
  url.username = "daon-preflight-test";
  url.password = password;
  url.pathname = "/3";
  return url.toString();
}

/** A role with a password that owns a fresh database: what `rotate-keys database` changes. */
export async function databaseWithRole(): Promise<{ url: string; role: string; drop(): Promise<void> }> {
  const database = await createDatabase();
  const name = new URL(database.url).pathname.slice(1);
  const role = `${name}_role`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create role ${role} login password 'InitialRolePw0000000000000000000000000'`);
  await admin.query(`alter database ${name} owner to ${role}`);
  await admin.end();
  const url = new URL(database.url);
  url.username = role;
  url.password = "InitialRolePw0000000000000000000000000";
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query(`alter schema public owner to ${role}`);
  await db.end();
  return {
    url: url.toString(),
    role,
    async drop() {
      await database.drop();
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`drop role if exists ${role}`).catch(() => {});
      await client.end();
    },
  };
}

export interface TestDeployment {
  storage: "pglite" | "postgres";
  dir: string;
  envFile: string;
  stateDir: string;
  apiUrl: string;
  rpcUrl: string;
  /** Stderr of the running processes. */
  output: () => string;
  env(): Record<string, string>;
  /** Changes lines of `.env` (undefined removes). */
  setEnv(changes: Record<string, string | undefined>): void;
  opsToken(): string;
  /** Starts the processes; `env` adds to their environment for this start. */
  start(env?: Record<string, string>): Promise<void>;
  /** SIGTERM to every process; resolves with their exit codes. */
  stop(signal?: NodeJS.Signals): Promise<(number | null)[]>;
  children: ChildProcess[];
  daon(args: string[], env?: Record<string, string>): Promise<Run>;
  destroy(): Promise<void>;
}

export async function createDeployment(
  storage: "pglite" | "postgres",
  options: {
    topology?: "single" | "split";
    settings?: Record<string, string>;
    roleDatabase?: boolean;
    childEnv?: Record<string, string>;
  } = {},
): Promise<TestDeployment> {
  const dir = await mkdtemp(join(tmpdir(), `daon-ops-${storage}-`));
  const apiPort = await freePort();
  const rpcPort = await freePort();
  const topology = options.topology ?? "single";
  const database = storage === "postgres" ? (options.roleDatabase ? await databaseWithRole() : await createDatabase()) : undefined;
  const settings: Record<string, string> = {
    PORT: String(apiPort),
    CHAIN_RPC: `http://127.0.0.1:${rpcPort}`,
    DAON_SUPERVISOR: "process",
    DAON_TOPOLOGY: topology,
    API_REPLICAS: "1",
    ...(storage === "postgres"
      ? {
          DATABASE_URL: database!.url,
          REDIS_URL: await redisUrlWithPassword(),
          PUBLIC_HOST: "localhost",
          ALLOWED_ORIGINS: "https://app.example.org",
        }
      : {}),
    ...options.settings,
  };
  writeFileSync(
    join(dir, "settings.env"),
    Object.entries(settings)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  );
  // daon init in this process (the same code the command runs; a spawn costs seconds of compiling).
  await initDeployment(deploymentPaths({ envFile: join(dir, ".env"), stateDir: join(dir, "data") }), {
    profile: storage === "postgres" ? "production" : "embedded",
    test: `${storage}-${Math.random().toString(36).slice(2, 8)}`,
    keepSettingsFrom: join(dir, "settings.env"),
  });
  const envFile = join(dir, ".env");
  let output = "";
  const childEnv = { DAON_DRAIN_MS: "200", ...options.childEnv };
  const deployment: TestDeployment = {
    storage,
    dir,
    envFile,
    stateDir: join(dir, "data"),
    apiUrl: `http://127.0.0.1:${apiPort}`,
    rpcUrl: `http://127.0.0.1:${rpcPort}`,
    output: () => output,
    children: [],
    env: () => parseEnv(readFileSync(envFile, "utf8")) as Record<string, string>,
    setEnv(changes) {
      const env = deployment.env();
      for (const [name, value] of Object.entries(changes)) {
        if (value === undefined) delete env[name];
        else env[name] = value;
      }
      writeFileSync(
        envFile,
        `${Object.entries(env)
          .map(([k, v]) => `${k}=${v}`)
          .join("\n")}\n`,
        { mode: 0o600 },
      );
    },
    opsToken: () => opsToken(deployment.env().API_KEY_SECRET),
    daon: (args, env = {}) => daon(args, dir, env),
    async start(env = {}) {
      const launch = (args: string[]) => {
        const child = spawn(process.execPath, [DAON, ...args], {
          cwd: dir,
          stdio: ["ignore", "ignore", "pipe"],
          env: { ...process.env, ...childEnv, ...env },
        });
        child.stderr?.on("data", (chunk) => (output += chunk));
        deployment.children.push(child);
        return child;
      };
      const before = output.length;
      if (topology === "single") launch(["up", "--rpc-laddr", `tcp://127.0.0.1:${rpcPort}`]);
      else {
        launch(["node", "--home", join(dir, "data", "node"), "--rpc-laddr", `tcp://127.0.0.1:${rpcPort}`]);
        launch(["api"]);
      }
      for (let i = 0; i < 600 && !/ready: API/.test(output.slice(before)); i++) {
        if (deployment.children.some((c) => c.exitCode !== null)) break;
        await sleep(100);
      }
      if (!/ready: API/.test(output.slice(before))) throw new Error(`deployment did not start:\n${output.slice(before)}`);
      // Wait for the first block, so the ledger checks see a moving chain.
      for (let i = 0; i < 100; i++) {
        const height = await fetch(`${deployment.rpcUrl}/status`)
          .then((r) => r.json())
          .then((b) => Number(b.result.sync_info.latest_block_height))
          .catch(() => 0);
        if (height >= 1) break;
        await sleep(100);
      }
    },
    async stop(signal = "SIGTERM") {
      const running = deployment.children.filter((c) => c.exitCode === null && c.signalCode === null);
      const exits = running.map((child) => new Promise<number | null>((done) => child.once("exit", (code) => done(code))));
      // The API first, the node last (as ops.md §2 stops them).
      for (const child of [...running].reverse()) {
        child.kill(signal);
        if (running.length > 1) await sleep(50);
      }
      const codes = await Promise.all(exits);
      deployment.children = [];
      return codes;
    },
    async destroy() {
      for (const child of deployment.children) child.kill("SIGKILL");
      await database?.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  return deployment;
}

/** POST /api/v1/protect with a unique text. */
export async function protect(apiUrl: string, text: string, wait = "false", headers: Record<string, string> = {}) {
  const response = await fetch(`${apiUrl}/api/v1/protect?wait=${wait}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ content: text, metadata: { title: "ops test", type: "test" } }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls verify until the registration is confirmed (or the deadline passes). */
export async function waitConfirmed(apiUrl: string, contentHash: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let body: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    const response = await fetch(`${apiUrl}/api/v1/verify/${contentHash}`).catch(() => undefined);
    body = response ? ((await response.json()) as Record<string, unknown>) : {};
    if (body.status === "confirmed") return body;
    await sleep(200);
  }
  return body;
}

/** The lines of a preflight run, by check id. */
export function preflightLines(stdout: string): Map<string, { number: string; status: string; reason: string }> {
  const lines = new Map<string, { number: string; status: string; reason: string }>();
  for (const match of stdout.matchAll(/^(\d\d) (PASS|WARN|FAIL) ([a-z_.]+): (.*)$/gm))
    lines.set(match[3], { number: match[1], status: match[2], reason: match[4] });
  return lines;
}
