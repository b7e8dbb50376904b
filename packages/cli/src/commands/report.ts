import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "@daon/chain";
import type { Command } from "commander";
import { deploymentPaths, readEnv, UsageError } from "../deployment.js";
import { parseDuration } from "../loadtest/duration.js";
import { launchReport } from "../report/launch-report.js";

/** An ISO time, or a duration (`24h`) back from `from`. */
function parseTime(text: string, what: string, from: Date): Date {
  if (/^(\d+(ms|d|h|m|s))+$/.test(text.trim())) return new Date(from.getTime() - parseDuration(text, what));
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text.trim()) || Number.isNaN(at.getTime())) {
    throw new UsageError(`${what} ${JSON.stringify(text)} must be an ISO 8601 time (2026-03-01T12:00:00Z) or a duration such as 24h`);
  }
  return at;
}

/** `daon report --since 24h` (ops.md §9): the runbook's post-launch report, filled from real data. */
export function registerReport(program: Command): void {
  program
    .command("report")
    .description("the runbook's post-launch report from the API's minute statistics, the database and the ledger")
    .option("--since <when>", "window start: a duration before --until (24h) or an ISO time", "24h")
    .option("--until <when>", "window end: an ISO time or a duration before now (default now)")
    .option("--launch-time <time>", "launch time (default run/launch.json, else the ledger's genesis time)")
    .option("--out <file>", "also write the report to this file")
    .option("--include-test-traffic", "count load-test and smoke traffic too")
    .option("--api-url <url>", "an API instance (default http://localhost:<PORT from .env, or 3000>)")
    .option("--rpc-url <url>", "the ledger node's RPC (default CHAIN_RPC from .env)")
    .action(async (options) => {
      const globals = program.opts();
      const deployment = deploymentPaths({ envFile: globals.envFile });
      const settings: Record<string, string | undefined> = {
        ...(existsSync(deployment.envFile) ? readEnv(deployment.envFile) : {}),
        ...process.env,
      };
      const now = new Date();
      const until = options.until === undefined ? now : parseTime(options.until, "--until", now);
      const since = parseTime(options.since, "--since", until);
      if (since >= until) throw new UsageError("--since must be before --until");
      const launchTime = options.launchTime === undefined ? undefined : parseTime(options.launchTime, "--launch-time", now);

      const report = await launchReport({
        apiUrl: options.apiUrl ?? `http://localhost:${settings.PORT ?? 3000}`,
        rpcUrl: options.rpcUrl ?? settings.CHAIN_RPC ?? "http://127.0.0.1:26657",
        since,
        until,
        launchTime,
        launchFile: join(deployment.stateDir, "run", "launch.json"),
        includeTestTraffic: Boolean(options.includeTestTraffic),
        settings,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (options.out) await writeFileAtomic(resolve(options.out), report.markdown);
      for (const failure of report.failures) process.stderr.write(`report: ${failure}\n`);
      const exitCode = report.failures.length > 0 ? 1 : 0;
      process.stdout.write(
        globals.json
          ? `${JSON.stringify({
              command: "report",
              ok: exitCode === 0,
              exitCode,
              launch: report.launch.text,
              window: report.window,
              figures: Object.fromEntries(Object.entries(report.figures).map(([name, f]) => [name, f.text])),
              excludedTestTraffic: report.excluded,
              issues: report.issues,
              failures: report.failures,
              markdown: report.markdown,
            })}\n`
          : report.markdown,
      );
      process.exitCode = exitCode;
    });
}
