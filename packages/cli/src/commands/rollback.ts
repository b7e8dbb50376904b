import { existsSync, readFileSync } from "node:fs";
import { rename } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { homePaths, parseDuration } from "@daon/chain";
import type { Command } from "commander";
import { backupKey, backupsDir } from "../backups/backup-set.js";
import { completeSets, type Manifest, readManifest } from "../backups/manifest.js";
import { readSetEnv, restorePreconditions } from "../backups/restore.js";
import { postgresAdminUrl, verifyBackupSet } from "../backups/verify.js";
import { privateDir, UsageError } from "../deployment.js";
import { takeOpsLock } from "../rotation/ops-lock.js";
import {
  type CurrentChain,
  currentChain,
  type DeploymentServices,
  genesisTime,
  openDeployment,
  withSettings,
} from "../services/deployment-services.js";
import {
  confirmChainId,
  confirmTyped,
  Interruption,
  OperationFailed,
  Progress,
  Prompter,
  runCommand,
  utcStamp,
} from "../services/operation.js";
import { flushRedisDb, redisDbIndex } from "../services/redis-flush.js";
import { auditFor, takeBackup } from "./backup.js";
import { checkRestored, describeSet, restoreInPlace } from "./restore.js";

interface RollbackOptions {
  from?: string;
  yesRollback?: boolean;
  confirmChain?: string;
  maxAge: string;
  forceLate?: boolean;
  yesRollbackLate?: boolean;
  dryRun?: boolean;
}

const STEPS = [
  "quick verify of the pre-wipe set",
  "maintenance on (writes 503, reads served)",
  "pre-rollback backup, fully verified (the rollback can be undone)",
  "stop services",
  "restore database, ledger, .env (env-backup), secrets, role password",
  "FLUSHDB",
  "start",
  "check node network, height, app hash, registrations",
];

/** When the current chain launched: `run/launch.json` when it names this chain, else its genesis time. */
function launchTime(services: DeploymentServices, chainId: string): Date | undefined {
  const path = join(services.deployment.stateDir, "run", "launch.json");
  if (existsSync(path)) {
    try {
      const launch = JSON.parse(readFileSync(path, "utf8")) as { chainId?: string; launchedAt?: string };
      if (launch.chainId === chainId && launch.launchedAt) return new Date(launch.launchedAt);
    } catch {}
  }
  return genesisTime(services.deployment.nodeHome);
}

function findSet(services: DeploymentServices, from: string | undefined): { dir: string; manifest: Manifest } {
  if (from) {
    const dir = resolve(from);
    if (!existsSync(dir)) throw new UsageError(`no backup set at ${dir}`);
    try {
      return { dir, manifest: readManifest(dir) };
    } catch (error) {
      throw new OperationFailed(`${dir} is not a usable backup set: ${(error as Error).message}`);
    }
  }
  const newest = completeSets(backupsDir(services.deployment.stateDir)).find((set) => set.manifest.kind === "pre-wipe");
  if (!newest) throw new UsageError(`no pre-wipe backup in ${backupsDir(services.deployment.stateDir)}: name one with --from`);
  return newest;
}

/** `daon rollback` (ops.md §7). */
export function registerRollback(program: Command): void {
  program
    .command("rollback")
    .description("within 1 h of a launch: restore the newest pre-wipe backup (the previous chain), after backing up the current one")
    .option("--from <dir>", "the set to restore (default: the newest pre-wipe-*)")
    .option("--yes-rollback", 'answer "ROLLBACK-PRODUCTION" without the prompt')
    .option("--confirm-chain <id>", "the current chain ID, as the prompt asks for it")
    .option("--max-age <duration>", "refuse when the current chain launched longer ago (fix forward)", "1h")
    .option("--force-late", "roll back a chain older than --max-age (asks a second typed confirmation)")
    .option("--yes-rollback-late", 'answer "ROLLBACK-LATE" without the prompt (with --force-late)')
    .option("--dry-run", "show the plan and check the set; change nothing")
    .action(async (options: RollbackOptions) => {
      const globals = program.opts();
      const audit = options.dryRun ? undefined : auditFor(globals.envFile, { from: options.from ?? "newest pre-wipe" });
      await runCommand({ command: "rollback", json: Boolean(globals.json), audit }, () =>
        rollback(openDeployment(globals.envFile), options),
      );
    });
}

