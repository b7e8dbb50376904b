import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Check, fail, formatBytes, pass, warn } from "./context.js";

const run = promisify(execFile);
const STALE_MS = 26 * 3600 * 1000;

export interface BackupSet {
  dir: string;
  name: string;
  time: Date;
  bytes: number;
  manifest: Record<string, unknown>;
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** A record of a verify or off-site copy counts as good when it says so in any of the usual ways. */
function succeeded(record: Record<string, unknown>): boolean {
  return (
    record.ok === true || record.passed === true || ["ok", "pass", "passed", "success"].includes(String(record.result ?? record.status))
  );
}

function recordTime(record: Record<string, unknown>, path: string): Date {
  const given = record.finishedAt ?? record.at ?? record.time ?? record.verifiedAt ?? record.copiedAt;
  return typeof given === "string" && !Number.isNaN(Date.parse(given)) ? new Date(given) : statSync(path).mtime;
}

/** Complete backup sets (a manifest, not `.partial` or `.failed-`), newest first. */
export function backupSets(stateDir: string): BackupSet[] {
  const dir = join(stateDir, "backups");
  if (!existsSync(dir)) return [];
  const sets: BackupSet[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const setDir = join(dir, name);
    const manifest = readJson(join(setDir, "manifest.json"));
    if (!manifest) continue;
    const bytes = readdirSync(setDir).reduce(
      (sum, file) => sum + (statSync(join(setDir, file)).isFile() ? statSync(join(setDir, file)).size : 0),
      0,
    );
    sets.push({ dir: setDir, name, time: recordTime(manifest, join(setDir, "manifest.json")), bytes, manifest });
  }
  return sets.sort((a, b) => b.time.getTime() - a.time.getTime());
}

export function newestBackup(stateDir: string): BackupSet | undefined {
  return backupSets(stateDir)[0];
}

const hoursAgo = (time: Date) => `${((Date.now() - time.getTime()) / 3_600_000).toFixed(1)} h ago`;

export const backupChecks: Check[] = [
  {
    number: 20,
    id: "backup.recent",
    async run({ deployment }) {
      const newest = newestBackup(deployment.stateDir);
      if (!newest) return fail(`no backup in ${join(deployment.stateDir, "backups")}: run daon backup`);
      const measured = `${newest.name}, ${hoursAgo(newest.time)}, ${formatBytes(newest.bytes)}`;
      return Date.now() - newest.time.getTime() > STALE_MS ? fail(`${measured}: older than 26 h`) : pass(measured);
    },
  },
  {
    number: 21,
    id: "backup.restorable",
    timeoutSeconds: 900,
    async run(context) {
      const newest = newestBackup(context.deployment.stateDir);
      if (!newest) return fail("no backup to verify");
      const verifyPath = join(newest.dir, "verify.json");
      const earlier = readJson(verifyPath);
      if (earlier && recordTime(earlier, verifyPath) >= newest.time) {
        return succeeded(earlier)
          ? pass(`${newest.name} verified ${hoursAgo(recordTime(earlier, verifyPath))} (verify.json)`)
          : fail(`${newest.name} failed its verify: ${String(earlier.error ?? earlier.reason ?? "see verify.json")}`);
      }
      if (context.options.quick) return warn(`${newest.name} not verified yet; restore test skipped (--quick)`);
      try {
        await run(process.execPath, [process.argv[1], "--env-file", context.deployment.envFile, "backup", "verify", newest.dir], {
          timeout: 880_000,
          maxBuffer: 64 << 20,
        });
        return pass(`${newest.name} restored into scratch and verified (daon backup verify)`);
      } catch (error) {
        const stderr = String((error as { stderr?: string }).stderr ?? "");
        if (/unknown command/.test(stderr)) return warn("cannot verify: this build has no daon backup verify");
        return fail(
          `${newest.name} fails daon backup verify: ${stderr.trim().split("\n").pop()?.slice(0, 160) ?? (error as Error).message}`,
        );
      }
    },
  },
  {
    number: 22,
    id: "backup.offsite",
    async run({ env, deployment, production }) {
      const target = env.BACKUP_OFFSITE_RCLONE ?? env.BACKUP_OFFSITE_COMMAND;
      if (!target) {
        const reason = "no off-site target (BACKUP_OFFSITE_RCLONE or BACKUP_OFFSITE_COMMAND)";
        return production ? fail(reason) : warn(`${reason}; embedded profile`);
      }
      const copied = backupSets(deployment.stateDir)
        .map((set) => ({ set, record: readJson(join(set.dir, "offsite.json")) }))
        .find((entry) => entry.record);
      if (!copied?.record) return fail("an off-site target is set but no backup was copied yet");
      const time = recordTime(copied.record, join(copied.set.dir, "offsite.json"));
      if (!succeeded(copied.record))
        return fail(`the last off-site copy (${copied.set.name}) failed: ${String(copied.record.error ?? "see offsite.json")}`);
      const measured = `${copied.set.name} copied ${hoursAgo(time)}`;
      return Date.now() - time.getTime() > STALE_MS ? warn(`${measured}: older than 26 h`) : pass(measured);
    },
  },
];
