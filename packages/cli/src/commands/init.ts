import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { appendFile, rename } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { fingerprint, KEYRING_NAMES, secretWeakness } from "@daon/api";
import { homePaths, initHome, isChainId, isHomeInitialised, writeFileAtomic } from "@daon/chain";
import type { Command } from "commander";
import { Option } from "commander";
import pg from "pg";
import { type Deployment, deploymentPaths, privateDir, readEnv, UsageError, writeEnv } from "../deployment.js";

export interface InitOptions {
  mainnet?: boolean;
  test?: boolean | string;
  chainId?: string;
  profile?: "embedded" | "production";
  publicHost?: string;
  allowedOrigins?: string;
  alertWebhook?: string;
  apiReplicas?: number | string;
  /** A previous `.env` (path) or its settings: non-secret settings and BACKUP_KEY are carried over (wipe-and-reset). */
  keepSettingsFrom?: string | Record<string, string>;
  /** Move an existing deployment's files to `backups/pre-init-<ts>/` instead of refusing. */
  force?: boolean;
  /** Ask for what is missing (chain, host, origins); `daon init` sets it on a TTY. */
  interactive?: boolean;
  /** Skip the non-empty-database refusal's connection attempt (callers that just emptied it). */
  skipDatabaseCheck?: boolean;
}

export interface InitResult {
  chainId: string;
  profile: "embedded" | "production";
  walletAddress: string;
  validatorAddress: string;
  nodeHome: string;
  walletFile: string;
  secretsFile: string;
  envFile: string;
  stateDir: string;
  /** Where `--force` moved the previous deployment's files. */
  movedTo?: string;
  /** Fingerprints of the generated secrets (never the values). */
  fingerprints: Record<string, string>;
  notes: string[];
}

/** The secrets `daon init` generates (ops.md §1) and how each is drawn. */
export const GENERATED_SECRETS = {
  JWT_SECRET: "base64url",
  API_KEY_SECRET: "base64url",
  ENCRYPTION_KEY: "hex",
  BACKUP_KEY: "hex",
  POSTGRES_PASSWORD: "alphanumeric",
  POSTGRES_SUPERUSER_PASSWORD: "alphanumeric",
  REDIS_PASSWORD: "alphanumeric",
  GRAFANA_ADMIN_PASSWORD: "alphanumeric",
} as const;

/**
 * Settings of a deployment that are not the API's own (compose, Grafana, alerting): known
 * names, so preflight's config.schema does not call them unknown.
 */
export const DEPLOYMENT_SETTINGS = [
  "POSTGRES_PASSWORD",
  "POSTGRES_SUPERUSER_PASSWORD",
  "REDIS_PASSWORD",
  "GRAFANA_ADMIN_PASSWORD",
  "COMPOSE_PROJECT_NAME",
  "COMPOSE_FILE",
  "ALERT_WEBHOOK_URL",
  "BACKUP_OFFSITE_RCLONE",
  "BACKUP_OFFSITE_COMMAND",
  "DAON_COMMIT",
  "DAON_BUILT_AT",
] as const;

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const COMPOSE_VOLUMES = ["daon_daon-blockchain-data", "daon_postgres-data", "daon_prometheus-data", "daon_grafana-data"];

/** A fresh random secret; drawn again in the (astronomically rare) case it trips a weakness rule. */
export function generateSecret(kind: "base64url" | "hex" | "alphanumeric"): string {
  for (;;) {
    let value: string;
    if (kind === "base64url") value = randomBytes(48).toString("base64url");
    else if (kind === "hex") value = randomBytes(32).toString("hex");
    else {
      value = "";
      while (value.length < 40) {
        for (const byte of randomBytes(64)) if (byte < 248 && value.length < 40) value += ALPHANUMERIC[byte % 62];
      }
    }
    if (!secretWeakness(value) && !/password|changeme|test-secret/i.test(value)) return value;
  }
}

/** `daon-test-YYYYMMDD-HHMMSS` in UTC. */
export function testChainId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `daon-test-${stamp}`;
}

function chainFlagsGiven(options: InitOptions): number {
  return [options.mainnet, options.test !== undefined && options.test !== false, options.chainId !== undefined].filter(Boolean).length;
}

