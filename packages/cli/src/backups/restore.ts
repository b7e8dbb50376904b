import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { migrateOpsDatabase, openOpsDatabase, type OpsDatabase, reconcileWithLedger, emptyPostgresSchema, tableRows } from "@daon/api";
import { homePaths, inspectLedgerHome, writeFileAtomic } from "@daon/chain";
import { type Deployment, privateDir, UsageError } from "../deployment.js";
import { extractArchive } from "./archives.js";
import { openWithBackupKey } from "./encryption.js";
import { ENV_FILE, type Manifest, PLAIN_ENV_FILE, SECRETS_FILE } from "./manifest.js";
import { inspectPostgresDump, replayPostgresDump, runStatement } from "./postgres-dump.js";
import { postgresAdminUrl } from "./verify.js";

/** The database the deployment's settings point at: PostgreSQL by URL, or the embedded directory. */
export function openDeploymentDatabase(deployment: Deployment, env: Record<string, string>): Promise<OpsDatabase> {
  return env.DATABASE_URL ? openOpsDatabase({ url: env.DATABASE_URL }) : openOpsDatabase({ pgliteDir: join(deployment.stateDir, "db") });
}

/** The settings a set holds: its plaintext `env-backup` when asked and present (as the runbook's `cp`), else `env.enc`. */
export function readSetEnv(dir: string, backupKey: string, options: { plain: boolean }): { text: string; env: Record<string, string> } {
  const plain = join(dir, PLAIN_ENV_FILE);
  const text =
    options.plain && existsSync(plain)
      ? readFileSync(plain, "utf8")
      : openWithBackupKey(backupKey, readFileSync(join(dir, ENV_FILE))).toString("utf8");
  return { text, env: parseEnv(text) as Record<string, string> };
}

/** Refusals a restore of this set into this deployment would hit, found before anything stops (exit 2). */
export function restorePreconditions(deployment: Deployment, setEnv: Record<string, string>, manifest: Manifest): void {
  if (manifest.database.engine === "postgresql" && !setEnv.DATABASE_URL)
    throw new UsageError("the set holds a PostgreSQL database but its .env names no DATABASE_URL to restore it into");
  if (setEnv.DAON_STATE_DIR && setEnv.DAON_STATE_DIR !== deployment.stateDir)
    throw new UsageError(`the set's .env keeps its state in ${setEnv.DAON_STATE_DIR}, this deployment in ${deployment.stateDir}`);
  if (!manifest.ledger.keys && !keysForGenesis(deployment.nodeHome, manifest.genesisHash)) {
    throw new UsageError(
      `the set's ledger copy has no validator key and the ledger home holds none for its chain ${manifest.chainId}: restore a pre-* set, or a home with its keys`,
    );
  }
}

/**
 * Credentials to restore a PostgreSQL set with: the current `.env`'s when it names the same
 * database (its password works now; a wipe may have changed the role's), else the set's own.
 */
function connectionSettings(current: Record<string, string>, set: Record<string, string>): Record<string, string> {
  const where = (url: string | undefined) => {
    if (!url) return undefined;
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  };
  return current.DATABASE_URL && where(current.DATABASE_URL) === where(set.DATABASE_URL) ? current : set;
}

/**
 * Replaces the deployment's database with the set's (services stopped): the DAON schema is
 * dropped and the dump replayed as the superuser, or the embedded directory replaced; every
 * table's rows must then be as in the manifest. The dump's header then sets the app role's
 * password to the set's.
 */
