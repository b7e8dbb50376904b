import { existsSync } from "node:fs";
import { join } from "node:path";
import { confirm } from "@inquirer/prompts";
import { type Command, Option } from "commander";
import { deploymentPaths, readEnv, UsageError } from "../deployment.js";
import { runLoadTest, runShape } from "../loadtest/load-test.js";
import type { Profile } from "../loadtest/thresholds.js";

/** `daon loadtest URL USERS DURATION` (ops.md §4); the runbook's scripts/testing/run-load-test.sh runs it. */
export function registerLoadtest(program: Command): void {
  program
    .command("loadtest")
    .description("load-test an API with virtual users (protect, verify, stats) and write a report")
    .argument("[url]", "the API to test", "http://localhost:3000")
    .argument("[users]", "virtual users, each with one keep-alive connection", "1500")
    .argument("[duration]", "how long the load lasts, ramps included: 90s, 15m, 1h30m", "20m")
    .option("--ramp <duration>", "ramp up (and down) time; default 20 % of DURATION, at most 5m")
    .addOption(new Option("--profile <profile>", "thresholds: gate (T-5) or launch").choices(["gate", "launch"]).default("gate"))
    .option(
      "--threshold <K=V>",
      "override a threshold: error_rate, p95, p99, p95.<endpoint>, confirm_p95, confirmed, recovered (K=off drops it)",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option("--api-key <key>", "platform key for the requests (default DAON_LOADTEST_API_KEY, else one minted for the run)")
    .option("--out <dir>", "where the run's <YYYYMMDD_HHMMSS>/ directory goes (default <state>/load-tests/results)")
    .option("--allow-mainnet", "allow a target serving daon-mainnet-1")
    .option("--yes", "start without asking")
    .action(async (url: string, usersText: string, durationText: string, options) => {
      const globals = program.opts();
      const { users, durationMs, rampMs } = runShape(usersText, durationText, options.ramp);
      const deployment = deploymentPaths({ envFile: globals.envFile });
      const settings = { ...(existsSync(deployment.envFile) ? readEnv(deployment.envFile) : {}), ...process.env };
      const yes = Boolean(options.yes || globals.yes);

      const interrupt = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        if (interrupt.signal.aborted) {
          process.stderr.write(`${signal} again: exiting now\n`);
          process.exit(1);
        }
        process.stderr.write(`${signal}: stopping the users; requests in flight finish, then the report is written (again to exit now)\n`);
        interrupt.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const outcome = await runLoadTest({
          url,
          users,
          durationMs,
          rampMs,
          profile: options.profile as Profile,
          thresholds: options.threshold,
          apiKey: options.apiKey,
          resultsRoot: options.out ?? join(deployment.stateDir, "load-tests", "results"),
          allowMainnet: Boolean(options.allowMainnet),
          settings,
          confirm: yes
            ? undefined
            : async (message) => {
                if (!process.stdin.isTTY) throw new UsageError("off a terminal, pass --yes to start the load test");
                return confirm({ message, default: false });
              },
          log: (line) => process.stderr.write(`${line}\n`),
          interrupt: interrupt.signal,
        });
        const { results } = outcome;
        process.stdout.write(
          globals.json
            ? `${JSON.stringify({
                command: "loadtest",
                ok: outcome.exitCode === 0,
                exitCode: outcome.exitCode,
                verdict: outcome.verdict,
                dir: outcome.dir,
                runId: results.runId,
                tag: results.tag,
                requests: results.requests,
                thresholds: results.thresholds,
              })}\n`
            : `${[
                `${outcome.verdict}: ${results.requests.total} requests, ${results.requests.errors} errors, ${results.users} users for ${results.duration}`,
                ...results.thresholds.map((t) => `  ${t.pass ? "PASS" : "FAIL"} ${t.key}: ${t.measured} (limit ${t.limit})`),
                `report: ${join(outcome.dir, "REPORT.md")}`,
              ].join("\n")}\n`,
        );
        process.exitCode = outcome.exitCode;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
