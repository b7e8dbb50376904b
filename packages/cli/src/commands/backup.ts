import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "@daon/chain";
import { type Command, Option } from "commander";
import { backupKey, backupsDir, createBackupSet, formatBytes, hideFailedSet, setBytes } from "../backups/backup-set.js";
import { BACKUP_KINDS, type BackupKind, completeSets, type Manifest } from "../backups/manifest.js";
import { copyOffsite } from "../backups/offsite.js";
import { applyRetention } from "../backups/retention.js";
import { postgresAdminUrl, type VerifyReport, verifyBackupSet } from "../backups/verify.js";
import { deploymentPaths, privateDir, UsageError } from "../deployment.js";
import { takeOpsLock } from "../rotation/ops-lock.js";
import { type DeploymentServices, openDeployment } from "../services/deployment-services.js";
import { OperationFailed, runCommand } from "../services/operation.js";

/**
 * A backup set that passed its quick verify (ops.md §5): written, verified, else hidden as
 * `.failed-<name>` (exit 1); retention runs after it, and metrics/daon_backup.prom says so.
 */
export async function takeBackup(
  services: DeploymentServices,
  options: { kind: BackupKind; keep?: boolean; note?: (line: string) => void },
): Promise<{ dir: string; manifest: Manifest; removed: string[] }> {
  const started = Date.now();
  try {
    const { dir, manifest } = await createBackupSet(services, options);
    const quick = await verifyBackupSet(dir, { quick: true, backupKey: backupKey(services.env) });
    if (!quick.ok) {
      const failed = await hideFailedSet(dir, manifest.name);
      throw new OperationFailed(`backup ${manifest.name} failed its quick verify (${quick.error}); hidden as ${failed}`, {
        failedSet: failed,
      });
    }
    const removed = await applyRetention(backupsDir(services.deployment.stateDir));
    await writeBackupMetrics(services.deployment.stateDir, { ok: true, bytes: setBytes(manifest), seconds: (Date.now() - started) / 1000 });
    return { dir, manifest, removed };
  } catch (error) {
    await writeBackupMetrics(services.deployment.stateDir, { ok: false, bytes: 0, seconds: (Date.now() - started) / 1000 }).catch(() => {});
    throw error;
  }
}