export function chooseChainId(options: InitOptions): string {
  if (chainFlagsGiven(options) > 1) throw new UsageError("choose one of --mainnet, --test[=SUFFIX] and --chain-id");
  const chainId = options.mainnet
    ? "daon-mainnet-1"
    : (options.chainId ?? (typeof options.test === "string" ? `daon-test-${options.test}` : testChainId()));
  if (!isChainId(chainId))
    throw new UsageError(`chain ID ${JSON.stringify(chainId)} must be daon-mainnet-1 or daon-test-[a-z0-9][a-z0-9-]{0,38}`);
  return chainId;
}

/** The TTY questions of ops.md §1: chain menu, then host and origins for a production deployment. */
async function askMissing(options: InitOptions): Promise<InitOptions> {
  const { input, select } = await import("@inquirer/prompts");
  const asked = { ...options };
  if (chainFlagsGiven(options) === 0) {
    const test = testChainId();
    const choice = await select({
      message: "Select chain ID:",
      choices: [
        { name: "1) daon-mainnet-1 (production)", value: "mainnet" },
        { name: `2) ${test}`, value: "test" },
        { name: "3) custom", value: "custom" },
      ],
    });
    if (choice === "mainnet") asked.mainnet = true;
    else if (choice === "test") asked.chainId = test;
    else
      asked.chainId = await input({
        message: "Chain ID (daon-mainnet-1 or daon-test-…):",
        validate: (value) => isChainId(value) || "daon-mainnet-1 or daon-test-[a-z0-9][a-z0-9-]{0,38}",
      });
  }
  const production = asked.mainnet || asked.profile === "production";
  if (production && !asked.publicHost) asked.publicHost = await input({ message: "Public host name (e.g. api.daon.network):" });
  if (production && !asked.allowedOrigins)
    asked.allowedOrigins = await input({
      message: "Allowed browser origins (comma-separated https URLs):",
      default: asked.publicHost ? `https://${asked.publicHost}` : undefined,
    });
  return asked;
}

function timestamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
}

/** What already exists of a deployment: each is a refusal without `--force`. */
function existingFiles(deployment: Deployment, chainId: string): string[] {
  const found: string[] = [];
  if (existsSync(deployment.envFile)) found.push(deployment.envFile);
  // Other chains' secrets files stay where they are (ops.md §6: kept for the vault); only this chain's would be overwritten.
  for (const name of [`secrets-${chainId}.env`, `api-wallet-${chainId}.txt`]) {
    const path = join(deployment.secretsDir, name);
    if (existsSync(path)) found.push(path);
  }
  if (isHomeInitialised(deployment.nodeHome)) found.push(deployment.nodeHome);
  return found;
}

/** A database that already holds tables (PGlite dir or the DAON schema in DATABASE_URL's database). */
async function nonEmptyDatabase(deployment: Deployment, databaseUrl: string | undefined, notes: string[]): Promise<string | undefined> {
  if (!databaseUrl) {
    const dir = join(deployment.stateDir, "db");
    return existsSync(dir) && readdirSync(dir).length > 0 ? `the embedded database ${dir} holds data` : undefined;
  }
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ count: string }>(
      "select count(*) as count from information_schema.tables where table_schema = current_schema()",
    );
    const tables = Number(rows[0]?.count ?? 0);
    return tables > 0 ? `the database ${maskUrl(databaseUrl)} holds ${tables} table(s) in its DAON schema` : undefined;
  } catch (error) {
    notes.push(`database not reachable at init (${(error as Error).message.slice(0, 80)}): not checked for existing data`);
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

export function maskUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = "****";
    return url.toString();
  } catch {
    return "(not a URL)";
  }
}

function keptSettings(from: InitOptions["keepSettingsFrom"]): Record<string, string> {
  if (!from) return {};
  if (typeof from !== "string") return { ...from };
  if (!existsSync(from)) throw new UsageError(`--keep-settings-from: ${from} does not exist`);
  return readEnv(from);
}

/** A URL's password replaced (the role and Redis passwords are new on every init). */
function withPassword(value: string, oldPassword: string | undefined, newPassword: string): string {
  try {
    const url = new URL(value);
    // Only a URL that carried the old deployment's own password gets the new one (wipe-and-reset then ALTERs the role).
    if (!url.password || oldPassword === undefined || decodeURIComponent(url.password) !== oldPassword) return value;
    url.password = encodeURIComponent(newPassword);
    return url.toString();
  } catch {
    return value;
  }
}

