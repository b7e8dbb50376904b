/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time and inclusive time
 * aggregated by function + source file. Standalone: `npx tsx bench/profile-summary.ts DIR|FILE… [--top N]`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { formatTable } from "./lib/report.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  key: string;
  functionName: string;
  location: string;
  selfMs: number;
  totalMs: number;
}

/** Inclusive time of the calls made under a function, merged over all its stacks. */
export interface CallTree {
  key: string;
  ms: number;
  children: Map<string, CallTree>;
}

export interface ProfileSummary {
  files: string[];
  wallMs: number;
  /** Sampled time not spent idle (the event loop waiting): what the percentages are of. */
  busyMs: number;
  idleMs: number;
  functions: FunctionTime[];
  /** Self time by source file / package. */
  byFile: { location: string; selfMs: number }[];
  /** For each function's self time: which project function (packages/…, bench/…) nearest up the stack it was spent under. */
  projectCallers: Map<string, Map<string, number>>;
  /** Call trees under the functions named in `focus`. */
  trees: Map<string, CallTree>;
}

/**
 * tsx serves TypeScript minified onto one line, so V8's positions for project files are
 * "line 1, column N" of generated code. tsx caches each transform with its source map in
 * `$TMPDIR/tsx-<euid>/`; this maps frames back to original lines (and names anonymous
 * functions by their source text). Best effort: frames it cannot place keep the raw position.
 */
interface Placed {
  line: number;
  text: string;
}

