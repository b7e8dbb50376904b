import { LedgerService } from "@daon/chain";

/**
 * Runs until SIGTERM/SIGINT, then stops gracefully (ops.md §2); resolves with the exit status:
 * 0 after a clean stop, 1 when a part did not stop in time (its name is logged). A second
 * signal exits 1 at once. SIGHUP calls `onReload` (secrets re-read from `.env`) and keeps running.
 */
export async function runUntilSignalled(
  service: { stop(): Promise<void> },
  log: (line: string) => void,
  options: { onReload?: () => Promise<void> } = {},
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(`${signal} again: exiting now`);
        process.exit(1);
      }
      stopping = true;
      log(`${signal}: draining, then stopping after the current block`);
      service.stop().then(
        () => {
          log("stopped cleanly");
          resolve(0);
        },
        (error) => {
          log(`stop failed: ${(error as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("SIGHUP", () => {
      if (stopping) return;
      if (!options.onReload) return log("SIGHUP: nothing to reload here");
      options.onReload().catch((error) => log(`SIGHUP: reload failed, the previous secrets stay in use: ${(error as Error).message}`));
    });
  });
}

export async function startNode(
  home: string,
  rpcListen: string | undefined,
  log: (line: string) => void,
  prometheusListen?: string,
): Promise<LedgerService> {
  const service = await LedgerService.start(home, { rpcListen, prometheusListen });
  service.node.events.on("fatal", (error: Error) => {
    log(`fatal: ${error.message}`);
    process.exit(1);
  });
  log(
    `ledger node ${service.node.chainId} at height ${service.node.height}; RPC ${service.rpcUrl}${service.metricsUrl ? `; metrics ${service.metricsUrl}` : ""}`,
  );
  return service;
}
