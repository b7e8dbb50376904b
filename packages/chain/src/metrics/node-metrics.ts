import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpuUsage, memoryUsage, uptime } from "node:process";
import type { CommittedBlock, LedgerNode } from "../node.js";
import { timestampMs } from "../node.js";

/** CometBFT's buckets for `consensus_block_interval_seconds` (ExponentialBuckets(0.1, 1.5, 12)) plus the empty-block range. */
const BLOCK_INTERVAL_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 45, 60, 120];

/**
 * The node's Prometheus series under CometBFT's names (namespace `cometbft`, a `chain_id`
 * label on each), so dashboards and alerts written for CometBFT read this node unchanged.
 * Written by hand: a handful of series does not need a metrics library in the node.
 */
export class NodeMetrics {
  readonly #server: Server;
  readonly #onBlock: (block: CommittedBlock) => void;
  readonly #buckets = new Array<number>(BLOCK_INTERVAL_BUCKETS.length).fill(0);
  #intervalSum = 0;
  #intervalCount = 0;
  #totalTxs = 0;
  #lastBlockTxs = 0;
  #lastBlockBytes = 0;
  #lastBlockTimeMs: number | undefined;

  constructor(
    private readonly node: LedgerNode,
    private readonly namespace = "cometbft",
  ) {
    const latest = node.latestBlockTime;
    this.#lastBlockTimeMs = latest ? timestampMs(latest) : undefined;
    this.#onBlock = (block) => this.#observe(block);
    node.events.on("block", this.#onBlock);
    this.#server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" || path !== "/metrics") {
        res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("metrics are served at /metrics\n");
        return;
      }
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(this.exposition());
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.node.events.off("block", this.#onBlock);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #observe(block: CommittedBlock): void {
    const time = block.block.header?.time;
    const timeMs = time ? timestampMs(time) : undefined;
    if (timeMs !== undefined && this.#lastBlockTimeMs !== undefined) {
      const seconds = Math.max(0, (timeMs - this.#lastBlockTimeMs) / 1000);
      this.#intervalSum += seconds;
      this.#intervalCount += 1;
      BLOCK_INTERVAL_BUCKETS.forEach((bound, index) => {
        if (seconds <= bound) this.#buckets[index] += 1;
      });
    }
    if (timeMs !== undefined) this.#lastBlockTimeMs = timeMs;
    const txs = block.block.data?.txs ?? [];
    this.#lastBlockTxs = txs.length;
    this.#lastBlockBytes = txs.reduce((total, tx) => total + tx.length, 0);
    this.#totalTxs += txs.length;
  }

  /** The Prometheus text format (version 0.0.4). */
  exposition(): string {
    const ns = this.namespace;
    const label = `chain_id=${JSON.stringify(this.node.chainId)}`;
    const lines: string[] = [];
    const series = (name: string, type: "gauge" | "counter", help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${label}} ${value}`);
    };
    const height = this.node.height;
    // CometBFT's consensus_height is the height being decided: one above the latest committed block.
    series(`${ns}_consensus_height`, "gauge", "Height of the chain (the height being decided).", height + 1);
    series(`${ns}_consensus_latest_block_height`, "gauge", "The latest block height.", height);
    series(`${ns}_consensus_validators`, "gauge", "Number of validators.", 1);
    series(`${ns}_consensus_rounds`, "gauge", "Number of rounds.", 0);
    series(`${ns}_consensus_num_txs`, "gauge", "Number of transactions in the latest block.", this.#lastBlockTxs);
    series(`${ns}_consensus_total_txs`, "gauge", "Total number of transactions committed since the node started.", this.#totalTxs);
    series(`${ns}_consensus_block_size_bytes`, "gauge", "Size of the latest block's transactions in bytes.", this.#lastBlockBytes);
    const interval = `${ns}_consensus_block_interval_seconds`;
    lines.push(
      `# HELP ${interval} Time between this and the last block (Block.Header.Time) in seconds.`,
      `# TYPE ${interval} histogram`,
      ...BLOCK_INTERVAL_BUCKETS.map((bound, index) => `${interval}_bucket{${label},le="${bound}"} ${this.#buckets[index]}`),
      `${interval}_bucket{${label},le="+Inf"} ${this.#intervalCount}`,
      `${interval}_sum{${label}} ${this.#intervalSum}`,
      `${interval}_count{${label}} ${this.#intervalCount}`,
    );
    series(`${ns}_blocksync_syncing`, "gauge", "Either 0 (not block syncing) or 1 (syncing).", 0);
    series(`${ns}_mempool_size`, "gauge", "Number of uncommitted transactions in the mempool.", this.node.mempool.size);
    series(`${ns}_mempool_size_bytes`, "gauge", "Total size of the mempool in bytes.", this.node.mempool.bytes);
    series(`${ns}_p2p_peers`, "gauge", "Number of peers.", 0);
    const cpu = cpuUsage();
    lines.push(
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
      "# TYPE process_cpu_seconds_total counter",
      `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
      "# HELP process_resident_memory_bytes Resident memory size in bytes.",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${memoryUsage.rss()}`,
      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
      "# TYPE process_start_time_seconds gauge",
      `process_start_time_seconds ${Math.floor(Date.now() / 1000 - uptime())}`,
    );
    return `${lines.join("\n")}\n`;
  }
}
