import type { Command } from "commander";
import { deploymentPaths } from "../deployment.js";
import { formatOutcome, formatSummary, runPreflight } from "../preflight/run.js";

/** Registers `daon preflight` (ops.md §3); `scripts/operations/pre-launch-check.sh` runs it. */
export function registerPreflight(program: Command): void {
  program
    .command("preflight")
    .description("check that the deployment is ready for launch: 26 checks, PASS/WARN/FAIL, READY or NOT READY")
    .option("--public-host <host>", "check the TLS certificate of this host (default PUBLIC_HOST)")
    .option("--expect-chain <id>", "the chain ID every part must have")
    .option("--strict", "WARN fails too (T-2h)")
    .option("--quick", "no backup restore test and no npm audit (both WARN)")
    .option("--smoke", "register one tagged test work and follow it to the ledger")
    .option("--only <ids>", "run only these checks (ids or numbers, comma-separated); the rest WARN as skipped")
    .option("--skip <ids>", "skip these checks (WARN as skipped)")
    .action(async (options) => {
      const globals = program.opts();
      const deployment = deploymentPaths({ envFile: globals.envFile });
      const report = await runPreflight(deployment, options, (outcome) => {
        if (!globals.json) process.stdout.write(`${formatOutcome(outcome)}\n`);
      });
      if (globals.json) process.stdout.write(`${JSON.stringify({ command: "preflight", ok: report.ready, ...report })}\n`);
      else process.stdout.write(`${formatSummary(report)}\n`);
      process.exitCode = report.exitCode;
    });
}
