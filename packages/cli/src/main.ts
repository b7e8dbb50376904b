#!/usr/bin/env node
import { Command } from "commander";
import { ConfigError } from "@daon/api";
import { registerInit } from "./commands/init.js";
import { registerPreflight } from "./commands/preflight.js";
import { registerStatus } from "./commands/status.js";
import { registerHealthcheck } from "./commands/healthcheck.js";
import { registerRotateKeys } from "./commands/rotate-keys.js";
import { registerLoadtest } from "./commands/loadtest.js";
import { registerReport } from "./commands/report.js";
import { runApi, runNode, runUp } from "./commands/serve.js";
import { registerProtect } from "./commands/protect.js";
import { registerReindex } from "./commands/reindex.js";
import { registerVerify } from "./commands/verify.js";
import { registerBackup } from "./commands/backup.js";
import { registerRestore } from "./commands/restore.js";
import { registerRollback } from "./commands/rollback.js";
import { registerNodeSnapshot } from "./commands/snapshot.js";
import { registerWipeAndReset } from "./commands/wipe-and-reset.js";
import { deploymentPaths, UsageError } from "./deployment.js";

const log = (line: string) => process.stderr.write(`${line}\n`);

const program = new Command()
  .name("daon")
  .description("Run and operate a DAON deployment")
  .option("--env-file <path>", "deployment settings", ".env")
  .option("--json", "print one JSON document as the result")
  .showHelpAfterError();

function print(result: Record<string, unknown>, human: string): void {
  process.stdout.write(program.opts().json ? `${JSON.stringify({ ok: true, exitCode: 0, ...result })}\n` : `${human}\n`);
}

registerInit(program, print);
registerPreflight(program);
registerStatus(program);
registerHealthcheck(program);
registerRotateKeys(program, print);
registerLoadtest(program);
registerReport(program);
registerProtect(program, print);
registerVerify(program, print);
registerReindex(program);
registerBackup(program);
registerRestore(program);
registerWipeAndReset(program);
registerRollback(program);

/** The API serves the portal from packages/web/dist: build it when its sources changed (esbuild, well under a second). */
async function ensurePortal(): Promise<void> {
  try {
    const { ensurePortalBuilt } = await import("@daon/web/build");
    if ((await ensurePortalBuilt()).built) log("portal built");
  } catch (error) {
    log(`portal not built (${(error as Error).message.split("\n")[0]}); the API serves a minimal page instead`);
  }
}

const nodeCommand = program
  .command("node")
  .description("run the ledger node of a home directory")
  // Not required here: `daon node snapshot --home DIR` gives it to this command, before the subcommand.
  .option("--home <dir>", "node home (config/ and data/); required")
  .option("--rpc-laddr <addr>", "override config.toml rpc.laddr, e.g. tcp://127.0.0.1:26657")
  .option("--prometheus-laddr <addr>", "serve Prometheus metrics there, e.g. 127.0.0.1:26660 (config.toml [instrumentation])")
  .action(async (options) => {
    if (!options.home) throw new UsageError("required option '--home <dir>' not specified");
    const deployment = deploymentPaths({ envFile: program.opts().envFile });
    process.exit(await runNode(deployment, options, log));
  });
registerNodeSnapshot(nodeCommand, program);

program
  .command("up")
  .description("run everything in one process (creates an embedded test deployment first if there is none)")
  .option("--state-dir <dir>", "state directory (default ./data)")
  .option("--rpc-laddr <addr>", "override the ledger's config.toml rpc.laddr")
  .option("--prometheus-laddr <addr>", "serve the ledger's Prometheus metrics there, e.g. 127.0.0.1:26660")
  .action(async (options) => {
    const deployment = deploymentPaths({ envFile: program.opts().envFile, stateDir: options.stateDir });
    await ensurePortal();
    process.exit(await runUp(deployment, options, log));
  });

program
  .command("api")
  .description("run the HTTP API alone, against the ledger node at CHAIN_RPC")
  .option("--port <port>", "listen port (default PORT or 3000)")
  .action(async (options) => {
    const deployment = deploymentPaths({ envFile: program.opts().envFile });
    await ensurePortal();
    process.exit(await runApi(deployment, options, log));
  });

// A reader that stops early (`daon preflight | head`) is not an error of ours.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

program.parseAsync().catch((error: Error) => {
  log(`daon: ${error.message}`);
  process.exitCode = error instanceof UsageError || error instanceof ConfigError ? 2 : 1;
});
