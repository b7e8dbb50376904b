import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from "node:fs";
import { copyFile, rename, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { emptyPostgresSchema, fingerprint, migrateOpsDatabase } from "@daon/api";
import { homePaths, isChainId, writeFileAtomic } from "@daon/chain";
import type { Command } from "commander";
import pg from "pg";
import { backupKey, backupsDir, formatBytes } from "../backups/backup-set.js";
import { completeSets, type Manifest } from "../backups/manifest.js";
import { openDeploymentDatabase } from "../backups/restore.js";
import { postgresAdminUrl, verifyBackupSet } from "../backups/verify.js";
import { privateDir, readEnv, UsageError } from "../deployment.js";
import { scramVerifier } from "../rotation/scram.js";
import { takeOpsLock } from "../rotation/ops-lock.js";
import { type CurrentChain, currentChain, type DeploymentServices, openDeployment, withSettings } from "../services/deployment-services.js";
import {
  Interruption,
  OperationFailed,
  Progress,
  Prompter,
  confirmChainId,
  confirmTyped,
  runCommand,
  utcStamp,
} from "../services/operation.js";
import { waitUntilServing } from "../services/readiness.js";
import { flushRedisDb, redisDbIndex } from "../services/redis-flush.js";
import { auditFor, takeBackup } from "./backup.js";
import { initDeployment, testChainId } from "./init.js";

const DRAIN_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 300_000;
const SPARE_BYTES = 1024 ** 3;
/** Infrastructure credentials whose servers a wipe does not reset: they stay as they were (init would draw new ones). */
const KEPT_CREDENTIALS = ["POSTGRES_SUPERUSER_PASSWORD", "REDIS_PASSWORD", "REDIS_URL", "GRAFANA_ADMIN_PASSWORD"];

interface WipeOptions {
  yesWipeProduction?: boolean;
  confirmChain?: string;
  newChain?: string;
  allowMainnetWipe?: boolean;
  dryRun?: boolean;
  withBackup?: boolean;
}

/** What the wipe empties, named for the plan (ops.md §6 prompt 1). */
export function wipeTargets(services: DeploymentServices): { database: string; ledger: string; redis: string } {
  const { deployment, env } = services;
  let database = `the embedded database ${join(deployment.stateDir, "db")}`;
  if (env.DATABASE_URL) {
    const url = new URL(env.DATABASE_URL);
    database = `the DAON schema in database ${url.pathname.slice(1)} (PostgreSQL at ${url.host})`;
  }
  const redis = env.REDIS_URL
    ? `Redis DB ${redisDbIndex(env.REDIS_URL)} at ${new URL(env.REDIS_URL).host} (FLUSHDB)`
    : "no Redis (in-memory rate limits)";
  return { database, ledger: `the ledger home ${deployment.nodeHome}`, redis };
}

function describePlan(services: DeploymentServices, chain: CurrentChain): string {
  const { deployment, controller } = services;
  const targets = wipeTargets(services);
  return [
    `DAON wipe and reset on ${hostname()}`,
    `  current chain:  ${chain.chainId} (height ${chain.height ?? "?"}, ${chain.registrations ?? "?"} registrations)`,
    `  backed up to:   ${join(backupsDir(deployment.stateDir), "pre-wipe-<time>")}, fully verified before anything is changed`,
    `  wiped:          ${targets.database}`,
    `                  ${targets.ledger}`,
    `                  ${targets.redis}`,
    `  kept:           old secrets files in ${deployment.secretsDir}, backups in ${backupsDir(deployment.stateDir)}, logs in ${join(deployment.stateDir, "logs")}`,
    `  services:       ${controller.kind} (${controller.names.join(", ")}): stopped, then started on the new chain`,
  ].join("\n");
}

const STEPS = [
  "lock, services reachable, free space",
  "maintenance on (writes 503, reads served); outbox and indexer drained",
  "backup pre-wipe",
  "full verify of the backup",
  "stop services",
  "wipe database, ledger home, Redis DB",
  "init the new chain (settings and BACKUP_KEY carried over)",
  "migrations",
  "start; wait for the API, height ≥ 2 and advancing, one chain ID",
  "write run/launch.json",
];

/** The menu of ops.md §6 prompt 4, or `--new-chain mainnet|test|<id>`. */
async function chooseNewChain(prompter: Prompter, given: string | undefined): Promise<string> {
  const test = testChainId();
  let choice = given;
  if (choice === undefined) {
    if (!Prompter.interactive) throw new UsageError("--new-chain mainnet|test|<id> is required when not on a TTY");
    choice = await prompter.ask(`Select new chain ID: 1) daon-mainnet-1 (production)  2) ${test}  3) custom\n> `);
    if (choice === "3" || choice === "custom") choice = await prompter.ask("Custom chain ID: ");
  }
  const chainId = choice === "1" || choice === "mainnet" ? "daon-mainnet-1" : choice === "2" || choice === "test" ? test : choice;
  if (!isChainId(chainId))
    throw new UsageError(`chain ID ${JSON.stringify(chainId)} must be daon-mainnet-1 or daon-test-[a-z0-9][a-z0-9-]{0,38}`);
  return chainId;
}

/** Bytes a new backup set will take: the newest set's size, else what the database and ledger hold now. */
async function expectedBackupBytes(services: DeploymentServices): Promise<number> {
  const newest = completeSets(backupsDir(services.deployment.stateDir))[0];
  if (newest) return Object.values(newest.manifest.files).reduce((sum, file) => sum + file.bytes, 0);
  let bytes = directoryBytes(services.deployment.nodeHome);
  if (!services.env.DATABASE_URL) return bytes + directoryBytes(join(services.deployment.stateDir, "db"));
  const client = new pg.Client({ connectionString: services.env.DATABASE_URL, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    bytes += Number((await client.query("select pg_database_size(current_database()) as size")).rows[0].size);
  } finally {
    await client.end().catch(() => {});
  }
  return bytes;
}

function directoryBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + directoryBytes(join(path, name)), 0);
}