/** Names never carried over: they belong to one chain, or are secrets made afresh. */
const NOT_CARRIED = new Set([
  "CHAIN_ID",
  "API_MNEMONIC",
  ...KEYRING_NAMES,
  "POSTGRES_PASSWORD",
  "POSTGRES_SUPERUSER_PASSWORD",
  "REDIS_PASSWORD",
  "GRAFANA_ADMIN_PASSWORD",
]);

/**
 * `daon init` (ops.md §1): ledger keys, genesis and config, the API wallet, every secret,
 * `.env` and the vault files; refuses (exit 2) to overwrite a deployment unless `--force`.
 */
export async function initDeployment(deployment: Deployment, options: InitOptions): Promise<InitResult> {
  const asked = options.interactive ? await askMissing(options) : options;
  const chainId = chooseChainId(asked);
  const kept = keptSettings(asked.keepSettingsFrom);
  const profile: "embedded" | "production" = asked.profile ?? (asked.mainnet ? "production" : "embedded");
  const production = profile === "production" || chainId === "daon-mainnet-1";
  const replicas = Number(asked.apiReplicas ?? kept.API_REPLICAS ?? 2);
  if (!Number.isInteger(replicas) || replicas < 1)
    throw new UsageError(`--api-replicas must be a whole number ≥ 1, got ${asked.apiReplicas}`);
  if (asked.alertWebhook !== undefined && !/^https?:\/\/\S+$/.test(asked.alertWebhook))
    throw new UsageError(`--alert-webhook must be an http(s) URL, got ${JSON.stringify(asked.alertWebhook)}`);
  if (asked.publicHost !== undefined && !/^[A-Za-z0-9.-]+(:\d+)?$/.test(asked.publicHost))
    throw new UsageError(`--public-host must be a host name, got ${JSON.stringify(asked.publicHost)}`);
  const notes: string[] = [];

  const secrets = Object.fromEntries(Object.entries(GENERATED_SECRETS).map(([name, kind]) => [name, generateSecret(kind)])) as Record<
    keyof typeof GENERATED_SECRETS,
    string
  >;
  if (kept.BACKUP_KEY) secrets.BACKUP_KEY = kept.BACKUP_KEY; // old backups must stay readable (ops.md §6 step 7)

  const supervisor = kept.DAON_SUPERVISOR ?? (production ? "compose" : "process");
  const serviceHost = (name: string) => (supervisor === "compose" ? name : "127.0.0.1");
  const databaseUrl = kept.DATABASE_URL
    ? withPassword(kept.DATABASE_URL, kept.POSTGRES_PASSWORD, secrets.POSTGRES_PASSWORD)
    : production
      ? `postgres://daon_api:${secrets.POSTGRES_PASSWORD}@${serviceHost("postgres")}:5432/daon_production`
      : undefined;
  const redisUrl = kept.REDIS_URL
    ? withPassword(kept.REDIS_URL, kept.REDIS_PASSWORD, secrets.REDIS_PASSWORD)
    : production
      ? `redis://:${secrets.REDIS_PASSWORD}@${serviceHost("redis")}:6379/0`
      : undefined;

  // Refusals first, all named at once; nothing is written before they pass.
  const existing = existingFiles(deployment, chainId);
  const problems: string[] = [];
  if (existing.length > 0 && !asked.force)
    problems.push(`refusing to overwrite an existing deployment: ${existing.join(", ")} (--force moves them to backups/pre-init-<ts>/)`);
  const database = asked.skipDatabaseCheck ? undefined : await nonEmptyDatabase(deployment, databaseUrl, notes);
  if (database) problems.push(`refusing to initialise over a non-empty database: ${database} (wipe-and-reset empties it)`);
  if (problems.length > 0) throw new UsageError(problems.join("; "));

  await privateDir(deployment.stateDir);
  let movedTo: string | undefined;
  if (existing.length > 0) {
    movedTo = join(deployment.stateDir, "backups", `pre-init-${timestamp()}`);
    await privateDir(join(deployment.stateDir, "backups"));
    await privateDir(movedTo);
    for (const path of existing) await rename(path, join(movedTo, path === deployment.nodeHome ? "node" : basename(path)));
  }
  await privateDir(deployment.secretsDir);
  for (const dir of ["backups", "logs", "run"]) await privateDir(join(deployment.stateDir, dir));

  const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
  const [{ address }] = await wallet.getAccounts();
  const home = await initHome({ home: deployment.nodeHome, chainId, accounts: [address] });
  const walletFile = join(deployment.secretsDir, `api-wallet-${chainId}.txt`);
  const secretsFile = join(deployment.secretsDir, `secrets-${chainId}.env`);
  const createdAt = new Date().toISOString();
  await writeFileAtomic(walletFile, `address: ${address}\nmnemonic: ${wallet.mnemonic}\n`);
  await writeFileAtomic(
    secretsFile,
    `${[`CHAIN_ID=${chainId}`, `CREATED_AT=${createdAt}`, ...Object.entries(secrets).map(([k, v]) => `${k}=${v}`)].join("\n")}\n`,
  );

  const carried = Object.fromEntries(Object.entries(kept).filter(([name]) => !NOT_CARRIED.has(name)));
  const origins =
    asked.allowedOrigins ??
    kept.ALLOWED_ORIGINS ??
    (asked.publicHost ? `https://${asked.publicHost}` : production ? undefined : "http://localhost:3000,http://127.0.0.1:3000");
  const settings: Record<string, string | undefined> = {
    ...carried,
    NODE_ENV: production ? "production" : (carried.NODE_ENV ?? "development"),
    CHAIN_ID: chainId,
    DAON_STATE_DIR: deployment.stateDir,
    DAON_SUPERVISOR: supervisor,
    DAON_TOPOLOGY: kept.DAON_TOPOLOGY ?? (supervisor === "process" ? "single" : "split"),
    API_REPLICAS: String(replicas),
    PUBLIC_HOST: asked.publicHost ?? kept.PUBLIC_HOST,
    ALLOWED_ORIGINS: origins,
    DATABASE_URL: databaseUrl,
    DB_POOL_MAX: kept.DB_POOL_MAX ?? "20",
    REDIS_URL: redisUrl,
    ALERT_WEBHOOK_URL: asked.alertWebhook ?? kept.ALERT_WEBHOOK_URL,
    API_MNEMONIC: wallet.mnemonic,
    ...secrets,
    ...(supervisor === "compose"
      ? { COMPOSE_PROJECT_NAME: "daon", COMPOSE_FILE: kept.COMPOSE_FILE ?? "deploy/docker-compose.production.yml" }
      : {}),
  };
  await writeEnv(
    deployment.envFile,
    Object.fromEntries(Object.entries(settings).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "")),
  );
  if (production && !settings.PUBLIC_HOST) notes.push("no PUBLIC_HOST: set it in .env before launch (preflight tls.cert)");
  if (production && !settings.ALLOWED_ORIGINS) notes.push("no ALLOWED_ORIGINS: set it in .env before launch (preflight security.cors)");
  if (supervisor === "compose") notes.push(...(await createVolumes()));

  await recheck(deployment, { chainId, address, walletFile, secretsFile, mnemonic: wallet.mnemonic });
  await appendFile(
    join(deployment.stateDir, "logs", "ops-audit.log"),
    `${JSON.stringify({ time: createdAt, command: "init", chainId, profile, wallet: address, user: process.env.USER ?? null, result: "ok" })}\n`,
    { mode: 0o600 },
  );
  return {
    chainId,
    profile,
    walletAddress: address,
    validatorAddress: home.validatorKey.address,
    nodeHome: deployment.nodeHome,
    walletFile,
    secretsFile,
    envFile: deployment.envFile,
    stateDir: deployment.stateDir,
    movedTo,
    fingerprints: Object.fromEntries(Object.entries(secrets).map(([name, value]) => [name, fingerprint(value)])),
    notes,
  };
}

