import type { Command } from "commander";
import { Argument } from "commander";
import { readEnv } from "../deployment.js";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

/**
 * `daon healthcheck api|node` (ops.md §2): what Docker's HEALTHCHECK and systemd's watchdog
 * run. Exit 0 when the local service answers healthy within 5 s, else 1, with one line why.
 */
export function registerHealthcheck(program: Command): void {
  program
    .command("healthcheck")
    .description("exit 0 if the local API (/health 200) or node (/status, not catching up) is healthy")
    .addArgument(new Argument("<service>", "api or node").choices(["api", "node"]))
    .option("--url <url>", "ask this URL instead of the one from .env")
    .action(async (service: "api" | "node", options) => {
      const envFile = resolve(program.opts().envFile);
      const env = { ...(existsSync(envFile) ? readEnv(envFile) : {}), ...process.env };
      const base =
        options.url ?? (service === "api" ? `http://127.0.0.1:${env.PORT ?? "3000"}` : (env.CHAIN_RPC ?? "http://127.0.0.1:26657"));
      const url = `${base.replace(/\/$/, "")}${service === "api" ? "/health" : "/status"}`;
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const body = (await response.json()) as {
          status?: string;
          result?: { sync_info?: { catching_up?: boolean; latest_block_height?: string } };
        };
        const healthy = service === "api" ? response.status === 200 : response.ok && body.result?.sync_info?.catching_up === false;
        const said =
          service === "api" ? `${response.status} ${body.status ?? ""}` : `height ${body.result?.sync_info?.latest_block_height ?? "?"}`;
        process.stdout.write(`${healthy ? "healthy" : "unhealthy"}: ${url} ${said}\n`);
        process.exitCode = healthy ? 0 : 1;
      } catch (error) {
        process.stdout.write(`unhealthy: ${url} ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
