import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseEnv } from "node:util";
import { openOpsDatabase, tableRows } from "@daon/api";
import { inspectLedgerHome, writeFileAtomic } from "@daon/chain";
import pg from "pg";
import { UsageError } from "../deployment.js";
import { extractArchive, listArchive } from "./archives.js";
import { openWithBackupKey } from "./encryption.js";
import {
  ENV_FILE,
  type Manifest,
  MANIFEST_FILE,
  PLAIN_ENV_FILE,
  readManifest,
  readSums,
  SECRETS_FILE,
  sha256File,
  VERIFY_FILE,
} from "./manifest.js";
import { inspectPostgresDump, replayPostgresDump } from "./postgres-dump.js";

export interface VerifyCheck {
  id: string;
  ok: boolean;
  detail: string;
}

/** `verify.json`: what preflight's backup.restorable and `daon status` read back. */
export interface VerifyReport {
  ok: boolean;
  mode: "quick" | "full";
  set: string;
  dir: string;
  verifiedAt: string;
  chainId?: string;
  height?: number;
  appHash?: string;
  rows?: Record<string, number>;
  checks: VerifyCheck[];
  error?: string;
}

export interface VerifyOptions {
  quick?: boolean;
  backupKey: string;
  /** A PostgreSQL server URL (superuser) where a scratch database may be created. */
  scratchDbUrl?: string;
  /** Write `verify.json` into the set (default true). */
  record?: boolean;
}

/**
 * `daon backup verify` (ops.md §5). Quick: manifest, sizes, hashes, every archive decoded, the
 * dump's trailer, decryption. Full (default): also restores the database into scratch and
 * compares every table's rows, and loads the ledger copy as a node would, recomputing the app
 * hash at the stored height; chain IDs must agree everywhere.
 */
