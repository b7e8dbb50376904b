import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { homePaths } from "@daon/chain";
import type { Command } from "commander";
import { backupKey } from "../backups/backup-set.js";
import { openWithBackupKey } from "../backups/encryption.js";
import { ENV_FILE, type Manifest, readManifest } from "../backups/manifest.js";
import {
  readSetEnv,
  reconcileRestored,
  restoreDatabase,
  restoreLedger,
  restorePreconditions,
  restoreSettings,
} from "../backups/restore.js";
import { postgresAdminUrl, verifyBackupSet } from "../backups/verify.js";
import { deploymentPaths, privateDir, UsageError } from "../deployment.js";
import { takeOpsLock } from "../rotation/ops-lock.js";
import { type CurrentChain, currentChain, type DeploymentServices, openDeployment, withSettings } from "../services/deployment-services.js";
import { confirmChainId, confirmTyped, OperationFailed, Progress, Prompter, runCommand, utcStamp } from "../services/operation.js";
import { waitUntilServing } from "../services/readiness.js";
import { auditFor, readKeyFile, takeBackup } from "./backup.js";

const START_TIMEOUT_MS = 300_000;

/**
 * Puts a set in place of the deployment's state (services stopped): database (the dump's role
 * password included), ledger home, `.env` and secrets; then migrates and reconciles the database
 * with the restored ledger. Maintenance stays on until the checks pass when the restored settings
 * let the tool lift it. Returns the restored settings.
 */
export async function restoreInPlace(
  services: DeploymentServices,
  dir: string,
  manifest: Manifest,
  key: string,
  options: { plainEnv: boolean; progress: Progress },
): Promise<Record<string, string>> {
  const { deployment, env } = services;
  const set = readSetEnv(dir, key, { plain: options.plainEnv });
  await restoreDatabase(deployment, { current: env, set: set.env }, dir, manifest);
  options.progress.note(
    `database restored (${manifest.database.engine}, ${manifest.registrations} registrations; rows as in the manifest)`,
  );
  await restoreLedger(deployment, dir, manifest);
  options.progress.note(`ledger home restored: ${manifest.chainId} at height ${manifest.height}, app hash ${manifest.appHash}`);
  await restoreSettings(deployment, dir, key, set.text);
  const restored = set.env;
  options.progress.note(`${deployment.envFile} and ${deployment.secretsDir} restored`);
  const reconciled = await reconcileRestored(deployment, restored, manifest.height, { maintenance: Boolean(restored.API_KEY_SECRET) });
  options.progress.note(
    `database reconciled: ${reconciled.migrations.length} migrations, ${reconciled.requeued} registration(s) back in the outbox, indexer at ${reconciled.indexedHeight}`,
  );
  return restored;
}

/**
 * After a restore, the services must show the set (ops.md §5, §7): the node runs its chain from
 * at least its height with its app hash there, the API answers with its registrations; then
 * maintenance is lifted.
 */
export async function checkRestored(next: DeploymentServices, manifest: Manifest, progress: Progress): Promise<{ height: number }> {
  const serving = await waitUntilServing(next, { chainId: manifest.chainId, minHeight: manifest.height + 1, timeoutMs: START_TIMEOUT_MS });
  const appHash = await next.endpoints.headerAppHash(manifest.height + 1);
  if (appHash !== manifest.appHash) {
    throw new OperationFailed(`block ${manifest.height + 1} carries app hash ${appHash}, the backup's state hashes to ${manifest.appHash}`);
  }
  const stats = await next.endpoints.stats();
  if (stats?.totalProtected !== manifest.registrations) {
    throw new OperationFailed(
      `/api/v1/stats shows ${stats?.totalProtected ?? "nothing"} registrations, the backup holds ${manifest.registrations}`,
    );
  }
  progress.note(
    `node ${serving.chainId} at height ${serving.height}; app hash at ${manifest.height} as backed up; ${stats.totalProtected} registrations`,
  );
  if (next.endpoints.hasOpsToken) await next.endpoints.maintenance({ enabled: false });
  return { height: serving.height };
}

export function describeSet(dir: string, manifest: Manifest): string {
  return `${dir}: ${manifest.kind} set of ${manifest.chainId} at height ${manifest.height}, ${manifest.registrations} registrations, taken ${manifest.time}`;
}

interface RestoreOptions {
  backupKeyFile?: string;
  confirmChain?: string;
  yesRestore?: boolean;
  dryRun?: boolean;
}

/** `daon restore DIR` (ops.md §5). */
export function registerRestore(program: Command): void {
  program
    .command("restore <dir>")
    .description("restore a backup set: verify it, back up what is there, stop, restore database, ledger, .env and secrets, start, check")
    .option("--backup-key-file <file>", "BACKUP_KEY from this file (a fresh host has no .env yet)")
    .option("--confirm-chain <id>", "the current chain ID, as the prompt asks for it")
    .option("--yes-restore", 'answer "RESTORE" without the prompt')
    .option("--dry-run", "show the plan and check the set and preconditions; change nothing")
    .action(async (dirArgument: string, options: RestoreOptions) => {
      const globals = program.opts();
      const audit = options.dryRun ? undefined : auditFor(globals.envFile, { from: resolve(dirArgument) });
      await runCommand({ command: "restore", json: Boolean(globals.json), audit }, () =>
        restore(globals.envFile, resolve(dirArgument), options),
      );
    });
}

