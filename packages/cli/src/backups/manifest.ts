import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@daon/chain";

export const BACKUP_KINDS = ["scheduled", "manual", "pre-wipe", "pre-rollback", "pre-deploy", "pre-restore"] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

export const DATABASE_FILES = { postgresql: "database.sql.gz", pglite: "database.pglite.tar.gz" } as const;
export const LEDGER_FILE = "blockchain-data.tar.gz";
export const ENV_FILE = "env.enc";
export const SECRETS_FILE = "secrets.tar.enc";
/** Plaintext `.env` of `pre-wipe` and `pre-rollback` sets: what the runbook restores with `cp`. */
export const PLAIN_ENV_FILE = "env-backup";
export const SUMS_FILE = "SHA256SUMS";
export const MANIFEST_FILE = "manifest.json";
export const VERIFY_FILE = "verify.json";

export interface FileRecord {
  bytes: number;
  sha256: string;
}

/** `manifest.json` (ops.md §5): what the set holds, and how to tell it is whole. */
export interface Manifest {
  format: "daon-backup-1";
  name: string;
  kind: BackupKind;
  /** Kept by retention whatever its age (`--keep`, and every kind but `scheduled`). */
  keep: boolean;
  time: string;
  chainId: string;
  genesisHash: string;
  height: number;
  appHash: string;
  database: {
    engine: "postgresql" | "pglite";
    file: string;
    /** PostgreSQL: the database and schema dumped, and the role the dump's ALTER ROLE sets. */
    name?: string;
    schema?: string;
    role?: string;
  };
  /** Rows of every table, read in the same snapshot as the dump. */
  rows: Record<string, number>;
  registrations: number;
  accounts: number;
  ledger: { file: string; keys: boolean };
  backupKeyFingerprint: string;
  files: Record<string, FileRecord>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export async function describeFile(path: string): Promise<FileRecord> {
  return { bytes: statSync(path).size, sha256: await sha256File(path) };
}

/** Writes `manifest.json` and then `SHA256SUMS` over every file of the set (manifest included), `sha256sum -c` style. */
export async function sealSet(dir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  const lines: string[] = [];
  for (const name of [...Object.keys(manifest.files), MANIFEST_FILE].sort()) lines.push(`${await sha256File(join(dir, name))}  ${name}`);
  await writeFileAtomic(join(dir, SUMS_FILE), `${lines.join("\n")}\n`);
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new Error(`${MANIFEST_FILE} is missing`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  } catch (error) {
    throw new Error(`${MANIFEST_FILE} is not JSON: ${(error as Error).message}`);
  }
  const missing = ["name", "kind", "chainId", "height", "appHash", "database", "rows", "ledger", "files"].filter(
    (field) => (manifest as unknown as Record<string, unknown>)[field] === undefined,
  );
  if (manifest.format !== "daon-backup-1") missing.unshift("format daon-backup-1");
  if (missing.length > 0) throw new Error(`${MANIFEST_FILE} lacks ${missing.join(", ")}`);
  return manifest;
}

export function readSums(dir: string): Map<string, string> {
  const path = join(dir, SUMS_FILE);
  if (!existsSync(path)) throw new Error(`${SUMS_FILE} is missing`);
  const sums = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match) sums.set(match[2], match[1]);
  }
  return sums;
}

/** Complete sets in a backups directory (hidden `.partial-*` and `.failed-*` are not), newest first. */
export function completeSets(backupsDir: string): { name: string; dir: string; manifest: Manifest }[] {
  if (!existsSync(backupsDir)) return [];
  const sets: { name: string; dir: string; manifest: Manifest }[] = [];
  for (const name of readdirSync(backupsDir)) {
    if (name.startsWith(".")) continue;
    try {
      sets.push({ name, dir: join(backupsDir, name), manifest: readManifest(join(backupsDir, name)) });
    } catch {
      // not a backup set (pre-init-* moves, or damaged): not counted and never deleted here
    }
  }
  return sets.sort((a, b) => Date.parse(b.manifest.time) - Date.parse(a.manifest.time));
}