/** The external volumes of the compose file (ops.md §12), so `docker compose down -v` cannot delete data. */
async function createVolumes(): Promise<string[]> {
  const run = promisify(execFile);
  for (const volume of COMPOSE_VOLUMES) {
    try {
      await run("docker", ["volume", "create", volume], { timeout: 30_000 });
    } catch (error) {
      const e = error as { code?: string; stderr?: string; message: string };
      const reason = e.code === "ENOENT" ? "docker not found" : (e.stderr || e.message).trim().split("\n")[0].slice(0, 100);
      return [
        `could not create the external volumes (${reason}): before the first start run docker volume create ${COMPOSE_VOLUMES.join(" && docker volume create ")}`,
      ];
    }
  }
  return [];
}

/** ops.md §1 "re-checks modes, genesis, wallet": what was written is what a node and API will accept. */
async function recheck(
  deployment: Deployment,
  made: { chainId: string; address: string; walletFile: string; secretsFile: string; mnemonic: string },
): Promise<void> {
  const mode = (path: string) => statSync(path).mode & 0o777;
  const problems: string[] = [];
  for (const path of [deployment.envFile, made.walletFile, made.secretsFile, homePaths(deployment.nodeHome).validatorKey])
    if (mode(path) !== 0o600) problems.push(`${path} has mode ${mode(path).toString(8)}, not 600`);
  for (const path of [deployment.stateDir, deployment.secretsDir, deployment.nodeHome])
    if (mode(path) !== 0o700) problems.push(`${path} has mode ${mode(path).toString(8)}, not 700`);
  const genesis = JSON.parse(readFileSync(homePaths(deployment.nodeHome).genesis, "utf8"));
  if (genesis.chain_id !== made.chainId) problems.push(`genesis names chain ${genesis.chain_id}`);
  if (!genesis.app_state.auth.accounts.some((a: { address: string }) => a.address === made.address))
    problems.push("genesis lacks the API wallet's account");
  const derived = await DirectSecp256k1HdWallet.fromMnemonic(made.mnemonic, { prefix: "daon" });
  if ((await derived.getAccounts())[0].address !== made.address) problems.push("the wallet file's mnemonic does not derive its address");
  const env = readEnv(deployment.envFile);
  if (env.CHAIN_ID !== made.chainId || env.API_MNEMONIC !== made.mnemonic) problems.push(".env does not hold the new chain and wallet");
  if (problems.length > 0) throw new Error(`init wrote an inconsistent deployment: ${problems.join("; ")}`);
}