export async function verifyBackupSet(dir: string, options: VerifyOptions): Promise<VerifyReport> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`no backup set at ${dir}`);
  const checks: VerifyCheck[] = [];
  const check = async (id: string, work: () => Promise<string>): Promise<boolean> => {
    try {
      checks.push({ id, ok: true, detail: await work() });
      return true;
    } catch (error) {
      checks.push({ id, ok: false, detail: (error as Error).message });
      return false;
    }
  };
  const report: VerifyReport = {
    ok: false,
    mode: options.quick ? "quick" : "full",
    set: basename(dir),
    dir,
    verifiedAt: new Date().toISOString(),
    checks,
  };

  let manifest: Manifest | undefined;
  await check("manifest", async () => {
    manifest = readManifest(dir);
    return `${manifest.kind} set of ${manifest.chainId} at height ${manifest.height}`;
  });
  if (manifest) {
    const set = manifest;
    Object.assign(report, { chainId: set.chainId, height: set.height, appHash: set.appHash });
    await quickChecks(dir, set, options.backupKey, check);
    if (!options.quick && checks.every((c) => c.ok)) await fullChecks(dir, set, options, check, report);
  }

  const failed = checks.filter((c) => !c.ok);
  report.ok = failed.length === 0;
  if (!report.ok) report.error = failed.map((c) => `${c.id}: ${c.detail}`).join("; ");
  if (options.record !== false) await writeFileAtomic(join(dir, VERIFY_FILE), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

type Check = (id: string, work: () => Promise<string>) => Promise<boolean>;

async function quickChecks(dir: string, manifest: Manifest, backupKey: string, check: Check): Promise<void> {
  const path = (file: string) => join(dir, file);
  await check("checksums", async () => {
    const sums = readSums(dir);
    for (const file of [...Object.keys(manifest.files), MANIFEST_FILE]) {
      if (!sums.has(file)) throw new Error(`SHA256SUMS does not list ${file}`);
    }
    if ((await sha256File(path(MANIFEST_FILE))) !== sums.get(MANIFEST_FILE)) throw new Error(`${MANIFEST_FILE} does not match SHA256SUMS`);
    for (const [file, expected] of Object.entries(manifest.files)) {
      if (sums.get(file) !== expected.sha256) throw new Error(`SHA256SUMS and the manifest disagree about ${file}`);
    }
    return `${sums.size} files listed`;
  });
  await check("files", async () => {
    const required = [manifest.database.file, manifest.ledger.file, ENV_FILE, SECRETS_FILE];
    const missing = required.filter((file) => !manifest.files[file]);
    if (missing.length > 0) throw new Error(`the manifest lists no ${missing.join(", ")}`);
    let total = 0;
    for (const [file, expected] of Object.entries(manifest.files)) {
      if (!existsSync(path(file))) throw new Error(`${file} is missing`);
      const bytes = statSync(path(file)).size;
      if (bytes !== expected.bytes) throw new Error(`${file} has ${bytes} bytes, the manifest says ${expected.bytes} (truncated?)`);
      if (bytes === 0) throw new Error(`${file} is empty`);
      if ((await sha256File(path(file))) !== expected.sha256) throw new Error(`${file} does not match its SHA-256 (altered)`);
      total += bytes;
    }
    return `${Object.keys(manifest.files).length} files, ${total} bytes, sizes and SHA-256 as in the manifest`;
  });
  await check("database.archive", async () => {
    if (manifest.database.engine === "postgresql") {
      const dump = await inspectPostgresDump(path(manifest.database.file));
      return `${manifest.database.file} decompresses (${dump.bytes} bytes) and ends with pg_dump's trailer`;
    }
    const entries = await listArchive(path(manifest.database.file));
    if (!entries.includes("PG_VERSION")) throw new Error(`${manifest.database.file} holds no PostgreSQL data directory`);
    return `${manifest.database.file}: ${entries.length} entries`;
  });
  await check("ledger.archive", async () => {
    const entries = new Set(await listArchive(path(manifest.ledger.file)));
    const needed = ["config/genesis.json", "config/config.toml", "data/ledger.db/CURRENT", "data/priv_validator_state.json"];
    const missing = needed.filter((entry) => !entries.has(entry));
    if (missing.length > 0) throw new Error(`${manifest.ledger.file} lacks ${missing.join(", ")}`);
    const hasKeys = entries.has("config/priv_validator_key.json");
    if (hasKeys !== manifest.ledger.keys)
      throw new Error(`${manifest.ledger.file} ${hasKeys ? "holds" : "lacks"} the validator key, the manifest says otherwise`);
    return `${manifest.ledger.file}: ${entries.size} entries${hasKeys ? ", keys included" : ""}`;
  });
  await check("decryption", async () => {
    const env = parseEnv(openWithBackupKey(backupKey, await readFile(path(ENV_FILE))).toString("utf8"));
    if (env.CHAIN_ID !== manifest.chainId) throw new Error(`${ENV_FILE} says CHAIN_ID=${env.CHAIN_ID}, the manifest ${manifest.chainId}`);
    const secrets = await listArchive(openWithBackupKey(backupKey, await readFile(path(SECRETS_FILE))));
    if (manifest.files[PLAIN_ENV_FILE]) {
      const plain = parseEnv(await readFile(path(PLAIN_ENV_FILE), "utf8"));
      if (plain.CHAIN_ID !== manifest.chainId) throw new Error(`${PLAIN_ENV_FILE} says CHAIN_ID=${plain.CHAIN_ID}`);
    }
    return `${ENV_FILE} and ${SECRETS_FILE} (${secrets.length} entries) decrypt under BACKUP_KEY`;
  });
}

async function fullChecks(dir: string, manifest: Manifest, options: VerifyOptions, check: Check, report: VerifyReport): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "daon-verify-"));
  try {
    await check("database.restore", async () => {
      const rows = await restoredRows(dir, manifest, options.scratchDbUrl);
      report.rows = rows;
      const tables = new Set([...Object.keys(rows), ...Object.keys(manifest.rows)]);
      const differences = [...tables].filter((table) => rows[table] !== manifest.rows[table]);
      if (differences.length > 0) {
        throw new Error(
          `rows differ from the manifest: ${differences.map((t) => `${t} ${rows[t] ?? "missing"} ≠ ${manifest.rows[t] ?? "missing"}`).join(", ")}`,
        );
      }
      return `restored into scratch (${manifest.database.engine}); ${tables.size} tables, rows as in the manifest (${manifest.registrations} registrations)`;
    });
    await check("ledger.restore", async () => {
      await extractArchive(join(dir, manifest.ledger.file), scratch);
      const ledger = await inspectLedgerHome(scratch);
      if (ledger.computedAppHash !== ledger.appHash)
        throw new Error(`the stored state hashes to ${ledger.computedAppHash}, its head says ${ledger.appHash}`);
      if (ledger.height !== manifest.height)
        throw new Error(`the ledger copy ends at height ${ledger.height}, the manifest says ${manifest.height}`);
      if (ledger.appHash !== manifest.appHash) throw new Error(`app hash ${ledger.appHash} ≠ the manifest's ${manifest.appHash}`);
      if (!ledger.headBlock) throw new Error(`block ${ledger.height} is missing from the ledger copy`);
      if (ledger.genesisHash !== manifest.genesisHash) throw new Error("genesis.json differs from the one the manifest names");
      return `app hash recomputed at height ${ledger.height}: ${ledger.computedAppHash}`;
    });
    await check("chain.id", async () => {
      const env = parseEnv(openWithBackupKey(options.backupKey, await readFile(join(dir, ENV_FILE))).toString("utf8"));
      const ledger = await inspectLedgerHome(scratch);
      const ids = new Set([manifest.chainId, ledger.chainId, env.CHAIN_ID]);
      if (ids.size !== 1)
        throw new Error(`chain IDs differ: manifest ${manifest.chainId}, genesis ${ledger.chainId}, .env ${env.CHAIN_ID}`);
      return `${manifest.chainId} in the manifest, genesis and .env`;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Rows per table after restoring the set's database into scratch (temp PGlite, or a scratch PostgreSQL database). */
async function restoredRows(dir: string, manifest: Manifest, scratchDbUrl: string | undefined): Promise<Record<string, number>> {
  const file = join(dir, manifest.database.file);
  if (manifest.database.engine === "pglite") {
    const database = await openOpsDatabase({ pgliteArchive: await readFile(file) });
    try {
      return await tableRows(database.db);
    } finally {
      await database.close();
    }
  }
  if (!scratchDbUrl)
    throw new UsageError("a PostgreSQL set needs a server for its scratch restore: --scratch-db-url, or DATABASE_URL in .env");
  return withScratchDatabase(scratchDbUrl, async (url) => {
    await replayPostgresDump(file, url, manifest.database.schema);
    const database = await openOpsDatabase({ url });
    try {
      return await tableRows(database.db);
    } finally {
      await database.close();
    }
  });
}

/** A throwaway database on the server of `serverUrl`, dropped afterwards whatever happens. */
async function withScratchDatabase<T>(serverUrl: string, work: (url: string) => Promise<T>): Promise<T> {
  const name = `daon_verify_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
    client.on("error", () => {});
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end().catch(() => {});
    }
  };
  await run(`create database ${name}`);
  try {
    const target = new URL(serverUrl);
    target.pathname = `/${name}`;
    return await work(target.toString());
  } finally {
    await run(`drop database if exists ${name} with (force)`).catch(() => {});
  }
}

/** The superuser URL on DATABASE_URL's server: a scratch database for verify, the replay of a restore. */
export function postgresAdminUrl(env: Record<string, string>, override?: string): string | undefined {
  if (override) return override;
  if (!env.DATABASE_URL) return undefined;
  const url = new URL(env.DATABASE_URL);
  if (decodeURIComponent(url.username) !== "postgres") {
    url.username = "postgres";
    url.password = env.POSTGRES_SUPERUSER_PASSWORD ? encodeURIComponent(env.POSTGRES_SUPERUSER_PASSWORD) : "";
  }
  return url.toString();
}
