import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { exportPostgresSnapshot } from "@daon/api";
import { scramVerifier } from "../rotation/scram.js";

/** The line after which `database.sql.gz` is plain `pg_dump` output. */
const HEADER_END = "-- daon: pg_dump output follows";
const TRAILER = "-- PostgreSQL database dump complete";
const MAX_HEADER_BYTES = 64 * 1024;

/** A libpq connection without the password on the command line (where `ps` would show it). */
export function libpqConnection(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  return { dbname: parsed.toString(), env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) } };
}

/** A producer's exit: status, and what it wrote to stderr. */
function exited(child: ReturnType<typeof spawn>, what: string): Promise<string> {
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`${what} could not run: ${error.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve(stderr);
      reject(new Error(`${what} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ") || "no message"}`));
    });
  });
}

/** Waits for a producer and the stream it feeds; the producer's own failure is the one reported. */
async function bothOrFirstFailure(producer: Promise<string>, stream: Promise<void>): Promise<string> {
  const [finished, piped] = await Promise.allSettled([producer, stream]);
  if (finished.status === "rejected") throw finished.reason;
  if (piped.status === "rejected") throw piped.reason;
  return finished.value;
}

/** Lines of stderr that report a problem (pg_dump and psql write notices there too). */
function problems(stderr: string): string[] {
  return stderr.split("\n").filter((line) => /\b(error|fatal|panic)\b/i.test(line));
}

/**
 * `database.sql.gz` (ops.md §5): a header that sets the app role's password (a SCRAM verifier,
 * computed here) and `\connect`s the database, then `pg_dump --clean --if-exists` of the DAON
 * schema in an exported snapshot whose row counts are read in the same transaction. It replays
 * through the runbook's `gunzip < database.sql.gz | psql -U postgres`.
 */
export async function dumpPostgres(
  databaseUrl: string,
  out: string,
): Promise<{ rows: Record<string, number>; database: string; schema: string; role: string }> {
  const snapshot = await exportPostgresSnapshot(databaseUrl);
  try {
    const url = new URL(databaseUrl);
    const role = decodeURIComponent(url.username) || "postgres";
    const password = decodeURIComponent(url.password);
    const header = [
      `-- DAON database backup of ${snapshot.database} (schema ${snapshot.schema}), ${new Date().toISOString()}`,
      "-- Replay as the superuser: gunzip < database.sql.gz | psql -U postgres",
      role !== "postgres" && password
        ? `ALTER ROLE "${role.replaceAll('"', '""')}" WITH PASSWORD '${scramVerifier(password)}';`
        : `-- the dump's role ${role} keeps its password (not an app role with a password)`,
      `\\connect '${snapshot.database.replaceAll("'", "\\'")}'`,
      HEADER_END,
      "",
    ].join("\n");
    const { dbname, env } = libpqConnection(databaseUrl);
    const child = spawn(
      "pg_dump",
      ["--clean", "--if-exists", `--schema=${snapshot.schema}`, `--snapshot=${snapshot.id}`, "--no-password", `--dbname=${dbname}`],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const done = exited(child, "pg_dump");
    const stdout = child.stdout;
    if (!stdout) throw new Error("pg_dump has no output stream");
    const stderr = await bothOrFirstFailure(
      done,
      pipeline(
        (async function* () {
          yield Buffer.from(header);
          yield* stdout;
        })(),
        createGzip(),
        createWriteStream(out, { mode: 0o600 }),
      ),
    );
    if (problems(stderr).length > 0) throw new Error(`pg_dump reported: ${problems(stderr).slice(0, 3).join(" | ")}`);
    return { rows: snapshot.rows, database: snapshot.database, schema: snapshot.schema, role };
  } finally {
    await snapshot.release();
  }
}

/** What the header of a `database.sql.gz` says, and whether it decompresses whole and ends with pg_dump's trailer. */
export async function inspectPostgresDump(file: string): Promise<{ roleStatement?: string; database?: string; bytes: number }> {
  let head = "";
  let tail = "";
  let bytes = 0;
  await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      bytes += chunk.length;
      if (head.length < MAX_HEADER_BYTES) head += chunk.toString("utf8");
      tail = (tail + chunk.toString("utf8")).slice(-4096);
    }
  });
  const headerEnd = head.indexOf(HEADER_END);
  if (!head.startsWith("-- DAON database backup") || headerEnd < 0) throw new Error("database.sql.gz has no DAON header");
  const header = head.slice(0, headerEnd);
  if (!tail.includes(TRAILER)) throw new Error("database.sql.gz lacks pg_dump's trailer (the dump is incomplete)");
  return {
    roleStatement: /^ALTER ROLE .*$/m.exec(header)?.[0],
    database: /^\\connect '(.*)'$/m.exec(header)?.[1],
    bytes,
  };
}

/** pg_dump's statements about the schema itself: the schema stays as it is (it may hold extension objects). */
const SCHEMA_STATEMENT = /^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|ALTER SCHEMA|COMMENT ON SCHEMA) \S+( .*)?;$/;

/**
 * Replays a `database.sql.gz` into the database of `targetUrl` with psql (ON_ERROR_STOP): the
 * pg_dump part only, its objects into an emptied (or new) schema; the header's `\connect` and
 * `ALTER ROLE` are the caller's to apply.
 */
export async function replayPostgresDump(file: string, targetUrl: string, schema = "public"): Promise<void> {
  const { dbname, env } = libpqConnection(targetUrl);
  const child = spawn("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", `--dbname=${dbname}`], {
    env,
    stdio: ["pipe", "ignore", "pipe"],
  });
  const done = exited(child, "psql");
  let partial = "";
  let inBody = false;
  let headerBytes = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      const kept: string[] = inBody ? [] : [`CREATE SCHEMA IF NOT EXISTS "${schema.replaceAll('"', '""')}";`];
      for (const line of lines) {
        if (!inBody) {
          headerBytes += line.length + 1;
          if (line === HEADER_END) inBody = true;
          continue;
        }
        if (!SCHEMA_STATEMENT.test(line)) kept.push(line);
      }
      if (!inBody && headerBytes > MAX_HEADER_BYTES) return callback(new Error("database.sql.gz has no DAON header"));
      callback(null, inBody ? `${kept.join("\n")}\n` : "");
    },
    flush(callback) {
      if (!inBody) return callback(new Error("database.sql.gz has no DAON header"));
      callback(null, partial);
    },
  });
  if (!child.stdin) throw new Error("psql has no input stream");
  const stderr = await bothOrFirstFailure(done, pipeline(createReadStream(file), createGunzip(), body, child.stdin));
  if (problems(stderr).length > 0) throw new Error(`psql reported: ${problems(stderr).slice(0, 3).join(" | ")}`);
}

/** Runs one statement with psql (the header's ALTER ROLE as the superuser). */
export async function runStatement(url: string, statement: string): Promise<void> {
  const { dbname, env } = libpqConnection(url);
  const child = spawn("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", `--dbname=${dbname}`], {
    env,
    stdio: ["pipe", "ignore", "pipe"],
  });
  const done = exited(child, "psql");
  child.stdin?.end(`${statement}\n`);
  await done;
}
