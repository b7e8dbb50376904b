import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectSecp256k1HdWallet, type GeneratedType, Registry } from "@cosmjs/proto-signing";
import { defaultRegistryTypes } from "@cosmjs/stargate";
import { registryTypes } from "@daon/core";
import { initHome, LedgerService, type NodeConfig } from "../src/index.js";

/** A throwaway chain for tests: a home in a temp dir with funded wallets, and its running node. */
export interface TestChain {
  dir: string;
  home: string;
  chainId: string;
  wallets: DirectSecp256k1HdWallet[];
  addresses: string[];
  service: LedgerService;
  rpcUrl: string;
  stop(): Promise<void>;
}

export function daonRegistry(): Registry {
  return new Registry([...defaultRegistryTypes, ...registryTypes.map((type): [string, GeneratedType] => [type.typeUrl, type])]);
}

export async function createTestHome(options: { wallets?: number; consensus?: Partial<NodeConfig["consensus"]> } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "daon-chain-"));
  const wallets = await Promise.all(
    Array.from({ length: options.wallets ?? 2 }, () => DirectSecp256k1HdWallet.generate(24, { prefix: "daon" })),
  );
  const addresses = await Promise.all(wallets.map(async (w) => (await w.getAccounts())[0].address));
  const chainId = `daon-test-${Math.random().toString(36).slice(2, 10)}`;
  const home = join(dir, "node");
  await initHome({
    home,
    chainId,
    accounts: addresses,
    config: {
      consensus: { timeoutCommitMs: 200, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 0, ...options.consensus },
    } as Partial<NodeConfig>,
  });
  return { dir, home, chainId, wallets, addresses };
}

export async function startTestChain(options: Parameters<typeof createTestHome>[0] = {}): Promise<TestChain> {
  const created = await createTestHome(options);
  const service = await LedgerService.start(created.home, { rpcListen: "tcp://127.0.0.1:0" });
  // Clients read the latest block hash from /status, which exists from height 1 on.
  while (service.node.height < 1) await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    ...created,
    service,
    rpcUrl: service.rpcUrl,
    async stop() {
      await service.stop();
      await rm(created.dir, { recursive: true, force: true });
    },
  };
}

/** A ledger content hash derived from a test's own label, so runs never collide. */
export function contentHash(label: string): string {
  return `sha256:${createHash("sha256").update(label).digest("hex")}`;
}
