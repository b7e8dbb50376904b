import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { initHome, LedgerService } from "@daon/chain";
import pg from "pg";
import { pino } from "pino";
import { ApiService, loadConfig } from "../src/index.js";

/** The two storage paths every API test runs on: embedded (PGlite, in-memory limits) and production (PostgreSQL + Redis). */
export const STORAGE_PATHS = ["pglite", "postgres"] as const;
export type StoragePath = (typeof STORAGE_PATHS)[number];

export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestSystem {
  storage: StoragePath;
  api: ApiService;
  apiUrl: string;
  ledger: LedgerService;
  rpcUrl: string;
  chainId: string;
  dir: string;
  databaseUrl: string | undefined;
  /** Log lines the API wrote, for tests that inspect logs. */
  logs: string[];
  stop(): Promise<void>;
}

/** A fresh PostgreSQL database for one test system; dropped by `stop`. */
export async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `daon_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

/**
 * A ledger node and the API in this process, on free ports: `pglite` keeps the database in
 * memory and rate limits in memory; `postgres` uses a fresh PostgreSQL database and Redis.
 */
export async function startTestSystem(
  storage: StoragePath,
  env: Record<string, string> = {},
  options: { timeoutCommitMs?: number } = {},
): Promise<TestSystem> {
  const dir = await mkdtemp(join(tmpdir(), "daon-api-"));
  const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
  const [{ address }] = await wallet.getAccounts();
  const chainId = `daon-test-${Math.random().toString(36).slice(2, 10)}`;
  await initHome({
    home: join(dir, "node"),
    chainId,
    accounts: [address],
    config: {
      consensus: { timeoutCommitMs: options.timeoutCommitMs ?? 300, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 5000 },
    } as never,
  });
  const ledger = await LedgerService.start(join(dir, "node"), { rpcListen: "tcp://127.0.0.1:0" });
  while (ledger.node.height < 1) await new Promise((resolve) => setTimeout(resolve, 20));
  const database = storage === "postgres" ? await createDatabase() : undefined;
  const logs: string[] = [];
  const logger = pino(
    { level: "info", redact: { paths: ["req.headers.authorization"], censor: "[redacted]" } },
    { write: (line: string) => logs.push(line) },
  );
  const config = loadConfig({
    NODE_ENV: "test",
    PORT: "0",
    CHAIN_ID: chainId,
    CHAIN_RPC: ledger.rpcUrl,
    API_MNEMONIC: wallet.mnemonic,
    DAON_STATE_DIR: dir,
    ...(database ? { DATABASE_URL: database.url, REDIS_URL: REDIS_URL } : {}),
    ...env,
  });
  const api = await ApiService.start(config, { logger, drainMs: 0, inMemoryDatabase: storage === "pglite" });
  return {
    storage,
    api,
    apiUrl: api.url,
    ledger,
    rpcUrl: ledger.rpcUrl,
    chainId,
    dir,
    databaseUrl: database?.url,
    logs,
    async stop() {
      await api.stop().catch(() => {});
      await ledger.stop().catch(() => {});
      await database?.drop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
