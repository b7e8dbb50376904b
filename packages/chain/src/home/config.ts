import { parse } from "smol-toml";

/** The parts of CometBFT's `config.toml` this node honours, with CometBFT's names. */
export interface NodeConfig {
  moniker: string;
  rpc: { laddr: string; maxBodyBytes: number };
  mempool: { size: number; maxTxBytes: number; maxTxsBytes: number };
  consensus: { timeoutCommitMs: number; createEmptyBlocks: boolean; createEmptyBlocksIntervalMs: number };
  /** Prometheus metrics, off by default as in CometBFT; `daon node --prometheus-laddr` turns them on. */
  instrumentation?: { prometheus: boolean; prometheusListenAddr: string; namespace: string };
}

export const defaultConfig: NodeConfig = {
  moniker: "daon-node",
  rpc: { laddr: "tcp://127.0.0.1:26657", maxBodyBytes: 1_000_000 },
  mempool: { size: 5000, maxTxBytes: 1_048_576, maxTxsBytes: 1_073_741_824 },
  consensus: { timeoutCommitMs: 1000, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 30_000 },
  instrumentation: { prometheus: false, prometheusListenAddr: ":26660", namespace: "cometbft" },
};

/** Go duration strings as CometBFT writes them ("1s", "500ms", "1m30s"). */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return parts.reduce((total, [, n, unit]) => total + Number(n) * units[unit], 0);
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function parseConfig(text: string): NodeConfig {
  const toml = parse(text) as Record<string, Record<string, unknown> | unknown>;
  const section = (name: string) => (toml[name] ?? {}) as Record<string, unknown>;
  const rpc = section("rpc");
  const mempool = section("mempool");
  const consensus = section("consensus");
  const instrumentation = section("instrumentation");
  const d = defaultConfig;
  const di = defaultConfig.instrumentation!;
  return {
    moniker: String(toml.moniker ?? d.moniker),
    rpc: {
      laddr: String(rpc.laddr ?? d.rpc.laddr),
      maxBodyBytes: Number(rpc.max_body_bytes ?? d.rpc.maxBodyBytes),
    },
    mempool: {
      size: Number(mempool.size ?? d.mempool.size),
      maxTxBytes: Number(mempool.max_tx_bytes ?? d.mempool.maxTxBytes),
      maxTxsBytes: Number(mempool.max_txs_bytes ?? d.mempool.maxTxsBytes),
    },
    consensus: {
      timeoutCommitMs:
        consensus.timeout_commit === undefined ? d.consensus.timeoutCommitMs : parseDuration(String(consensus.timeout_commit)),
      createEmptyBlocks:
        consensus.create_empty_blocks === undefined ? d.consensus.createEmptyBlocks : Boolean(consensus.create_empty_blocks),
      createEmptyBlocksIntervalMs:
        consensus.create_empty_blocks_interval === undefined
          ? d.consensus.createEmptyBlocksIntervalMs
          : parseDuration(String(consensus.create_empty_blocks_interval)),
    },
    instrumentation: {
      prometheus: instrumentation.prometheus === undefined ? di.prometheus : Boolean(instrumentation.prometheus),
      prometheusListenAddr: String(instrumentation.prometheus_listen_addr ?? di.prometheusListenAddr),
      namespace: String(instrumentation.namespace ?? di.namespace),
    },
  };
}

export function renderConfig(config: NodeConfig): string {
  const instrumentation = config.instrumentation ?? defaultConfig.instrumentation!;
  return `# DAON ledger node configuration (CometBFT config.toml names)
moniker = ${JSON.stringify(config.moniker)}

[rpc]
laddr = ${JSON.stringify(config.rpc.laddr)}
max_body_bytes = ${config.rpc.maxBodyBytes}

[mempool]
size = ${config.mempool.size}
max_tx_bytes = ${config.mempool.maxTxBytes}
max_txs_bytes = ${config.mempool.maxTxsBytes}

[consensus]
timeout_commit = ${JSON.stringify(formatDuration(config.consensus.timeoutCommitMs))}
create_empty_blocks = ${config.consensus.createEmptyBlocks}
create_empty_blocks_interval = ${JSON.stringify(formatDuration(config.consensus.createEmptyBlocksIntervalMs))}

[instrumentation]
prometheus = ${instrumentation.prometheus}
prometheus_listen_addr = ${JSON.stringify(instrumentation.prometheusListenAddr)}
namespace = ${JSON.stringify(instrumentation.namespace)}
`;
}
