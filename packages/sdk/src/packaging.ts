/**
 * Builds `@daon/sdk` as it is published to npm, under `packages/sdk/dist/`: one ES module
 * (with `core` inlined, since `@daon/core` is not published; its own dependencies stay
 * dependencies), type declarations, a package.json with `exports`, and the README.
 * `npm run build -w @daon/sdk`, then `npm publish packages/sdk/dist`.
 * Inside this repository the workspace package keeps pointing at the sources.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SDK = fileURLToPath(new URL("..", import.meta.url));
const PACKAGES = join(SDK, "..");
export const SDK_DIST = join(SDK, "dist");

/** Packages the bundle imports at run time: `core`'s dependencies, installed with the SDK. */
const EXTERNAL = ["@noble/hashes", "@noble/curves", "@scure/base", "cosmjs-types"];

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return (await Promise.all(entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])))).flat();
}

export async function buildSdkPackage(outDir = SDK_DIST): Promise<{ outDir: string; files: string[] }> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const sdkManifest = JSON.parse(await readFile(join(SDK, "package.json"), "utf8"));
  const coreManifest = JSON.parse(await readFile(join(PACKAGES, "core", "package.json"), "utf8"));

  const esbuild = await import("esbuild");
  await esbuild.build({
    absWorkingDir: SDK,
    entryPoints: [join(SDK, "src/index.ts")],
    outfile: join(outDir, "index.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    external: EXTERNAL.flatMap((name) => [name, `${name}/*`]),
    legalComments: "none",
    logLevel: "silent",
  });

  // Declarations of the SDK and of the `core` types it re-exports, with `@daon/core` pointed at the copy.
  const ts = (await import("typescript")).default;
  const program = ts.createProgram([join(SDK, "src/index.ts")], {
    declaration: true,
    emitDeclarationOnly: true,
    outDir: join(outDir, "types"),
    rootDir: PACKAGES,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    types: [],
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    // `core` as sources, not as a package from node_modules, so its declarations are emitted too.
    baseUrl: PACKAGES,
    paths: { "@daon/core": ["./core/src/index.ts"] },
  });
  const emitted = program.emit();
  const problems = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (problems.length > 0) {
    throw new Error(`type declarations: ${problems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("; ")}`);
  }
  const coreIndex = join(outDir, "types", "core", "src", "index.js");
  for (const file of (await walk(join(outDir, "types", "sdk"))).filter((f) => f.endsWith(".d.ts"))) {
    const text = await readFile(file, "utf8");
    const specifier = relative(dirname(file), coreIndex).split("\\").join("/");
    await writeFile(file, text.replaceAll('"@daon/core"', JSON.stringify(specifier.startsWith(".") ? specifier : `./${specifier}`)));
  }
  await writeFile(join(outDir, "index.d.ts"), 'export * from "./types/sdk/src/index.js";\n');

  const manifest = {
    name: sdkManifest.name,
    version: sdkManifest.version,
    description: sdkManifest.description,
    keywords: ["daon", "content registry", "provenance", "proof", "webhooks"],
    type: "module",
    main: "./index.js",
    types: "./index.d.ts",
    exports: { ".": { types: "./index.d.ts", import: "./index.js", default: "./index.js" }, "./package.json": "./package.json" },
    sideEffects: false,
    engines: { node: ">=20.3" },
    files: ["index.js", "index.d.ts", "types", "README.md"],
    dependencies: Object.fromEntries(EXTERNAL.map((name) => [name, coreManifest.dependencies[name]]).filter(([, version]) => version)),
  };
  await writeFile(join(outDir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  if (existsSync(join(SDK, "README.md"))) await copyFile(join(SDK, "README.md"), join(outDir, "README.md"));
  return { outDir, files: (await walk(outDir)).map((f) => relative(outDir, f)).sort() };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { outDir, files } = await buildSdkPackage();
  process.stdout.write(`${files.length} files in ${outDir}; publish with: npm publish ${relative(process.cwd(), outDir) || "."}\n`);
}