/** `metrics/daon_backup.prom` for node-exporter's textfile collector (DaonBackupStale); a failure keeps the last success time. */
async function writeBackupMetrics(stateDir: string, run: { ok: boolean; bytes: number; seconds: number }): Promise<void> {
  const path = join(stateDir, "metrics", "daon_backup.prom");
  const now = Math.floor(Date.now() / 1000);
  const previous = existsSync(path)
    ? /^daon_backup_last_success_timestamp_seconds (\d+)/m.exec(readFileSync(path, "utf8"))?.[1]
    : undefined;
  const lastSuccess = run.ok ? String(now) : previous;
  const gauge = (name: string, help: string, value: string | number) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`;
  await privateDir(join(stateDir, "metrics"));
  await writeFileAtomic(
    path,
    [
      lastSuccess === undefined
        ? ""
        : gauge("daon_backup_last_success_timestamp_seconds", "Unix time of the last backup that passed its quick verify.", lastSuccess),
      gauge("daon_backup_last_run_timestamp_seconds", "Unix time of the last backup run.", now),
      gauge("daon_backup_last_run_success", "1 if the last backup run succeeded, else 0.", run.ok ? 1 : 0),
      run.ok ? gauge("daon_backup_last_size_bytes", "Bytes of the last good backup set.", run.bytes) : "",
      gauge("daon_backup_last_duration_seconds", "How long the last backup run took.", run.seconds.toFixed(1)),
    ].join(""),
    0o644,
  );
}

function describeVerify(report: VerifyReport): string {
  return [
    ...report.checks.map((check) => `${check.ok ? "PASS" : "FAIL"} ${check.id}: ${check.detail}`),
    `${report.ok ? "VERIFIED" : "FAILED"} ${report.dir} (${report.mode})`,
  ].join("\n");
}

/** `daon backup` and `daon backup verify`. */
export function registerBackup(program: Command): void {
  const backup = program
    .command("backup")
    .description("write a backup set (database, ledger, encrypted settings and secrets) under <state>/backups/")
    .addOption(new Option("--kind <kind>", "what the set is for").choices([...BACKUP_KINDS]).default("manual"))
    .option("--keep", "retention never removes this set")
    .option("--no-offsite", "skip the off-site copy")
    .action(async (options: { kind: BackupKind; keep?: boolean; offsite: boolean }) => {
      const globals = program.opts();
      const audit = auditFor(globals.envFile, { kind: options.kind });
      await runCommand({ command: "backup", json: Boolean(globals.json), audit }, async () => {
        const services = openDeployment(globals.envFile);
        const { stateDir } = services.deployment;
        const key = backupKey(services.env);
        const release = await takeOpsLock(stateDir, "backup");
        try {
          const note = (line: string) => process.stderr.write(`  ${line}\n`);
          const { dir, manifest, removed } = await takeBackup(services, { kind: options.kind, keep: options.keep, note });
          const offsite = options.offsite ? await copyOffsite(dir, services.env, key) : undefined;
          const result = {
            dir,
            name: manifest.name,
            kind: manifest.kind,
            chainId: manifest.chainId,
            height: manifest.height,
            appHash: manifest.appHash,
            registrations: manifest.registrations,
            bytes: setBytes(manifest),
            removed,
            offsite: offsite ?? null,
          };
          const human = [
            `backup set:   ${dir}`,
            `chain:        ${manifest.chainId} at height ${manifest.height} (app hash ${manifest.appHash})`,
            `database:     ${manifest.database.engine}, ${manifest.registrations} registrations, ${Object.keys(manifest.rows).length} tables`,
            `size:         ${formatBytes(setBytes(manifest))}; quick verify passed`,
            ...(removed.length > 0 ? [`retention removed: ${removed.join(", ")}`] : []),
            offsite
              ? `off-site:     ${offsite.ok ? `copied (${offsite.target})` : `FAILED: ${offsite.error}`}`
              : "off-site:     not configured or skipped",
          ].join("\n");
          if (offsite && !offsite.ok) throw new OperationFailed(`the off-site copy failed: ${offsite.error}`, result, human);
          return { result, human };
        } finally {
          await release();
        }
      });
    });

  backup
    .command("verify [dir]")
    .description("check a backup set: quick (hashes, archives, decryption) or full (restore into scratch, rows and app hash)")
    .option("--latest", "the newest complete set")
    .option("--quick", "no scratch restore")
    .option("--scratch-db-url <url>", "PostgreSQL server (superuser) for the scratch restore (default: DATABASE_URL's server)")
    .option("--backup-key-file <file>", "BACKUP_KEY from this file instead of .env")
    .action(
      async (
        dirArgument: string | undefined,
        options: { latest?: boolean; quick?: boolean; scratchDbUrl?: string; backupKeyFile?: string },
      ) => {
        const globals = program.opts();
        await runCommand({ command: "backup verify", json: Boolean(globals.json) }, async () => {
          const services = openDeployment(globals.envFile);
          const key = options.backupKeyFile ? readKeyFile(options.backupKeyFile) : backupKey(services.env);
          let dir = dirArgument ? resolve(dirArgument) : undefined;
          if (!dir && options.latest) dir = completeSets(backupsDir(services.deployment.stateDir))[0]?.dir;
          if (!dir)
            throw new UsageError(dirArgument || options.latest ? "no backup set found" : "name a backup set directory, or --latest");
          const report = await verifyBackupSet(dir, {
            quick: options.quick,
            backupKey: key,
            scratchDbUrl: postgresAdminUrl(services.env, options.scratchDbUrl),
          });
          const result = { report };
          if (!report.ok) throw new OperationFailed(`${dir} failed verification: ${report.error}`, result, describeVerify(report));
          return { result, human: describeVerify(report) };
        });
      },
    );
}

/** Where a mutating command's audit line goes: only for a deployment that exists (no stray ./data for a wrong --env-file). */
export function auditFor(
  envFile: string,
  details: Record<string, unknown>,
): { stateDir: string; details: Record<string, unknown> } | undefined {
  const deployment = deploymentPaths({ envFile });
  return existsSync(deployment.envFile) ? { stateDir: deployment.stateDir, details } : undefined;
}

export function readKeyFile(path: string): string {
  if (!existsSync(path)) throw new UsageError(`--backup-key-file: ${path} does not exist`);
  const text = readFileSync(path, "utf8").trim();
  return /^BACKUP_KEY=/m.test(text) ? (/^BACKUP_KEY=(.*)$/m.exec(text)?.[1] ?? "").trim() : text;
}