interface Transform {
  file: string;
  mtimeMs: number;
  source: string;
  code: string[];
  /** Per generated line: [generated column, original line] sorted by column. */
  lines: [number, number][][];
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function decodeMappings(mappings: string): [number, number][][] {
  const out: [number, number][][] = [];
  let srcLine = 0;
  for (const lineText of mappings.split(";")) {
    const segments: [number, number][] = [];
    let column = 0;
    if (lineText) {
      for (const segment of lineText.split(",")) {
        const values: number[] = [];
        let value = 0;
        let shift = 0;
        for (const ch of segment) {
          const digit = B64.indexOf(ch);
          value += (digit & 31) << shift;
          if (digit & 32) shift += 5;
          else {
            values.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        column += values[0] ?? 0;
        if (values.length >= 4) {
          srcLine += values[2];
          segments.push([column, srcLine]);
        }
      }
    }
    segments.sort((a, b) => a[0] - b[0]);
    out.push(segments);
  }
  return out;
}

export class TsxSourceResolver {
  readonly #bySuffix = new Map<string, Transform[]>();
  readonly #chosen = new Map<string, Transform | undefined>();
  /** Current source lines of a file, only if it was not modified after the profile was taken. */
  readonly #sources = new Map<string, string[] | undefined>();
  #profileEndMs = Number.POSITIVE_INFINITY;

  constructor(cacheDir = join(tmpdir(), `tsx-${process.geteuid?.() ?? ""}`)) {
    let names: string[] = [];
    try {
      names = readdirSync(cacheDir);
    } catch {
      return;
    }
    for (const name of names) {
      // Cache entries are `<time>-<hash>` files; the directory also holds tsx's IPC sockets.
      if (!/^\d+-[0-9a-f]+$/.test(name)) continue;
      try {
        const file = join(cacheDir, name);
        if (!statSync(file).isFile()) continue;
        const text = readFileSync(file, "utf8");
        if (!text.includes("mappings")) continue;
        const entry = JSON.parse(text) as { code?: string; map?: string | { sources: string[]; mappings: string } };
        const map = typeof entry.map === "string" ? JSON.parse(entry.map) : entry.map;
        if (!entry.code || !map?.sources?.length) continue;
        const source = String(map.sources[0]);
        const suffix = suffixOf(source);
        if (!suffix) continue;
        const transform: Transform = {
          file,
          mtimeMs: statSync(file).mtimeMs,
          source,
          code: entry.code.split("\n"),
          lines: decodeMappings(map.mappings),
        };
        const list = this.#bySuffix.get(suffix) ?? [];
        list.push(transform);
        this.#bySuffix.set(suffix, list);
      } catch {
        // not a transform entry
      }
    }
  }

  /** Picks, for each project file, the cached transform whose code has the profile's named functions where V8 saw them. */
  choose(frames: CallFrame[], profileEndMs: number): void {
    this.#profileEndMs = profileEndMs;
    const byUrl = new Map<string, CallFrame[]>();
    for (const frame of frames) {
      if (!frame.url.startsWith("file://") || frame.url.includes("/node_modules/")) continue;
      const list = byUrl.get(frame.url) ?? [];
      list.push(frame);
      byUrl.set(frame.url, list);
    }
    for (const [url, list] of byUrl) {
      const path = decodeURIComponent(url.slice(7));
      const candidates = this.#bySuffix.get(suffixOf(path) ?? "") ?? [];
      let best: Transform | undefined;
      let bestScore = -1;
      for (const candidate of candidates) {
        let score = 0;
        for (const frame of list) {
          // Names V8 inferred ("Map.kind", "get x") are not in the code; declared ones end just before V8's position (the "(").
          const name = frame.functionName;
          if (!name || !/^#?[\w$]+$/.test(name)) continue;
          const column = frame.columnNumber;
          const at = candidate.code[frame.lineNumber]?.slice(Math.max(0, column - name.length - 12), column + name.length + 12) ?? "";
          if (at.includes(name)) score += 2;
          else score -= 1;
        }
        if (candidate.source === path) score += 1;
        if (candidate.mtimeMs > profileEndMs + 60_000) score -= 1;
        if (score > bestScore || (score === bestScore && best && candidate.mtimeMs > best.mtimeMs)) {
          best = candidate;
          bestScore = score;
        }
      }
      this.#chosen.set(url, best);
    }
  }

  place(frame: CallFrame): Placed | undefined {
    const transform = this.#chosen.get(frame.url);
    const segments = transform?.lines[frame.lineNumber];
    if (!transform || !segments?.length) return undefined;
    let lo = 0;
    let hi = segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid][0] <= frame.columnNumber) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const line = segments[found][1];
    return { line: line + 1, text: (this.#sourceLines(frame.url)?.[line] ?? "").trim() };
  }

  #sourceLines(url: string): string[] | undefined {
    if (!this.#sources.has(url)) {
      const path = decodeURIComponent(url.slice(7));
      try {
        const fresh = statSync(path).mtimeMs <= this.#profileEndMs;
        this.#sources.set(url, fresh ? readFileSync(path, "utf8").split("\n") : undefined);
      } catch {
        this.#sources.set(url, undefined);
      }
    }
    return this.#sources.get(url);
  }
}

function suffixOf(path: string): string | undefined {
  const at = path.lastIndexOf("/packages/");
  if (at >= 0) return path.slice(at + 1);
  const bench = path.lastIndexOf("/bench/");
  return bench >= 0 ? path.slice(bench + 1) : undefined;
}

/** `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`: thread 0 is the main thread (1… are workers and tsx's loader thread). */
function threadOf(file: string): number | undefined {
  const match = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(file);
  return match ? Number(match[2]) : undefined;
}

const META = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"]);

/** Repo-relative file path, or `pkg:<name>/file` for dependencies, or `node:` internals. */
export function shortLocation(url: string, repoRoot = process.cwd()): string {
  if (!url) return "";
  let path = url.startsWith("file://") ? decodeURIComponent(url.slice(7)) : url;
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "/node_modules/".length).split("/");
    const pkg = rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
    return `${pkg}/${rest.slice(rest[0].startsWith("@") ? 2 : 1).join("/")}`;
  }
  const root = `${resolve(repoRoot)}/`;
  if (path.startsWith(root)) path = path.slice(root.length);
  return path;
}

function functionKey(
  frame: CallFrame,
  repoRoot: string,
  resolver?: TsxSourceResolver,
): { key: string; functionName: string; location: string } {
  let functionName = frame.functionName || "(anonymous)";
  if (META.has(functionName) && !frame.url) return { key: functionName, functionName, location: "" };
  const placed = frame.url ? resolver?.place(frame) : undefined;
  const line = placed ? placed.line : frame.lineNumber + 1;
  const column = placed || frame.lineNumber > 0 ? "" : `:${frame.columnNumber + 1}`;
  const location = frame.url ? `${shortLocation(frame.url, repoRoot)}:${line}${column}` : "(native)";
  if (placed?.text && functionName === "(anonymous)")
    functionName = `(anonymous: ${placed.text.length > 50 ? `${placed.text.slice(0, 50)}…` : placed.text})`;
  return { key: `${functionName} ${location}`, functionName, location };
}

/** The .cpuprofile files under the given paths; of a directory, only main-thread profiles unless `allThreads`. */
export function profileFiles(paths: string[], allThreads = false): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        if (!name.endsWith(".cpuprofile")) continue;
        if (!allThreads && (threadOf(name) ?? 0) !== 0) continue;
        files.push(join(path, name));
      }
    } else files.push(path);
  }
  return files;
}

