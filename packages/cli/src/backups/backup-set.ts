import { existsSync } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dumpEmbeddedDirectory, fingerprint } from "@daon/api";
import { snapshotLedgerHome } from "@daon/chain";
import { privateDir, UsageError } from "../deployment.js";
import { anyRunning } from "../services/controller.js";
import type { DeploymentServices } from "../services/deployment-services.js";
import { OperationFailed, utcStamp } from "../services/operation.js";
import { tarDirectory, tarToBuffer } from "./archives.js";
import { sealWithBackupKey } from "./encryption.js";
import {
  type BackupKind,
  DATABASE_FILES,
  describeFile,
  ENV_FILE,
  type FileRecord,
  LEDGER_FILE,
  type Manifest,
  PLAIN_ENV_FILE,
  SECRETS_FILE,
  sealSet,
} from "./manifest.js";
import { dumpPostgres } from "./postgres-dump.js";

export function backupsDir(stateDir: string): string {
  return join(stateDir, "backups");
}

/** BACKUP_KEY of `.env`: without it no set can be written or read (exit 2). */
export function backupKey(env: Record<string, string>): string {
  if (!env.BACKUP_KEY) throw new UsageError("BACKUP_KEY is not set in .env: backups are encrypted under it (daon init generates one)");
  return env.BACKUP_KEY;
}

/**
 * Writes one backup set (ops.md §5) into a hidden `.partial-<name>` directory, renamed when
 * complete: the database first (one snapshot, row counts read in it), then the ledger at one
 * committed height, the encrypted `.env` and secrets, the manifest and SHA256SUMS. Any failure
 * leaves the set hidden as `.failed-<name>` and throws OperationFailed.
 */
export async function createBackupSet(
  services: DeploymentServices,
  options: { kind: BackupKind; keep?: boolean; note?: (line: string) => void },
): Promise<{ dir: string; manifest: Manifest }> {
  const { deployment, env } = services;
  const key = backupKey(env);
  const note = options.note ?? (() => {});
  const root = backupsDir(deployment.stateDir);
  await privateDir(root);
  let name = `${options.kind}-${utcStamp()}`;
  for (let n = 2; existsSync(join(root, name)) || existsSync(join(root, `.partial-${name}`)); n++)
    name = `${options.kind}-${utcStamp()}-${n}`;
  const partial = join(root, `.partial-${name}`);
  await privateDir(partial);

  try {
    const files: Record<string, FileRecord> = {};
    const record = async (file: string) => {
      await syncFile(join(partial, file));
      files[file] = await describeFile(join(partial, file));
      note(`${file}: ${formatBytes(files[file].bytes)}`);
    };

    // The database first: a registration it holds is then on the ledger copy taken after it, or in its outbox.
    let database: Manifest["database"];
    let rows: Record<string, number>;
    if (env.DATABASE_URL) {
      const dumped = await dumpPostgres(env.DATABASE_URL, join(partial, DATABASE_FILES.postgresql));
      database = { engine: "postgresql", file: DATABASE_FILES.postgresql, name: dumped.database, schema: dumped.schema, role: dumped.role };
      rows = dumped.rows;
    } else {
      const snapshot = await embeddedSnapshot(services);
      await writeFile(join(partial, DATABASE_FILES.pglite), snapshot.archive, { mode: 0o600 });
      database = { engine: "pglite", file: DATABASE_FILES.pglite };
      rows = snapshot.rows;
    }
    await record(database.file);

    // Keys only in pre-* sets: the sets a rollback or restore of this very chain starts from.
    const keys = options.kind.startsWith("pre-");
    const ledgerCopy = join(partial, ".ledger");
    const ledger = await snapshotLedgerHome(deployment.nodeHome, ledgerCopy, { keys });
    await tarDirectory(ledgerCopy, join(partial, LEDGER_FILE));
    await rm(ledgerCopy, { recursive: true, force: true });
    await record(LEDGER_FILE);
    if (env.CHAIN_ID && env.CHAIN_ID !== ledger.chainId) {
      throw new Error(`.env says CHAIN_ID=${env.CHAIN_ID} but the ledger home is chain ${ledger.chainId}`);
    }

    await writeFile(join(partial, ENV_FILE), sealWithBackupKey(key, await readFile(deployment.envFile)), { mode: 0o600 });
    await record(ENV_FILE);
    const secrets = existsSync(deployment.secretsDir) ? deployment.secretsDir : await emptyDir(partial);
    await writeFile(join(partial, SECRETS_FILE), sealWithBackupKey(key, await tarToBuffer(secrets)), { mode: 0o600 });
    await record(SECRETS_FILE);
    if (options.kind === "pre-wipe" || options.kind === "pre-rollback") {
      await copyFile(deployment.envFile, join(partial, PLAIN_ENV_FILE));
      await record(PLAIN_ENV_FILE);
    }
    await rm(join(partial, ".empty"), { recursive: true, force: true });

    const manifest: Manifest = {
      format: "daon-backup-1",
      name,
      kind: options.kind,
      keep: options.keep === true || options.kind !== "scheduled",
      time: new Date().toISOString(),
      chainId: ledger.chainId,
      genesisHash: ledger.genesisHash,
      height: ledger.height,
      appHash: ledger.appHash,
      database,
      rows,
      registrations: rows.registrations ?? 0,
      accounts: rows.accounts ?? 0,
      ledger: { file: LEDGER_FILE, keys },
      backupKeyFingerprint: fingerprint(key),
      files,
    };
    await sealSet(partial, manifest);
    const dir = join(root, name);
    await rename(partial, dir);
    return { dir, manifest };
  } catch (error) {
    const failed = join(root, `.failed-${name}`);
    await rename(partial, failed).catch(() => {});
    if (error instanceof UsageError) throw error;
    throw new OperationFailed(`backup ${name} failed: ${(error as Error).message}; the incomplete set stays hidden as ${failed}`, {
      failedSet: failed,
    });
  }
}

/** A set that failed its verify is hidden the same way as one that failed while being written. */
export async function hideFailedSet(dir: string, name: string): Promise<string> {
  const failed = join(dir, "..", `.failed-${name}`);
  await rename(dir, failed);
  return failed;
}

/** The embedded database: from the running API (its snapshot endpoint), or its directory when nothing runs. */
async function embeddedSnapshot(services: DeploymentServices): Promise<{ archive: Buffer; rows: Record<string, number> }> {
  const { deployment, endpoints, controller } = services;
  if (await endpoints.health()) {
    if (!endpoints.hasOpsToken) {
      throw new UsageError(
        "API_KEY_SECRET is not set in .env: the running API's snapshot endpoint is off, so its database cannot be copied",
      );
    }
    return endpoints.embeddedSnapshot();
  }
  if (await anyRunning(controller)) {
    throw new Error("the services run but the API does not answer: its embedded database cannot be copied safely now");
  }
  const dir = join(deployment.stateDir, "db");
  if (!existsSync(dir)) throw new Error(`no embedded database at ${dir}`);
  return dumpEmbeddedDirectory(dir);
}

async function emptyDir(parent: string): Promise<string> {
  const dir = join(parent, ".empty");
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

async function syncFile(path: string): Promise<void> {
  const file = await open(path, "r");
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Bytes of a set's files. */
export function setBytes(manifest: Manifest): number {
  return Object.values(manifest.files).reduce((sum, file) => sum + file.bytes, 0);
}
