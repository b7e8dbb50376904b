import type { AddressInfo } from "node:net";
import { AdminSocket } from "./admin/admin-socket.js";
import { type LoadedHome, loadHome } from "./home/home.js";
import { NodeMetrics } from "./metrics/node-metrics.js";
import { LedgerNode } from "./node.js";
import { RpcServer } from "./rpc/server.js";

/** A running node with its RPC: what `daon node` and `daon up` start and stop. */
export class LedgerService {
  #admin: AdminSocket | undefined;

  private constructor(
    readonly node: LedgerNode,
    readonly rpc: RpcServer,
    readonly address: AddressInfo,
    /** Prometheus metrics (`[instrumentation]`), when enabled. */
    readonly metrics?: { server: NodeMetrics; address: AddressInfo },
  ) {}

  get metricsUrl(): string | undefined {
    const address = this.metrics?.address;
    return address && `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}/metrics`;
  }

  get rpcUrl(): string {
    return `http://${this.address.address.includes(":") ? `[${this.address.address}]` : this.address.address}:${this.address.port}`;
  }

  /**
   * Starts from a home directory; `rpcListen` overrides the config's `rpc.laddr` (tests use port 0),
   * `prometheusListen` turns metrics on at that address whatever `[instrumentation]` says.
   */
  static async start(
    homeOrDir: string | LoadedHome,
    options: { rpcListen?: string; prometheusListen?: string } = {},
  ): Promise<LedgerService> {
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
    const instrumentation = home.config.instrumentation;
    const metricsListen = options.prometheusListen ?? (instrumentation?.prometheus ? instrumentation.prometheusListenAddr : undefined);
    let metrics: { server: NodeMetrics; address: AddressInfo } | undefined;
    if (metricsListen !== undefined) {
      const server = new NodeMetrics(node, instrumentation?.namespace);
      const listen = parseListen(metricsListen);
      try {
        metrics = { server, address: await server.listen(listen.host, listen.port) };
      } catch (error) {
        await server.close().catch(() => {});
        await rpc.close();
        await node.stop();
        throw new Error(`cannot listen for metrics on ${listen.host}:${listen.port}: ${(error as Error).message}`);
      }
    }
    node.start();
    const service = new LedgerService(node, rpc, address, metrics);
    await service.#openAdmin();
    return service;
  }

  /** The admin socket (`daon node snapshot`); a node that cannot open it does not run. */
  async #openAdmin(): Promise<void> {
    try {
      this.#admin = await AdminSocket.open(this.node);
    } catch (error) {
      await this.stop();
      throw new Error(`cannot open the admin socket in ${this.node.home.paths.home}: ${(error as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    await this.#admin?.close();
    await this.metrics?.server.close();
    await this.rpc.close();
    await this.node.stop();
  }
}

/** `tcp://127.0.0.1:26657` (or CometBFT's `:26660`, all interfaces) → host and port. */
export function parseListen(laddr: string): { host: string; port: number } {
  const match = /^(?:tcp:\/\/)?\[?([^\]]*?)\]?:(\d+)$/.exec(laddr.trim());
  if (!match) throw new Error(`listen address ${JSON.stringify(laddr)} is not tcp://host:port or :port`);
  return { host: match[1] || "0.0.0.0", port: Number(match[2]) };
}