export function summariseProfiles(
  paths: string[],
  options: {
    repoRoot?: string;
    allThreads?: boolean;
    resolveSources?: boolean;
    focus?: string[];
    focusDepth?: number;
    /** Only samples taken in this span count (µs of CLOCK_MONOTONIC, as profiles and `process.hrtime` use on Linux). */
    window?: { fromUs: number; toUs: number };
  } = {},
): ProfileSummary {
  const repoRoot = options.repoRoot ?? process.cwd();
  const files = profileFiles(paths, options.allThreads);
  const profiles = files.map((file) => ({
    file,
    profile: JSON.parse(readFileSync(file, "utf8")) as CpuProfile,
    endMs: statSync(file).mtimeMs,
  }));
  const resolver = options.resolveSources === false ? undefined : new TsxSourceResolver();
  resolver?.choose(
    profiles.flatMap((p) => p.profile.nodes.map((n) => n.callFrame)),
    Math.max(0, ...profiles.map((p) => p.endMs)),
  );
  const self = new Map<string, FunctionTime>();
  const total = new Map<string, number>();
  const byFile = new Map<string, number>();
  const projectCallers = new Map<string, Map<string, number>>();
  const info = new Map<string, { functionName: string; location: string }>();
  const trees = new Map<string, CallTree>();
  let wallMs = 0;
  let idleMs = 0;
  let sampledMs = 0;
  for (const { profile } of profiles) {
    const from = Math.max(profile.startTime, options.window?.fromUs ?? profile.startTime);
    const to = Math.min(profile.endTime, options.window?.toUs ?? profile.endTime);
    wallMs += Math.max(0, to - from) / 1000;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const nodeSelf = new Map<number, number>();
    // timeDeltas[i] is the time before sample i; attribute each interval to the sample that ends it.
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      const delta = profile.timeDeltas[i] ?? 0;
      at += delta;
      if (at < from || at > to) return;
      nodeSelf.set(id, (nodeSelf.get(id) ?? 0) + delta / 1000);
    });
    const keys = new Map<number, ReturnType<typeof functionKey>>();
    for (const node of profile.nodes) {
      const k = functionKey(node.callFrame, repoRoot, resolver);
      keys.set(node.id, k);
      info.set(k.key, k);
    }
    for (const [id, ms] of nodeSelf) {
      const k = keys.get(id)!;
      sampledMs += ms;
      if (k.key === "(idle)") idleMs += ms;
      const entry = self.get(k.key) ?? { key: k.key, functionName: k.functionName, location: k.location, selfMs: 0, totalMs: 0 };
      entry.selfMs += ms;
      self.set(k.key, entry);
      const fileKey = k.location ? k.location.replace(/(:\d+)+$/, "") : k.key;
      byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + ms);
    }
    // Inclusive time: a node's self time counts once for every distinct function on its stack.
    const active = new Map<string, number>();
    const projectStack: string[] = [];
    const root = profile.nodes[0];
    const walk = (node: ProfileNode) => {
      const { key, location } = keys.get(node.id)!;
      active.set(key, (active.get(key) ?? 0) + 1);
      const ms = nodeSelf.get(node.id) ?? 0;
      if (ms > 0) {
        for (const k of active.keys()) total.set(k, (total.get(k) ?? 0) + ms);
        const caller = projectStack[projectStack.length - 1] ?? "(no project code on the stack)";
        const callers = projectCallers.get(key) ?? new Map<string, number>();
        callers.set(caller, (callers.get(caller) ?? 0) + ms);
        projectCallers.set(key, callers);
      }
      const isProject = location.startsWith("packages/") || location.startsWith("bench/");
      if (isProject) projectStack.push(key);
      for (const child of node.children ?? []) walk(nodes.get(child)!);
      if (isProject) projectStack.pop();
      const count = active.get(key)! - 1;
      if (count === 0) active.delete(key);
      else active.set(key, count);
    };
    if (root) walk(root);
    // Call trees under focus functions (outermost occurrence on each stack only).
    const focus = new Set(options.focus ?? []);
    const depthLimit = options.focusDepth ?? 3;
    const subtreeMs = new Map<number, number>();
    const measure = (node: ProfileNode): number => {
      let ms = nodeSelf.get(node.id) ?? 0;
      for (const child of node.children ?? []) ms += measure(nodes.get(child)!);
      subtreeMs.set(node.id, ms);
      return ms;
    };
    if (focus.size && root) {
      measure(root);
      const addTree = (node: ProfileNode, into: CallTree, depth: number) => {
        for (const childId of node.children ?? []) {
          const child = nodes.get(childId)!;
          const ms = subtreeMs.get(childId) ?? 0;
          if (ms === 0) continue;
          const key = keys.get(childId)!.key;
          let branch = into.children.get(key);
          if (!branch) {
            branch = { key, ms: 0, children: new Map() };
            into.children.set(key, branch);
          }
          branch.ms += ms;
          if (depth < depthLimit) addTree(child, branch, depth + 1);
        }
      };
      const find = (node: ProfileNode) => {
        const { functionName } = keys.get(node.id)!;
        if (focus.has(functionName)) {
          const key = keys.get(node.id)!.key;
          const tree = trees.get(key) ?? { key, ms: 0, children: new Map() };
          tree.ms += subtreeMs.get(node.id) ?? 0;
          trees.set(key, tree);
          addTree(node, tree, 1);
          return;
        }
        for (const child of node.children ?? []) find(nodes.get(child)!);
      };
      find(root);
    }
  }
  for (const [key, ms] of total) {
    const entry = self.get(key);
    if (entry) entry.totalMs = ms;
    else {
      const { functionName, location } = info.get(key)!;
      self.set(key, { key, functionName, location, selfMs: 0, totalMs: ms });
    }
  }
  return {
    files,
    wallMs,
    busyMs: sampledMs - idleMs,
    idleMs,
    functions: [...self.values()],
    byFile: [...byFile.entries()].map(([location, selfMs]) => ({ location, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
    projectCallers,
    trees,
  };
}

const pct = (ms: number, of: number) => (of > 0 ? `${((100 * ms) / of).toFixed(1)}%` : "n/a");

export function formatProfileSummary(summary: ProfileSummary, top = 10, title = "CPU profile"): string {
  const busy = summary.busyMs;
  const hot = summary.functions.filter((f) => f.key !== "(idle)" && f.key !== "(root)").sort((a, b) => b.selfMs - a.selfMs);
  const selfTable = formatTable(
    ["#", "self % busy", "self ms", "function", "where"],
    hot.slice(0, top).map((f, i) => [String(i + 1), pct(f.selfMs, busy), f.selfMs.toFixed(0), f.functionName, f.location]),
    [true, true, true, false, false],
  );
  const inclusive = summary.functions
    .filter((f) => !META.has(f.key) && f.location && !f.location.startsWith("node:") && !f.location.includes("tsx/"))
    .sort((a, b) => b.totalMs - a.totalMs);
  const totalTable = formatTable(
    ["#", "incl % busy", "incl ms", "function", "where"],
    inclusive.slice(0, top + 5).map((f, i) => [String(i + 1), pct(f.totalMs, busy), f.totalMs.toFixed(0), f.functionName, f.location]),
    [true, true, true, false, false],
  );
  const fileTable = formatTable(
    ["#", "self % busy", "file / package"],
    summary.byFile
      .filter((f) => f.location !== "(idle)")
      .slice(0, top)
      .map((f, i) => [String(i + 1), pct(f.selfMs, busy), f.location]),
    [true, true, false],
  );
  const callerLines = hot.slice(0, top).map((f, i) => {
    const callers = [...(summary.projectCallers.get(f.key) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, 3);
    const parts = callers.map(([caller, ms]) => `${caller.replace(/ \(anonymous: .*?\)/, "")} ${pct(ms, f.selfMs)}`);
    return `${i + 1}. ${f.functionName} ← ${parts.join("; ") || "?"}`;
  });
  return [
    `### ${title}`,
    `${summary.files.length} profile(s), ${(summary.wallMs / 1000).toFixed(1)} s profiled, busy ${(busy / 1000).toFixed(1)} s, idle ${(summary.idleMs / 1000).toFixed(1)} s; percentages are of busy (non-idle) time.`,
    "",
    `Top ${top} by self time (function + file:line):`,
    selfTable,
    "",
    "Where that self time was spent (nearest project function up the stack, share of the row's self time):",
    ...callerLines,
    "",
    "Top by inclusive time (project and dependency code):",
    totalTable,
    "",
    "Self time by file:",
    fileTable,
  ].join("\n");
}

/** Indented call tree: inclusive ms and % of busy time, children above `minPct` of busy. */
export function formatCallTree(tree: CallTree, busyMs: number, minPct = 0.5): string {
  const lines: string[] = [];
  const visit = (node: CallTree, indent: string) => {
    lines.push(`${indent}${pct(node.ms, busyMs).padStart(6)} ${node.ms.toFixed(0).padStart(6)} ms  ${node.key}`);
    const children = [...node.children.values()].sort((a, b) => b.ms - a.ms);
    for (const child of children) if ((100 * child.ms) / busyMs >= minPct) visit(child, `${indent}  `);
  };
  visit(tree, "");
  return lines.join("\n");
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const args = process.argv.slice(2);
  const take = (flag: string): string | undefined => {
    const at = args.indexOf(flag);
    return at >= 0 ? args.splice(at, 2)[1] : undefined;
  };
  const top = Number(take("--top") ?? 10);
  const focus = take("--tree")?.split(",");
  const depth = Number(take("--depth") ?? 3);
  const allThreads = args.includes("--all-threads");
  const paths = args.filter((a) => a !== "--all-threads");
  if (paths.length === 0) {
    process.stderr.write(
      "usage: npx tsx bench/profile-summary.ts DIR|FILE.cpuprofile … [--top N] [--tree fnA,fnB [--depth D]] [--all-threads]\n",
    );
    process.exit(2);
  }
  const summary = summariseProfiles(paths, { focus, focusDepth: depth, allThreads });
  process.stdout.write(`${formatProfileSummary(summary, top, paths.join(", "))}\n`);
  for (const tree of summary.trees.values())
    process.stdout.write(`\nCall tree under ${tree.key}:\n${formatCallTree(tree, summary.busyMs)}\n`);
}
