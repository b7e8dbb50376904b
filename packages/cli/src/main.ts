#!/usr/bin/env node
import { existsSync } from "node:fs";
import { Command, Option } from "commander";
import { ApiService, ConfigError, loadConfig } from "@daon/api";
import { initDeployment } from "./commands/init.js";
import { runUntilSignalled, startNode } from "./commands/node.js";
import { type Deployment, deploymentPaths, readEnv, UsageError } from "./deployment.js";

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

program
  .command("init")
  .description("create a deployment: ledger keys, genesis, config, API wallet and .env")
  .addOption(new Option("--profile <profile>", "embedded or production").choices(["embedded", "production"]).default("embedded"))
  .option("--mainnet", "production chain daon-mainnet-1")
  .option("--test [suffix]", "test chain daon-test-<suffix> (default: the current UTC time)")
  .option("--chain-id <id>", "explicit chain ID")
  .option("--state-dir <dir>", "where keys, secrets and data go (default ./data)")
  .action(async (options) => {
    const deployment = deploymentPaths({ envFile: program.opts().envFile, stateDir: options.stateDir });
    const result = await initDeployment(deployment, options);
    print(
      { command: "init", ...result },
      [
        `chain ID:          ${result.chainId}`,
        `API wallet:        ${result.walletAddress}`,
        `validator address: ${result.validatorAddress}`,
        `ledger home:       ${result.nodeHome}`,
        `wallet file:       ${result.walletFile}`,
        `settings:          ${result.envFile}`,
        "Save the wallet file to your vault.",
      ].join("\n"),
    );
  });

program
  .command("node")
  .description("run the ledger node of a home directory")
  .requiredOption("--home <dir>", "node home (config/ and data/)")
  .option("--rpc-laddr <addr>", "override config.toml rpc.laddr, e.g. tcp://127.0.0.1:26657")
  .action(async (options) => {
    const service = await startNode(options.home, options.rpcLaddr, log);
    process.exitCode = await runUntilSignalled(service, log);
  });

program
  .command("up")
  .description("run everything in one process (creates an embedded test deployment first if there is none)")
  .option("--state-dir <dir>", "state directory (default ./data)")
  .option("--rpc-laddr <addr>", "override the ledger's config.toml rpc.laddr")
  .action(async (options) => {
    const deployment = deploymentPaths({ envFile: program.opts().envFile, stateDir: options.stateDir });
    if (!existsSync(deployment.envFile)) {
      log(`no ${deployment.envFile}: creating an embedded test deployment under ${deployment.stateDir}`);
      const created = await initDeployment(deployment, { profile: "embedded", test: true });
      log(`created test chain ${created.chainId}; API wallet ${created.walletAddress}`);
    }
    const node = await startNode(deployment.nodeHome, options.rpcLaddr, log);
    const api = await ApiService.start(apiConfig(deployment, { CHAIN_RPC: node.rpcUrl }));
    log(`ready: API ${api.url} (docs ${api.url}/docs), ledger RPC ${node.rpcUrl}`);
    process.exitCode = await runUntilSignalled({ stop: async () => (await api.stop(), await node.stop()) }, log);
  });

program
  .command("api")
  .description("run the HTTP API alone, against the ledger node at CHAIN_RPC")
  .option("--port <port>", "listen port (default PORT or 3000)")
  .action(async (options) => {
    const deployment = deploymentPaths({ envFile: program.opts().envFile });
    const api = await ApiService.start(apiConfig(deployment, options.port ? { PORT: options.port } : {}));
    log(`ready: API ${api.url} against ledger ${api.config.CHAIN_RPC}`);
    process.exitCode = await runUntilSignalled(api, log);
  });

/** API settings: `.env`, then the process environment, then what the command knows. */
function apiConfig(deployment: Deployment, overrides: Record<string, string>) {
  const fromFile = existsSync(deployment.envFile) ? readEnv(deployment.envFile) : {};
  return loadConfig({ DAON_STATE_DIR: deployment.stateDir, ...fromFile, ...process.env, ...overrides });
}

program.parseAsync().catch((error: Error) => {
  log(`daon: ${error.message}`);
  process.exitCode = error instanceof UsageError || error instanceof ConfigError ? 2 : 1;
});