export function describeInit(result: InitResult): string {
  return [
    `chain ID:          ${result.chainId} (${result.profile})`,
    `API wallet:        ${result.walletAddress}`,
    `validator address: ${result.validatorAddress}`,
    `ledger home:       ${result.nodeHome}`,
    `settings:          ${result.envFile}`,
    `secrets file:      ${result.secretsFile}`,
    `wallet file:       ${result.walletFile}`,
    ...(result.movedTo ? [`previous files:    ${result.movedTo}`] : []),
    ...result.notes.map((note) => `note: ${note}`),
    "Save both secrets files to your vault now:",
    `  cat ${result.secretsFile}`,
    `  cat ${result.walletFile}`,
  ].join("\n");
}

/** Registers `daon init` on the program. */
export function registerInit(program: Command, print: (result: Record<string, unknown>, human: string) => void): void {
  program
    .command("init")
    .description("create a deployment: ledger keys, genesis, config, API wallet, secrets and .env")
    .addOption(new Option("--profile <profile>", "embedded or production").choices(["embedded", "production"]))
    .option("--mainnet", "production chain daon-mainnet-1")
    .option("--test [suffix]", "test chain daon-test-<suffix> (default: the current UTC time)")
    .option("--chain-id <id>", "explicit chain ID")
    .option("--public-host <host>", "the public host name (PUBLIC_HOST)")
    .option("--allowed-origins <origins>", "comma-separated browser origins (ALLOWED_ORIGINS)")
    .option("--alert-webhook <url>", "where Alertmanager sends alerts")
    .option("--api-replicas <n>", "API instances in the split topology (default 2)")
    .option("--keep-settings-from <file>", "carry non-secret settings and BACKUP_KEY over from another .env")
    .option("--force", "move an existing deployment's files to backups/pre-init-<ts>/ first")
    .option("--state-dir <dir>", "where keys, secrets and data go (default ./data; /opt/daon for production)")
    .action(async (options) => {
      const globals = program.opts();
      const production = options.profile === "production" || options.mainnet;
      const stateDir = options.stateDir ?? (production && !process.env.DAON_STATE_DIR ? "/opt/daon" : undefined);
      const deployment = deploymentPaths({ envFile: globals.envFile, stateDir });
      const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY && !globals.json);
      const result = await initDeployment(deployment, { ...options, interactive });
      print({ command: "init", ...result }, describeInit(result));
    });
}
