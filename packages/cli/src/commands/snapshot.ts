import { resolve } from "node:path";
import { snapshotLedgerHome } from "@daon/chain";
import type { Command } from "commander";
import { UsageError } from "../deployment.js";
import { runCommand } from "../services/operation.js";

/**
 * `daon node snapshot --home DIR --out DIR` (ops.md §5, §13): the ledger home at one committed
 * height, through the running node's admin socket (block production pauses for the copy), or
 * copied directly when no node runs on the home. Keys only with `--with-keys`.
 */
export function registerNodeSnapshot(node: Command, program: Command): void {
  node
    .command("snapshot")
    .description("copy the ledger home at one committed height (the running node pauses between two blocks for it)")
    .option("--home <dir>", "node home (config/ and data/)")
    .requiredOption("--out <dir>", "where the copy goes (new or empty)")
    .option("--with-keys", "copy the validator and node keys too")
    .action(async (options: { home?: string; out: string; withKeys?: boolean }) => {
      await runCommand({ command: "node snapshot", json: Boolean(program.opts().json) }, async () => {
        const home = options.home ?? (node.opts().home as string | undefined);
        if (!home) throw new UsageError("--home is required");
        const out = resolve(options.out);
        const snapshot = await snapshotLedgerHome(resolve(home), out, { keys: options.withKeys === true });
        return {
          result: { out, ...snapshot },
          human: `ledger ${snapshot.chainId} at height ${snapshot.height} (app hash ${snapshot.appHash}) copied to ${out}${snapshot.keys ? ", keys included" : ""}`,
        };
      });
    });
}
