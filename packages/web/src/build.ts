/**
 * Builds the portal: one esbuild pass (Preact, the SDK and `core` bundled, split so the proof
 * checker loads only when asked for), content-hashed names under `dist/assets/`, and an
 * index.html that names them. Assets are written before index.html is swapped in, so a server
 * reading `dist/` while a build runs serves either the old portal or the new one, whole.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const WEB = fileURLToPath(new URL("..", import.meta.url));
/** Folders whose sources end up in the bundle: a change in any of them makes `dist` stale. */
const SOURCE_DIRS = [join(WEB, "src"), join(WEB, "public"), join(WEB, "../sdk/src"), join(WEB, "../core/src")];
export const DEFAULT_DIST = join(WEB, "dist");
const STAMP = ".build-stamp";

export interface PortalBuild {
  outDir: string;
  /** Files written, relative to outDir, with their size and gzip size in bytes. */
  files: { path: string; bytes: number; gzipBytes: number }[];
  /** JavaScript the first page load fetches (the entry and its static imports), gzip-compressed. */
  initialJsGzipBytes: number;
}

/** A fingerprint of every source file's path, size and mtime: cheap enough to check at each start. */
async function sourceStamp(): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (dir: string): Promise<void> => {
    if (!existsSync(dir)) return;
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const info = await stat(path);
        hash.update(`${relative(WEB, path)}\0${info.size}\0${info.mtimeMs}\n`);
      }
    }
  };
  for (const dir of SOURCE_DIRS) await walk(dir);
  return hash.digest("hex");
}

/** True when `outDir` holds a build of the current sources. */
export async function isPortalFresh(outDir = DEFAULT_DIST): Promise<boolean> {
  const stamp = await readFile(join(outDir, STAMP), "utf8").catch(() => "");
  return stamp !== "" && existsSync(join(outDir, "index.html")) && stamp === (await sourceStamp());
}

async function writeAtomically(path: string, contents: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, contents);
  await rename(temporary, path);
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

function indexHtml(script: string, styles: string[], preloads: string[]): string {
  const title = "DAON — protect and verify creative work";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="DAON registers creative work on an append-only ledger, so anyone can prove who registered it first.">
<meta name="color-scheme" content="light">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
${styles.map((href) => `<link rel="stylesheet" href="${href}">`).join("\n")}
${preloads.map((href) => `<link rel="modulepreload" href="${href}">`).join("\n")}
<script type="module" src="${script}"></script>
</head>
<body>
<div id="app"><main class="boot"><h1>DAON</h1><p>Loading the DAON portal… It needs JavaScript to hash your work in this browser.</p></main></div>
</body>
</html>
`;
}

/** Builds the portal into `outDir` (default `packages/web/dist`). */
export async function buildPortal(options: { outDir?: string; minify?: boolean } = {}): Promise<PortalBuild> {
  const outDir = options.outDir ?? DEFAULT_DIST;
  const stamp = await sourceStamp();
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: WEB,
    entryPoints: { app: join(WEB, "src/app/main.tsx") },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome111", "firefox115", "safari16.4"],
    outdir: join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    chunkNames: "chunk-[hash]",
    assetNames: "[name]-[hash]",
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: options.minify ?? true,
    legalComments: "none",
    metafile: true,
    write: false,
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const outputs = result.metafile.outputs;
  const assetPath = (absolute: string) => `/${relative(outDir, absolute).split("\\").join("/")}`;
  const entry = Object.entries(outputs).find(
    ([, output]) => output.entryPoint?.endsWith("src/app/main.tsx") && !output.entryPoint.endsWith(".css"),
  );
  if (!entry) throw new Error("the portal build produced no entry script");
  const [entryFile, entryOutput] = entry;
  const styles = entryOutput.cssBundle ? [assetPath(join(WEB, entryOutput.cssBundle))] : [];
  // Static imports of the entry are fetched at once; preloading them saves a round trip.
  const staticImports = entryOutput.imports.filter((i) => i.kind === "import-statement").map((i) => i.path);
  const preloads = staticImports.map((path) => assetPath(join(WEB, path)));

  const files: PortalBuild["files"] = [];
  const record = (path: string, contents: Uint8Array) =>
    files.push({ path: relative(outDir, path), bytes: contents.length, gzipBytes: gzipSync(contents, { level: 9 }).length });
  for (const file of result.outputFiles) {
    await writeAtomically(file.path, file.contents);
    record(file.path, file.contents);
  }
  const publicDir = join(WEB, "public");
  for (const name of existsSync(publicDir) ? await readdir(publicDir) : []) {
    const contents = await readFile(join(publicDir, name));
    await writeAtomically(join(outDir, name), contents);
    record(join(outDir, name), contents);
  }
  const html = indexHtml(assetPath(join(WEB, entryFile)), styles, preloads);
  await writeAtomically(join(outDir, "index.html"), html);
  record(join(outDir, "index.html"), new TextEncoder().encode(html));
  await writeAtomically(join(outDir, STAMP), stamp);

  // Assets of earlier builds that this one no longer names go once the new index.html is in place.
  const current = new Set(result.outputFiles.map((file) => file.path));
  for (const name of await readdir(join(outDir, "assets"))) {
    const path = join(outDir, "assets", name);
    if (!current.has(path)) await rm(path, { force: true });
  }

  const initial = new Set([entryFile, ...staticImports].map((path) => relative(outDir, join(WEB, path))));
  const initialJsGzipBytes = files.filter((f) => initial.has(f.path)).reduce((sum, f) => sum + f.gzipBytes, 0);
  return { outDir, files, initialJsGzipBytes };
}

/** Builds the portal unless `outDir` already holds a build of the current sources. */
export async function ensurePortalBuilt(outDir = DEFAULT_DIST): Promise<{ built: boolean; build?: PortalBuild }> {
  if (await isPortalFresh(outDir)) return { built: false };
  return { built: true, build: await buildPortal({ outDir }) };
}

// `npm run build -w @daon/web`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const build = await buildPortal();
  for (const file of build.files)
    process.stdout.write(`${file.path.padEnd(40)} ${String(file.bytes).padStart(8)} B  ${String(file.gzipBytes).padStart(7)} B gzip\n`);
  process.stdout.write(`first load: ${(build.initialJsGzipBytes / 1024).toFixed(1)} KiB of JavaScript (gzip)\n`);
}
