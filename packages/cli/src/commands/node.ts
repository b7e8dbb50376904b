import { LedgerService } from "@daon/chain";

/** Runs until SIGTERM/SIGINT, then stops after the block being committed; resolves with the exit status. */
export async function runUntilSignalled(service: { stop(): Promise<void> }, log: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(`${signal} again: exiting now`);
        return resolve(1);
      }
      stopping = true;
      log(`${signal}: stopping after the current block`);
      service.stop().then(
        () => resolve(0),
        (error) => {
          log(`stop failed: ${(error as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

export async function startNode(home: string, rpcListen: string | undefined, log: (line: string) => void): Promise<LedgerService> {
  const service = await LedgerService.start(home, { rpcListen });
  service.node.events.on("fatal", (error: Error) => {
    log(`fatal: ${error.message}`);
    process.exit(1);
  });
  log(`ledger node ${service.node.chainId} at height ${service.node.height}; RPC ${service.rpcUrl}`);
  return service;
}