async function rollback(services: DeploymentServices, options: RollbackOptions) {
  const { deployment } = services;
  const key = backupKey(services.env);
  let maxAgeMs: number;
  try {
    maxAgeMs = parseDuration(options.maxAge);
  } catch {
    throw new UsageError(`--max-age ${JSON.stringify(options.maxAge)} is not a duration like 1h, 90m or 30s`);
  }
  const { dir, manifest } = findSet(services, options.from);
  const chain = await currentChain(services);
  restorePreconditions(deployment, readSetEnv(dir, key, { plain: true }).env, manifest);
  const launched = launchTime(services, chain.chainId);
  const ageMs = launched ? Date.now() - launched.getTime() : 0;
  const age = launched ? `launched ${Math.round(ageMs / 60_000)} min ago` : "launch time unknown";
  process.stderr.write(
    [
      `DAON rollback on ${hostname()}`,
      `  current chain:  ${chain.chainId} (${age}; height ${chain.height ?? "?"}, ${chain.registrations ?? "?"} registrations): backed up as pre-rollback, then DESTROYED`,
      `  restored:       ${describeSet(dir, manifest)}`,
      "  then:           revert GitHub Secrets to the previous chain's values, and notify users",
      "",
    ].join("\n"),
  );
  const late = ageMs > maxAgeMs;
  if (late && !options.forceLate) {
    throw new UsageError(
      `the current chain ${chain.chainId} launched ${Math.round(ageMs / 60_000)} min ago, over --max-age ${options.maxAge}: its state has diverged, fix forward instead (or --force-late)`,
    );
  }
  if (options.dryRun) {
    const report = await verifyBackupSet(dir, { quick: true, backupKey: key, record: false });
    const human = [
      ...STEPS.map((step, i) => `[${i + 1}/${STEPS.length}] ${step}`),
      ...report.checks.map((check) => `${check.ok ? "PASS" : "FAIL"} ${check.id}: ${check.detail}`),
      "dry run: nothing was changed",
    ].join("\n");
    const result = { dryRun: true, from: dir, currentChainId: chain.chainId, chainId: manifest.chainId };
    if (!report.ok) throw new OperationFailed(`the set fails its quick verify: ${report.error}`, result, human);
    return { result, human };
  }

  const prompter = new Prompter();
  try {
    await confirmTyped(prompter, {
      question: 'Type "ROLLBACK-PRODUCTION" to confirm: ',
      expected: "ROLLBACK-PRODUCTION",
      flag: "--yes-rollback",
      given: options.yesRollback ? "ROLLBACK-PRODUCTION" : undefined,
    });
    await confirmChainId(prompter, chain.chainId, options.confirmChain);
    if (late) {
      await confirmTyped(prompter, {
        question: `${chain.chainId} is past --max-age ${options.maxAge}. Type "ROLLBACK-LATE" to confirm: `,
        expected: "ROLLBACK-LATE",
        flag: "--yes-rollback-late",
        given: options.yesRollbackLate ? "ROLLBACK-LATE" : undefined,
      });
    }
  } finally {
    prompter.close();
  }
  return runSteps(services, chain, dir, manifest, key);
}