export async function restoreDatabase(
  deployment: Deployment,
  settings: { current: Record<string, string>; set: Record<string, string> },
  dir: string,
  manifest: Manifest,
): Promise<void> {
  const file = join(dir, manifest.database.file);
  let database: OpsDatabase;
  let roleStatement: string | undefined;
  let admin: string | undefined;
  if (manifest.database.engine === "postgresql") {
    const connect = connectionSettings(settings.current, settings.set);
    const databaseUrl = connect.DATABASE_URL;
    admin = postgresAdminUrl(connect);
    if (!databaseUrl || !admin) throw new UsageError("no DATABASE_URL to restore into");
    await emptyPostgresSchema(databaseUrl);
    const target = new URL(admin);
    target.pathname = new URL(databaseUrl).pathname;
    await replayPostgresDump(file, target.toString(), manifest.database.schema);
    roleStatement = (await inspectPostgresDump(file)).roleStatement;
    database = await openOpsDatabase({ url: target.toString() });
  } else {
    const dbDir = join(deployment.stateDir, "db");
    await rm(dbDir, { recursive: true, force: true });
    await privateDir(dbDir);
    await extractArchive(file, dbDir);
    database = await openOpsDatabase({ pgliteDir: dbDir });
  }
  try {
    const rows = await tableRows(database.db);
    const tables = new Set([...Object.keys(rows), ...Object.keys(manifest.rows)]);
    const differences = [...tables].filter((table) => rows[table] !== manifest.rows[table]);
    if (differences.length > 0) throw new Error(`restored rows differ from the manifest: ${differences.join(", ")}`);
  } finally {
    await database.close();
  }
  if (roleStatement && admin) await runStatement(admin, roleStatement);
}

/** The validator and node keys of a home, when its genesis is the one named (kept across a restore of a set without keys). */
function keysForGenesis(home: string, genesisHash: string): boolean {
  const paths = homePaths(home);
  if (!existsSync(paths.validatorKey) || !existsSync(paths.nodeKey) || !existsSync(paths.genesis)) return false;
  return sha256Sync(paths.genesis) === genesisHash;
}

function sha256Sync(path: string): string {
  return createHash("sha256").update(readFileSync(path, "utf8")).digest("hex");
}

/**
 * Replaces the ledger home with the set's copy (services stopped); keeps the home's keys when
 * the copy has none. The restored store must load and hash to the manifest's app hash.
 */
export async function restoreLedger(deployment: Deployment, dir: string, manifest: Manifest): Promise<void> {
  const paths = homePaths(deployment.nodeHome);
  const keptKeys = manifest.ledger.keys
    ? undefined
    : { validator: await readFile(paths.validatorKey), node: await readFile(paths.nodeKey) };
  await rm(deployment.nodeHome, { recursive: true, force: true });
  await privateDir(deployment.nodeHome);
  await extractArchive(join(dir, manifest.ledger.file), deployment.nodeHome);
  if (keptKeys) {
    await writeFile(paths.validatorKey, keptKeys.validator, { mode: 0o600 });
    await writeFile(paths.nodeKey, keptKeys.node, { mode: 0o600 });
  }
  for (const path of [paths.configDir, paths.dataDir]) await chmod(path, 0o700);
  const ledger = await inspectLedgerHome(deployment.nodeHome);
  if (ledger.height !== manifest.height || ledger.computedAppHash !== manifest.appHash) {
    throw new Error(
      `the restored ledger is at height ${ledger.height} with app hash ${ledger.computedAppHash}, not ${manifest.height} / ${manifest.appHash}`,
    );
  }
}

/** Puts the set's `.env` (text as read by readSetEnv) back and its secrets files into `secrets/`. */
export async function restoreSettings(deployment: Deployment, dir: string, backupKey: string, envText: string): Promise<void> {
  await writeFileAtomic(deployment.envFile, envText);
  await privateDir(deployment.secretsDir);
  await extractArchive(openWithBackupKey(backupKey, await readFile(join(dir, SECRETS_FILE))), deployment.secretsDir);
  await makePrivate(deployment.secretsDir);
}

async function makePrivate(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) await makePrivate(path);
    else await chmod(path, 0o600);
  }
}

/**
 * Migrates the restored database to this code's schema and reconciles it with the restored
 * ledger (registrations confirmed above its height back to the outbox, cursor at most there).
 */
export async function reconcileRestored(
  deployment: Deployment,
  env: Record<string, string>,
  ledgerHeight: number,
  options: { maintenance: boolean },
): Promise<{ migrations: string[]; requeued: number; indexedHeight: number }> {
  const database = await openDeploymentDatabase(deployment, env);
  try {
    const migrations = await migrateOpsDatabase(database.db);
    const reconciled = await reconcileWithLedger(database.db, ledgerHeight, options);
    return { migrations, ...reconciled };
  } finally {
    await database.close();
  }
}