async function restore(envFile: string, dir: string, options: RestoreOptions) {
  if (!existsSync(dir)) throw new UsageError(`no backup set at ${dir}`);
  const fresh = !existsSync(deploymentPaths({ envFile }).envFile);
  let key: string;
  let services: DeploymentServices;
  if (fresh) {
    if (!options.backupKeyFile) throw new UsageError("a fresh host has no .env: pass --backup-key-file with the BACKUP_KEY from the vault");
    key = readKeyFile(options.backupKeyFile);
    const setEnv = parseEnv(openWithBackupKey(key, readFileSync(join(dir, ENV_FILE))).toString("utf8")) as Record<string, string>;
    services = withSettings(deploymentPaths({ envFile, stateDir: setEnv.DAON_STATE_DIR }), setEnv);
  } else {
    services = openDeployment(envFile);
    key = options.backupKeyFile ? readKeyFile(options.backupKeyFile) : backupKey(services.env);
  }
  let manifest: Manifest;
  try {
    manifest = readManifest(dir);
  } catch (error) {
    throw new OperationFailed(`${dir} is not a usable backup set: ${(error as Error).message}`);
  }
  const { deployment } = services;
  const current: CurrentChain | undefined =
    !fresh && existsSync(homePaths(deployment.nodeHome).genesis) ? await currentChain(services) : undefined;
  restorePreconditions(deployment, readSetEnv(dir, key, { plain: false }).env, manifest);
  process.stderr.write(
    [
      "DAON restore",
      `  restoring:  ${describeSet(dir, manifest)}`,
      `  over:       ${current ? `${current.chainId} (height ${current.height ?? "?"}, ${current.registrations ?? "?"} registrations), backed up first as pre-restore` : "nothing (a fresh host)"}`,
      `  replaced:   database, ledger home ${deployment.nodeHome}, ${deployment.envFile}, secrets in ${deployment.secretsDir}`,
      "",
    ].join("\n"),
  );
  const steps = [
    "full verify of the set",
    "pre-restore backup",
    "stop services",
    "restore database, ledger, .env and secrets",
    "start",
    "check chain ID, height, app hash, registrations",
  ];
  if (options.dryRun) {
    const report = await verifyBackupSet(dir, { quick: true, backupKey: key, record: false });
    const human = [
      ...steps.map((step, i) => `[${i + 1}/${steps.length}] ${step}`),
      ...report.checks.map((check) => `${check.ok ? "PASS" : "FAIL"} ${check.id}: ${check.detail}`),
      "dry run: nothing was changed",
    ].join("\n");
    if (!report.ok) throw new OperationFailed(`the set fails its quick verify: ${report.error}`, { dryRun: true }, human);
    return { result: { dryRun: true, from: dir, chainId: manifest.chainId }, human };
  }

  const prompter = new Prompter();
  try {
    await confirmTyped(prompter, {
      question: 'Type "RESTORE" to confirm: ',
      expected: "RESTORE",
      flag: "--yes-restore",
      given: options.yesRestore ? "RESTORE" : undefined,
    });
    if (current) {
      await confirmChainId(prompter, current.chainId, options.confirmChain);
    }
  } finally {
    prompter.close();
  }

  await privateDir(deployment.stateDir);
  const progress = new Progress(steps.length, join(deployment.stateDir, "logs", `restore-${utcStamp()}.log`));
  await privateDir(join(deployment.stateDir, "logs"));
  const release = await takeOpsLock(deployment.stateDir, "restore");
  let safety: string | undefined;
  let changing = false;
  try {
    progress.step(1, steps[0]);
    const report = await verifyBackupSet(dir, { backupKey: key, scratchDbUrl: postgresAdminUrl(services.env) });
    if (!report.ok) throw new OperationFailed(`the set failed its full verify: ${report.error}`);

    progress.step(2, steps[1]);
    if (current) {
      safety = (await takeBackup(services, { kind: "pre-restore", note: (line) => progress.note(line) })).dir;
      progress.note(`the state before the restore is in ${safety}`);
    } else progress.note("nothing to back up (no ledger home yet)");

    changing = true;
    progress.step(3, steps[2]);
    await services.controller.stop();

    progress.step(4, steps[3]);
    const restored = await restoreInPlace(services, dir, manifest, key, { plainEnv: false, progress });
    const next = withSettings(deployment, restored);

    progress.step(5, steps[4]);
    await next.controller.start();

    progress.step(6, steps[5]);
    const { height } = await checkRestored(next, manifest, progress);
    return {
      result: { from: dir, chainId: manifest.chainId, height, registrations: manifest.registrations, preRestoreBackup: safety ?? null },
      human: `RESTORED ${manifest.chainId} from ${dir}: height ${height}, ${manifest.registrations} registrations${safety ? `\nthe state before it: ${safety}` : ""}`,
    };
  } catch (error) {
    const message = (error as Error).message;
    if (!changing) throw new OperationFailed(`${message}; nothing changed`);
    throw new OperationFailed(
      `${message}${safety ? `\nthe state before the restore is in ${safety}: \`daon restore ${safety}\` brings it back` : ""}`,
      {
        preRestoreBackup: safety ?? null,
      },
    );
  } finally {
    await release();
  }
}