/** Step 1's checks (ops.md §6): each one named; the dry run shows them all. */
async function checkPreconditions(services: DeploymentServices): Promise<{ ok: boolean; line: string }[]> {
  const { deployment, endpoints } = services;
  const results: { ok: boolean; line: string }[] = [];
  const [health, node] = await Promise.all([endpoints.health(), endpoints.nodeStatus()]);
  results.push({
    ok: health?.httpStatus === 200,
    line: `API ${endpoints.apiUrl}: ${health ? `${health.httpStatus} ${health.body.status}` : "not answering"}`,
  });
  results.push({ ok: node !== undefined, line: `ledger node ${endpoints.rpcUrl}: ${node ? `height ${node.height}` : "not answering"}` });
  await privateDir(backupsDir(deployment.stateDir));
  const fs = statfsSync(backupsDir(deployment.stateDir));
  const free = fs.bavail * fs.bsize;
  const needed = 2 * (await expectedBackupBytes(services).catch(() => 0)) + SPARE_BYTES;
  results.push({ ok: free >= needed, line: `free space ${formatBytes(free)} (needs ${formatBytes(needed)}: 2 × backup + 1 GB)` });
  return results;
}

/** Waits until nothing is on its way to the ledger or the read model (ops.md §6 step 2). */
async function drain(services: DeploymentServices, progress: Progress): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let said = 0;
  for (;;) {
    const state = await services.endpoints.maintenance();
    if (state.outboxPending === 0 && state.indexedHeight >= state.ledgerHeight) {
      progress.note(`drained: outbox empty, indexer at height ${state.indexedHeight}`);
      return;
    }
    if (Date.now() > deadline) {
      throw new OperationFailed(
        `not drained in ${DRAIN_TIMEOUT_MS / 1000} s: ${state.outboxPending} registration(s) pending, indexer at ${state.indexedHeight} of ${state.ledgerHeight}`,
      );
    }
    if (Date.now() - said > 10_000) {
      progress.note(`waiting: ${state.outboxPending} pending, indexer at ${state.indexedHeight} of ${state.ledgerHeight}`);
      said = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Empties what the new chain starts without (ops.md §6 step 6): only DAON's schema, directories and Redis DB index. */
async function wipe(services: DeploymentServices, progress: Progress): Promise<void> {
  const { deployment, env } = services;
  if (env.DATABASE_URL) {
    const { schema, dropped } = await emptyPostgresSchema(env.DATABASE_URL);
    progress.note(`schema ${schema} emptied (${dropped} objects dropped; extensions kept)`);
  } else {
    await rm(join(deployment.stateDir, "db"), { recursive: true, force: true });
    progress.note(`embedded database ${join(deployment.stateDir, "db")} removed`);
  }
  await rm(deployment.nodeHome, { recursive: true, force: true });
  progress.note(`ledger home ${deployment.nodeHome} cleared`);
  if (env.REDIS_URL) {
    await flushRedisDb(env.REDIS_URL);
    progress.note(`Redis DB ${redisDbIndex(env.REDIS_URL)} flushed`);
  }
}

/**
 * `init` for the new chain (ops.md §6 step 7): initDeployment with the old settings and
 * BACKUP_KEY carried over, the old node config.toml kept (ports, block times), infrastructure
 * credentials kept, and the app role's password changed to the new one by ALTER ROLE.
 */
async function initNewChain(
  services: DeploymentServices,
  chainId: string,
  oldConfig: string | undefined,
  progress: Progress,
): Promise<{ env: Record<string, string>; secretsFile: string; walletFile: string }> {
  const { deployment, env: old } = services;
  const staging = join(deployment.stateDir, "run", `init-${utcStamp()}.env`);
  const created = await initDeployment(
    { ...deployment, envFile: staging },
    {
      ...(chainId === "daon-mainnet-1" ? { mainnet: true } : { chainId }),
      profile: old.NODE_ENV === "production" ? "production" : "embedded",
      keepSettingsFrom: old,
      force: true,
      skipDatabaseCheck: true,
    },
  );
  if (oldConfig) {
    await copyFile(oldConfig, homePaths(deployment.nodeHome).config);
    await rm(oldConfig, { force: true });
  }
  const fresh = readEnv(staging);
  const kept = Object.fromEntries(KEPT_CREDENTIALS.filter((name) => old[name] !== undefined).map((name) => [name, old[name]]));
  const env: Record<string, string> = { ...fresh, ...kept, BACKUP_KEY: old.BACKUP_KEY ?? fresh.BACKUP_KEY };
  // The storage stays what it was: an embedded deployment does not become a PostgreSQL one by being wiped.
  for (const name of ["DATABASE_URL", "REDIS_URL"]) if (old[name] === undefined) delete env[name];
  if (old.DATABASE_URL && env.DATABASE_URL && env.DATABASE_URL !== old.DATABASE_URL) {
    const password = decodeURIComponent(new URL(env.DATABASE_URL).password);
    const client = new pg.Client({ connectionString: old.DATABASE_URL, connectionTimeoutMillis: 5000 });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.query(`alter role current_user with password '${scramVerifier(password)}'`);
    } finally {
      await client.end().catch(() => {});
    }
    progress.note(
      `role ${decodeURIComponent(new URL(env.DATABASE_URL).username)}: password changed to the new POSTGRES_PASSWORD (fingerprint ${fingerprint(password)})`,
    );
  }
  await writeSettings(staging, env);
  await syncSecretsFile(created.secretsFile, env);
  await rename(staging, deployment.envFile);
  progress.note(
    `new chain ${created.chainId}; wallet ${created.walletAddress}; BACKUP_KEY kept (fingerprint ${fingerprint(env.BACKUP_KEY)})`,
  );
  return { env, secretsFile: created.secretsFile, walletFile: created.walletFile };
}

async function writeSettings(path: string, env: Record<string, string>): Promise<void> {
  const lines = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  await writeFileAtomic(path, `# DAON deployment settings, written by daon wipe-and-reset\n${lines.join("\n")}\n`);
}

/** The vault file says what `.env` says for every secret it lists (the kept ones included). */
async function syncSecretsFile(path: string, env: Record<string, string>): Promise<void> {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .map((line) => {
      const name = /^([A-Z_][A-Z0-9_]*)=/.exec(line)?.[1];
      return name && name !== "CREATED_AT" && env[name] !== undefined ? `${name}=${env[name]}` : line;
    });
  await writeFileAtomic(path, lines.join("\n"));
}

/** `daon wipe-and-reset` (ops.md §6). */
export function registerWipeAndReset(program: Command): void {
  program
    .command("wipe-and-reset")
    .description("back up and verify the current chain, wipe it, and start a new one (launch day)")
    .option("--yes-wipe-production", 'answer "WIPE-PRODUCTION" without the prompt')
    .option("--confirm-chain <id>", "the current chain ID, as the prompt asks for it")
    .option("--new-chain <chain>", "mainnet, test or a chain ID")
    .option("--allow-mainnet-wipe", "allow wiping daon-mainnet-1")
    .option("--dry-run", "show each step and target and check the preconditions; change nothing")
    .option("--with-backup", "with --dry-run: also back up and verify")
    .action(async (options: WipeOptions) => {
      const globals = program.opts();
      const audit = options.dryRun && !options.withBackup ? undefined : auditFor(globals.envFile, { dryRun: Boolean(options.dryRun) });
      await runCommand({ command: "wipe-and-reset", json: Boolean(globals.json), audit }, () =>
        wipeAndReset(openDeployment(globals.envFile), options),
      );
    });
}

async function wipeAndReset(services: DeploymentServices, options: WipeOptions) {
  backupKey(services.env);
  if (!services.endpoints.hasOpsToken)
    throw new UsageError("API_KEY_SECRET is not set in .env: maintenance mode and the embedded snapshot need the API's ops endpoints");
  const prompter = new Prompter();
  try {
    const chain = await currentChain(services);
    if (chain.chainId === "daon-mainnet-1" && !options.allowMainnetWipe) {
      throw new UsageError("the current chain is daon-mainnet-1: wiping it needs --allow-mainnet-wipe");
    }
    process.stderr.write(`${describePlan(services, chain)}\n`);

    if (options.dryRun) return await dryRun(services, chain, options);

    await confirmTyped(prompter, {
      question: 'Type "WIPE-PRODUCTION" to confirm: ',
      expected: "WIPE-PRODUCTION",
      flag: "--yes-wipe-production",
      given: options.yesWipeProduction ? "WIPE-PRODUCTION" : undefined,
    });
    await confirmChainId(prompter, chain.chainId, options.confirmChain);
    const newChainId = await chooseNewChain(prompter, options.newChain);
    prompter.close();
    return await runSteps(services, chain, newChainId);
  } finally {
    prompter.close();
  }
}

async function dryRun(services: DeploymentServices, chain: CurrentChain, options: WipeOptions) {
  const targets = wipeTargets(services);
  const stepTargets = [
    `${services.deployment.stateDir}/run/ops.lock`,
    `${services.endpoints.apiUrl}/internal/ops/maintenance`,
    `${backupsDir(services.deployment.stateDir)}/pre-wipe-<time>`,
    "that set, restored into scratch",
    `${services.controller.kind}: ${services.controller.names.join(", ")}`,
    `${targets.database}; ${targets.ledger}; ${targets.redis}`,
    `${options.newChain ?? "(chosen at the prompt)"}: ${services.deployment.envFile}, ${services.deployment.secretsDir}`,
    "the new database",
    `${services.controller.kind}: ${services.controller.names.join(", ")}`,
    `${services.deployment.stateDir}/run/launch.json`,
  ];
  const lines = STEPS.map((step, i) => `[${i + 1}/10] ${step} → ${stepTargets[i]}`);
  const checks = await checkPreconditions(services);
  lines.push(...checks.map((check) => `${check.ok ? "PASS" : "FAIL"} ${check.line}`));
  let backup: { dir: string; verified: boolean } | undefined;
  if (options.withBackup) {
    const release = await takeOpsLock(services.deployment.stateDir, "wipe-and-reset --dry-run");
    try {
      const { dir } = await takeBackup(services, { kind: "pre-wipe" });
      const report = await verifyBackupSet(dir, { backupKey: backupKey(services.env), scratchDbUrl: postgresAdminUrl(services.env) });
      backup = { dir, verified: report.ok };
      lines.push(`${report.ok ? "PASS" : "FAIL"} backup ${dir} ${report.ok ? "verified" : `failed: ${report.error}`}`);
    } finally {
      await release();
    }
  }
  lines.push("dry run: nothing was changed");
  const ok = checks.every((c) => c.ok) && (backup?.verified ?? true);
  const result = { dryRun: true, chainId: chain.chainId, steps: STEPS, checks, backup: backup ?? null };
  if (!ok) throw new OperationFailed("a precondition failed (see above)", result, lines.join("\n"));
  return { result, human: lines.join("\n") };
}

async function runSteps(services: DeploymentServices, chain: CurrentChain, newChainId: string) {
  const { deployment } = services;
  await privateDir(join(deployment.stateDir, "logs"));
  const logFile = join(deployment.stateDir, "logs", `wipe-${utcStamp()}.log`);
  const progress = new Progress(10, logFile);
  const interruption = new Interruption();
  let release: (() => Promise<void>) | undefined;
  let maintenanceOn = false;
  let backup: { dir: string; manifest: Manifest } | undefined;
  let changing = false;
  try {
    progress.step(1, STEPS[0]);
    release = await takeOpsLock(deployment.stateDir, "wipe-and-reset");
    for (const check of await checkPreconditions(services)) {
      progress.note(`${check.ok ? "ok" : "FAILED"}: ${check.line}`);
      if (!check.ok) throw new OperationFailed(`precondition failed: ${check.line}`);
    }
    interruption.check();

    progress.step(2, STEPS[1]);
    await services.endpoints.maintenance({ enabled: true, reason: `wipe-and-reset of ${chain.chainId}` });
    maintenanceOn = true;
    await drain(services, progress);
    interruption.check();

    progress.step(3, STEPS[2]);
    backup = await takeBackup(services, { kind: "pre-wipe", note: (line) => progress.note(line) });
    progress.note(
      `${backup.dir}: ${backup.manifest.chainId} at height ${backup.manifest.height}, ${backup.manifest.registrations} registrations`,
    );
    interruption.check();

    progress.step(4, STEPS[3]);
    const report = await verifyBackupSet(backup.dir, { backupKey: backupKey(services.env), scratchDbUrl: postgresAdminUrl(services.env) });
    for (const check of report.checks) progress.note(`${check.ok ? "ok" : "FAILED"} ${check.id}: ${check.detail}`);
    if (!report.ok) throw new OperationFailed(`the pre-wipe backup failed its full verify: ${report.error}`);
    interruption.check();

    // From here on the old chain is gone from the live places; only the verified backup holds it.
    changing = true;
    progress.step(5, STEPS[4]);
    await services.controller.stop();

    progress.step(6, STEPS[5]);
    // The node's settings (ports, block times) outlive the chain: kept aside and put into the new home.
    const config = homePaths(deployment.nodeHome).config;
    const keptConfig = existsSync(config) ? join(deployment.stateDir, "run", "wipe-config.toml") : undefined;
    if (keptConfig) await copyFile(config, keptConfig);
    await wipe(services, progress);
    interruption.check();

    progress.step(7, STEPS[6]);
    const created = await initNewChain(services, newChainId, keptConfig, progress);
    const next = withSettings(deployment, created.env);
    interruption.check();

    progress.step(8, STEPS[7]);
    const database = await openDeploymentDatabase(deployment, created.env);
    try {
      const applied = await migrateOpsDatabase(database.db);
      progress.note(`${applied.length} migrations applied`);
    } finally {
      await database.close();
    }
    interruption.check();

    progress.step(9, STEPS[8]);
    await next.controller.start();
    const serving = await waitUntilServing(next, { chainId: newChainId, minHeight: 2, timeoutMs: START_TIMEOUT_MS });
    progress.note(`${serving.chainId} at height ${serving.height}; API ${serving.apiStatus}`);

    progress.step(10, STEPS[9]);
    const launch = {
      chainId: newChainId,
      launchedAt: new Date().toISOString(),
      previousChainId: chain.chainId,
      preWipeBackup: backup.dir,
      by: "wipe-and-reset",
    };
    await privateDir(join(deployment.stateDir, "run"));
    await writeFileAtomic(join(deployment.stateDir, "run", "launch.json"), `${JSON.stringify(launch, null, 2)}\n`);

    const result = {
      previousChainId: chain.chainId,
      chainId: newChainId,
      height: serving.height,
      backup: backup.dir,
      secretsFile: created.secretsFile,
      walletFile: created.walletFile,
      launch: join(deployment.stateDir, "run", "launch.json"),
      log: logFile,
    };
    const human = [
      "",
      `WIPE AND RESET COMPLETE: new chain ${newChainId} (height ${serving.height})`,
      `old state:  ${chain.chainId}, verified in ${backup.dir} (\`daon rollback\` restores it within 1 h)`,
      "Save the new secrets to your vault NOW:",
      `  cat ${created.secretsFile}`,
      `  cat ${created.walletFile}`,
      "ACTION REQUIRED:",
      "  1. Copy both files above into the vault (1Password) before anything else.",
      `  2. Update GitHub Secrets: POSTGRES_PASSWORD, API_KEY_SECRET, API_MNEMONIC (from those files), CHAIN_ID=${newChainId}.`,
      "  3. Run ./scripts/operations/pre-launch-check.sh",
    ].join("\n");
    return { result, human };
  } catch (error) {
    const message = (error as Error).message;
    if (!changing) {
      if (maintenanceOn) await services.endpoints.maintenance({ enabled: false }).catch(() => {});
      throw new OperationFailed(`${message}; ${maintenanceOn ? "maintenance lifted, " : ""}nothing changed`, {
        backup: backup?.dir ?? null,
        changed: false,
      });
    }
    await withSettings(deployment, readEnv(deployment.envFile))
      .controller.stop()
      .catch(() => {});
    const hint = backup ? `old state verified in ${backup.dir}: run \`daon rollback --from ${backup.dir}\`` : "";
    throw new OperationFailed(`${message}\n${hint}`, { backup: backup?.dir ?? null, changed: true });
  } finally {
    interruption.dispose();
    await release?.();
  }
}