async function runSteps(services: DeploymentServices, chain: CurrentChain, dir: string, manifest: Manifest, key: string) {
  const { deployment, endpoints } = services;
  await privateDir(join(deployment.stateDir, "logs"));
  const logFile = join(deployment.stateDir, "logs", `rollback-${utcStamp()}.log`);
  const progress = new Progress(STEPS.length, logFile);
  const interruption = new Interruption();
  const release = await takeOpsLock(deployment.stateDir, "rollback");
  let maintenanceOn = false;
  let safety: string | undefined;
  let changing = false;
  try {
    progress.step(1, STEPS[0]);
    const quick = await verifyBackupSet(dir, { quick: true, backupKey: key });
    if (!quick.ok) throw new OperationFailed(`${dir} failed its quick verify: ${quick.error}`);
    interruption.check();

    progress.step(2, STEPS[1]);
    if (await endpoints.health()) {
      await endpoints.maintenance({ enabled: true, reason: `rollback to ${manifest.chainId}` });
      maintenanceOn = true;
    } else progress.note("the API does not answer: no writes to hold off");
    interruption.check();

    progress.step(3, STEPS[2]);
    // A chain that never committed a block (a wipe that stopped before its start) has nothing to keep.
    if (existsSync(homePaths(deployment.nodeHome).ledgerDb)) {
      const taken = await takeBackup(services, { kind: "pre-rollback", note: (line) => progress.note(line) });
      const report = await verifyBackupSet(taken.dir, { backupKey: key, scratchDbUrl: postgresAdminUrl(services.env) });
      if (!report.ok) throw new OperationFailed(`the pre-rollback backup failed its full verify: ${report.error}`);
      safety = taken.dir;
      progress.note(`${chain.chainId} is kept, verified, in ${safety}`);
    } else progress.note("nothing to back up: the current chain never committed a block (a wipe stopped part-way)");
    interruption.check();

    changing = true;
    progress.step(4, STEPS[3]);
    await services.controller.stop();

    progress.step(5, STEPS[4]);
    const restored = await restoreInPlace(services, dir, manifest, key, { plainEnv: true, progress });
    const next = withSettings(deployment, restored);

    progress.step(6, STEPS[5]);
    if (restored.REDIS_URL) {
      await flushRedisDb(restored.REDIS_URL);
      progress.note(`Redis DB ${redisDbIndex(restored.REDIS_URL)} flushed`);
    } else progress.note("no Redis");

    progress.step(7, STEPS[6]);
    await next.controller.start();

    progress.step(8, STEPS[7]);
    const { height } = await checkRestored(next, manifest, progress);
    const launch = join(deployment.stateDir, "run", "launch.json");
    if (existsSync(launch))
      await rename(launch, join(deployment.stateDir, "run", `launch-${chain.chainId}-rolled-back-${utcStamp()}.json`));

    const result = {
      rolledBackChainId: chain.chainId,
      chainId: manifest.chainId,
      height,
      from: dir,
      preRollbackBackup: safety ?? null,
      log: logFile,
    };
    const human = [
      "",
      `ROLLBACK COMPLETE: ${manifest.chainId} is back at height ${height} with its ${manifest.registrations} registrations`,
      safety ? `the rolled-back chain ${chain.chainId} is kept in ${safety}` : "",
      "Then:",
      `  1. Revert GitHub Secrets (CHAIN_ID=${manifest.chainId}, POSTGRES_PASSWORD, API_KEY_SECRET, API_MNEMONIC) to the values in`,
      `     ${join(deployment.secretsDir, `secrets-${manifest.chainId}.env`)} and ${join(deployment.secretsDir, `api-wallet-${manifest.chainId}.txt`)}`,
      '  2. Notify users: "We\'ve rolled back to resolve issues. Investigating."',
    ]
      .filter((line) => line !== "")
      .join("\n");
    return { result, human };
  } catch (error) {
    const message = (error as Error).message;
    if (!changing) {
      if (maintenanceOn) await endpoints.maintenance({ enabled: false }).catch(() => {});
      throw new OperationFailed(`${message}; ${maintenanceOn ? "maintenance lifted, " : ""}nothing changed`, { changed: false });
    }
    const hint = safety ? `\nthe state before the rollback is verified in ${safety}: \`daon restore ${safety}\` brings it back` : "";
    throw new OperationFailed(`${message}${hint}`, { changed: true, preRollbackBackup: safety ?? null });
  } finally {
    interruption.dispose();
    await release();
  }
}
