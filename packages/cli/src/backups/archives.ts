import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar";

/** A gzipped tar of `dir`'s contents with relative paths (`config/genesis.json`, …), as the runbook's `tar xzf -C` expects. */
export async function tarDirectory(dir: string, out: string, options: { exclude?: (path: string) => boolean } = {}): Promise<number> {
  let entries = 0;
  const stream = tar.c(
    {
      gzip: true,
      cwd: dir,
      portable: true,
      filter: (path) => {
        const keep = !options.exclude?.(path.replace(/^\.\//, ""));
        if (keep) entries += 1;
        return keep;
      },
    },
    ["."],
  );
  await pipeline(stream, createWriteStream(out, { mode: 0o600 }));
  return entries;
}

/** Every entry of a gzipped tar (files and directories, without a leading `./` or `/`); throws on a truncated or corrupt archive. */
export async function listArchive(source: string | Buffer): Promise<string[]> {
  const entries: string[] = [];
  const errors: Error[] = [];
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      entries.push(entry.path.replace(/^\.?\//, ""));
      entry.resume();
    },
    onwarn: collect(errors),
  });
  const input = typeof source === "string" ? createReadStream(source) : bufferStream(source);
  await pipeline(input, createGunzip(), parser);
  if (errors.length > 0) throw errors[0];
  return entries.filter((path) => path !== "" && path !== ".");
}

/** Unpacks a gzipped tar into `dir` (which must exist); leading `/` and `..` are refused, as tar does by default. */
export async function extractArchive(source: string | Buffer, dir: string): Promise<void> {
  const errors: Error[] = [];
  const unpack = new tar.Unpack({ cwd: dir, onwarn: collect(errors) });
  const input = typeof source === "string" ? createReadStream(source) : bufferStream(source);
  await pipeline(input, createGunzip(), unpack);
  if (errors.length > 0) throw errors[0];
}

/** A gzipped tar of a directory, in memory (the secrets directory before encryption). */
export async function tarToBuffer(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tar.c({ gzip: true, cwd: dir, portable: true }, ["."]);
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Every warning is a failure, except "stripping / from absolute paths" (PGlite's dumps are absolute). */
function collect(errors: Error[]) {
  return (code: string, message: string | Error) => {
    if (code !== "TAR_ENTRY_INFO") errors.push(message instanceof Error ? message : new Error(`${code}: ${message}`));
  };
}

function bufferStream(buffer: Buffer) {
  return (async function* () {
    yield buffer;
  })();
}
