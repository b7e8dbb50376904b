/**
 * `npm run bench` — performance figures against the targets, with a met / not-met table.
 *
 * Options (after `npm run bench --`):
 *   --profile[=DIR]   run the measured ledger nodes with --cpu-prof (default DIR /tmp/daon-prof) and print the hot functions
 *   --duration=S      length of each sustained window (default 20)
 *   --concurrency=N   requests in flight (default 32)
 *   --only=NAME       run one suite (ledger)
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanUpNow, installCleanupHandlers, ownDir, removeDir } from "./lib/cleanup.js";
import { type BenchSection, formatSection, verdict } from "./lib/report.js";
import { runApiBench } from "./api.js";
import { runLedgerBench } from "./ledger.js";
import { runWebhookBench } from "./webhooks.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function option(name: string): string | undefined {
  const prefix = `--${name}`;
  for (const arg of process.argv.slice(2)) {
    if (arg === prefix) return "";
    if (arg.startsWith(`${prefix}=`)) return arg.slice(prefix.length + 1);
  }
  return undefined;
}

const profile = option("profile");
const options = {
  durationS: Number(option("duration") || 20),
  concurrency: Number(option("concurrency") || 32),
  profileDir: profile === undefined ? undefined : resolve(profile || "/tmp/daon-prof"),
  only: option("only"),
};

const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Suites run in order; the API benches join this list. */
const suites: { name: string; run: (workDir: string) => Promise<BenchSection> }[] = [
  {
    name: "ledger",
    run: (workDir) =>
      runLedgerBench({
        repoRoot,
        workDir,
        durationS: options.durationS,
        concurrency: options.concurrency,
        profileDir: options.profileDir,
        log,
      }),
  },
  {
    name: "api",
    run: () =>
      runApiBench({
        title: "Content API (embedded: PGlite)",
        repoRoot,
        durationS: Math.min(options.durationS, 10),
        connections: [100, 500, 1500],
        log,
      }),
  },
  {
    name: "api-postgres",
    run: () =>
      runApiBench({
        title: "Content API (PostgreSQL + Redis)",
        repoRoot,
        durationS: Math.min(options.durationS, 10),
        connections: [100, 500, 1500],
        databaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
        redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/3",
        log,
      }),
  },
  {
    name: "webhooks",
    run: () =>
      runWebhookBench({
        deliveries: 3000,
        concurrency: 16,
        databaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
        log,
      }),
  },
];

async function main(): Promise<number> {
  installCleanupHandlers();
  const started = performance.now();
  const sections: BenchSection[] = [];
  for (const suite of suites) {
    if (options.only && options.only !== suite.name) continue;
    const workDir = await mkdtemp(join(tmpdir(), `daon-bench-${suite.name}-`));
    ownDir(workDir);
    try {
      sections.push(await suite.run(workDir));
    } finally {
      removeDir(workDir);
    }
  }
  const out = [`# DAON bench (${new Date().toISOString()}, ${((performance.now() - started) / 1000).toFixed(0)} s)`, ""];
  for (const section of sections) out.push(formatSection(section));
  const missed = sections.flatMap((s) => s.rows.filter((r) => verdict(r) === "NOT met").map((r) => r.figure));
  out.push(missed.length ? `Targets NOT met: ${missed.join("; ")}` : "All targets met.");
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

main()
  .then((code) => {
    cleanUpNow();
    process.exit(code);
  })
  .catch((error: Error) => {
    log(`bench failed: ${error.stack ?? error.message}`);
    cleanUpNow();
    process.exit(1);
  });
