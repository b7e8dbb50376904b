import type { AddressInfo } from "node:net";
import { type LoadedHome, loadHome } from "./home/home.js";
import { LedgerNode } from "./node.js";
import { RpcServer } from "./rpc/server.js";

/** A running node with its RPC: what `daon node` and `daon up` start and stop. */
export class LedgerService {
  private constructor(
    readonly node: LedgerNode,
    readonly rpc: RpcServer,
    readonly address: AddressInfo,
  ) {}

  get rpcUrl(): string {
    return `http://${this.address.address.includes(":") ? `[${this.address.address}]` : this.address.address}:${this.address.port}`;
  }

  /** Starts from a home directory; `rpcListen` overrides the config's `rpc.laddr` (tests use port 0). */
  static async start(homeOrDir: string | LoadedHome, options: { rpcListen?: string } = {}): Promise<LedgerService> {
    const home = typeof homeOrDir === "string" ? await loadHome(homeOrDir) : homeOrDir;
    const node = await LedgerNode.open(home);
    const { host, port } = parseListen(options.rpcListen ?? home.config.rpc.laddr);
    const rpc = new RpcServer(node, home.config.rpc.maxBodyBytes);
    let address: AddressInfo;
    try {
      address = await rpc.listen(host, port);
    } catch (error) {
      await node.stop();
      throw new Error(`cannot listen for RPC on ${host}:${port}: ${(error as Error).message}`);
    }
    node.start();
    return new LedgerService(node, rpc, address);
  }

  async stop(): Promise<void> {
    await this.rpc.close();
    await this.node.stop();
  }
}

/** `tcp://127.0.0.1:26657` → host and port. */
export function parseListen(laddr: string): { host: string; port: number } {
  const match = /^(?:tcp:\/\/)?\[?([^\]]*?)\]?:(\d+)$/.exec(laddr.trim());
  if (!match) throw new Error(`rpc.laddr ${JSON.stringify(laddr)} is not tcp://host:port`);
  return { host: match[1] || "0.0.0.0", port: Number(match[2]) };
}
