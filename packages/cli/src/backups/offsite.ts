import { execFile, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { writeFileAtomic } from "@daon/chain";
import * as tar from "tar";
import { sealStream } from "./encryption.js";
import { describeFile, MANIFEST_FILE } from "./manifest.js";

const run = promisify(execFile);

export interface OffsiteRecord {
  ok: boolean;
  copiedAt: string;
  target: "rclone" | "command";
  file: string;
  bytes: number;
  sha256: string;
  error?: string;
}

/**
 * The off-site copy (ops.md §5): the whole set as one `<name>.tar.enc` (under BACKUP_KEY) plus its
 * manifest, sent with rclone (`BACKUP_OFFSITE_RCLONE=remote:path`, size checked after) or a
 * command (`BACKUP_OFFSITE_COMMAND`, given DAON_OFFSITE_FILE, DAON_OFFSITE_NAME,
 * DAON_OFFSITE_MANIFEST, DAON_OFFSITE_SHA256). The result is written to the set's `offsite.json`.
 */
export async function copyOffsite(setDir: string, env: Record<string, string>, backupKey: string): Promise<OffsiteRecord | undefined> {
  const target = env.BACKUP_OFFSITE_RCLONE ? "rclone" : env.BACKUP_OFFSITE_COMMAND ? "command" : undefined;
  if (!target) return undefined;
  const name = `${basename(setDir)}.tar.enc`;
  const file = join(dirname(setDir), `.offsite-${name}`);
  let record: OffsiteRecord = { ok: false, copiedAt: new Date().toISOString(), target, file: name, bytes: 0, sha256: "" };
  try {
    const archive = tar.c({ cwd: dirname(setDir), portable: true }, [basename(setDir)]);
    await pipeline(sealStream(backupKey, archive as AsyncIterable<Uint8Array>), createWriteStream(file, { mode: 0o600 }));
    const described = await describeFile(file);
    record = { ...record, ...described };
    if (target === "rclone") {
      const remote = env.BACKUP_OFFSITE_RCLONE.replace(/\/$/, "");
      await run("rclone", ["copyto", file, `${remote}/${name}`], { timeout: 4 * 3600_000 });
      await run("rclone", ["copyto", join(setDir, MANIFEST_FILE), `${remote}/${basename(setDir)}.manifest.json`], { timeout: 600_000 });
      const { stdout } = await run("rclone", ["lsjson", `${remote}/${name}`], { timeout: 600_000 });
      const listed = (JSON.parse(stdout) as { Size: number }[])[0];
      if (listed?.Size !== described.bytes) throw new Error(`the remote copy has ${listed?.Size ?? "no"} bytes, not ${described.bytes}`);
    } else {
      await new Promise<void>((resolve, reject) => {
        const child = spawn("sh", ["-c", env.BACKUP_OFFSITE_COMMAND], {
          stdio: ["ignore", "ignore", "pipe"],
          env: {
            ...process.env,
            DAON_OFFSITE_FILE: file,
            DAON_OFFSITE_NAME: name,
            DAON_OFFSITE_MANIFEST: join(setDir, MANIFEST_FILE),
            DAON_OFFSITE_SHA256: described.sha256,
          },
        });
        let stderr = "";
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("error", reject);
        child.on("close", (code) =>
          code === 0 ? resolve() : reject(new Error(`BACKUP_OFFSITE_COMMAND exited ${code}: ${stderr.trim().slice(-200)}`)),
        );
      });
    }
    record.ok = true;
  } catch (error) {
    record.error = (error as Error).message;
  } finally {
    await rm(file, { force: true });
  }
  await writeFileAtomic(join(setDir, "offsite.json"), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}
