/**
 * Ledger node bench: committed registrations/s (100 messages per tx), committed tx/s
 * (1 message per tx), broadcast-to-commit latency, and baselines to compare them with.
 * The node runs as a child process (`daon node`); txs are signed offline with CosmJS
 * before each timed window and sent with `broadcast_tx_sync` over HTTP JSON-RPC.
 */
import { createHash, createPublicKey, randomBytes, verify as nodeVerify } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { DirectSecp256k1Wallet } from "@cosmjs/proto-signing";
import { initHome } from "@daon/chain";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { BaseAccount } from "cosmjs-types/cosmos/auth/v1beta1/auth";
import { QueryAccountRequest, QueryAccountResponse } from "cosmjs-types/cosmos/auth/v1beta1/query";
import WebSocket from "ws";
import { cpuBetween, cpuSnapshot } from "./lib/cpu.js";
import { type NodeProcess, startNodeProcess } from "./lib/node-process.js";
import { type BenchRow, type BenchSection, formatNumber, formatTable } from "./lib/report.js";
import { JsonRpcHttp, jsonRpcBody } from "./lib/rpc.js";
import { type SignJob, signInWorkers, signJob } from "./lib/signing.js";
import { percentile, rfc3339Ms, sleep, sum } from "./lib/stats.js";
import { formatCallTree, formatProfileSummary, summariseProfiles } from "./profile-summary.js";

export interface LedgerBenchOptions {
  repoRoot: string;
  /** Where homes go; the caller deletes it. */
  workDir: string;
  /** Length of each sustained window, seconds (default 20). */
  durationS: number;
  /** broadcast_tx_sync requests in flight (one per wallet, so each signer's sequence arrives in order). */
  concurrency: number;
  /** When set, the batched and unbatched nodes run with --cpu-prof into `<dir>/batched` and `<dir>/unbatched`. */
  profileDir?: string;
  log: (line: string) => void;
}

export const TARGET_REGISTRATIONS_PER_S = 5000;
export const TARGET_TX_PER_S = 300;
const TIMEOUT_COMMIT_MS = 1000;
const BATCH = 100;
/** Txs signed ahead of each window, as a multiple of (target rate × window): the node can show up to that multiple of the target. */
const PRESIGN_FACTOR = { batched: 1.5, unbatched: 3 };
const CODE_MEMPOOL_FULL = 20;
const CODE_WRONG_SEQUENCE = 32;

interface BenchWallet {
  address: string;
  privkeyHex: string;
  accountNumber: number;
  sequence: number;
}

interface SignedTx {
  /** Ready JSON-RPC body of broadcast_tx_sync. */
  body: Buffer;
  hash: string;
  messages: number;
}

interface BroadcastAnswer {
  code: number;
  codespace: string;
  log: string;
  hash: string;
}

interface Chain {
  label: string;
  chainId: string;
  home: string;
  wallets: BenchWallet[];
}

interface BlockStat {
  height: number;
  timeMs: number;
  txs: number;
  okTxs: number;
  registrations: number;
}

interface SendStats {
  accepted: number;
  rejected: Map<string, number>;
  mempoolFullRetries: number;
  transportErrors: number;
  rttMs: number[];
  startedAt: number;
  endedAt: number;
  unsent: number;
}

interface ThroughputRun {
  label: string;
  messagesPerTx: number;
  signed: number;
  signSeconds: number;
  send: SendStats;
  blocks: BlockStat[];
  /** Per second, counted over blocks after the first one holding our txs, up to the last one. */
  txPerS: number | undefined;
  registrationsPerS: number | undefined;
  windowS: number | undefined;
  /** The pre-signed txs ran out before the window ended: the node may be faster than measured. */
  supplyRanOut: boolean;
  committedTxs: number;
  committedRegistrations: number;
  failedInBlocks: number;
  nodeCpuShare: number | undefined;
  /** Cores used during the window by the bench process and by processes that are neither the bench nor the node. */
  benchCpu: number | undefined;
  otherCpu: number | undefined;
  meanBlockIntervalS: number | undefined;
  maxTxsPerBlock: number;
  /** Same, over full blocks only: blocks strictly between the first and the last (both partial by construction). */
  steadyTxPerS: number | undefined;
  steadyRegistrationsPerS: number | undefined;
  /** The timed window (sending + draining) in µs of CLOCK_MONOTONIC, to cut the node's CPU profile to it. */
  windowUs: { fromUs: number; toUs: number };
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Wallets over random keys: DirectSecp256k1HdWallet would spend ~0.7 s per wallet on BIP-39 here and re-derive the HD key on every signature. */
async function newWallets(count: number): Promise<Omit<BenchWallet, "accountNumber" | "sequence">[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const privkey = randomBytes(32);
      const [{ address }] = await (await DirectSecp256k1Wallet.fromKey(privkey, "daon")).getAccounts();
      return { address, privkeyHex: privkey.toString("hex") };
    }),
  );
}

/** A fresh home with the wallets funded in genesis (account numbers follow genesis order) and 1 s blocks. */
async function createChain(workDir: string, label: string, walletCount: number): Promise<Chain> {
  const wallets = await newWallets(walletCount);
  const chainId = `daon-test-bench-${label}-${randomBytes(3).toString("hex")}`;
  const home = join(workDir, label);
  await initHome({
    home,
    chainId,
    accounts: wallets.map((w) => w.address),
    config: { consensus: { timeoutCommitMs: TIMEOUT_COMMIT_MS, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 0 } },
  });
  return { label, chainId, home, wallets: wallets.map((w, index) => ({ ...w, accountNumber: index, sequence: 0 })) };
}

/** Checks that the node agrees with the account numbers and sequences the bench signs with. */
async function checkAccounts(rpc: JsonRpcHttp, chain: Chain): Promise<void> {
  for (const wallet of [chain.wallets[0], chain.wallets[chain.wallets.length - 1]]) {
    const data = Buffer.from(QueryAccountRequest.encode({ address: wallet.address }).finish()).toString("hex");
    const answer = await rpc.call<{ response: { code: number; value: string; log: string } }>("abci_query", {
      path: "/cosmos.auth.v1beta1.Query/Account",
      data,
    });
    if (answer.response.code !== 0) throw new Error(`account ${wallet.address}: ${answer.response.log}`);
    const account = BaseAccount.decode(QueryAccountResponse.decode(Buffer.from(answer.response.value, "base64")).account!.value);
    if (Number(account.accountNumber) !== wallet.accountNumber || Number(account.sequence) !== 0) {
      throw new Error(
        `account ${wallet.address}: node says number ${account.accountNumber} sequence ${account.sequence}, bench expects ${wallet.accountNumber}/0`,
      );
    }
  }
}

const runId = randomBytes(4).toString("hex");
let requestId = 0;

function toSignedTx(txBase64: string, hash: string, messages: number): SignedTx {
  return { body: jsonRpcBody("broadcast_tx_sync", { tx: txBase64 }, ++requestId), hash, messages };
}

/** Signs `perWallet` txs of `messagesPerTx` registrations for every wallet (on worker threads) and advances the tracked sequences. */
async function presign(chain: Chain, perWallet: number, messagesPerTx: number): Promise<SignedTx[][]> {
  const jobs: SignJob[] = chain.wallets.map((wallet) => ({
    privkeyHex: wallet.privkeyHex,
    accountNumber: wallet.accountNumber,
    chainId: chain.chainId,
    fromSequence: wallet.sequence,
    count: perWallet,
    messagesPerTx,
    labelPrefix: `bench/${runId}/${chain.label}`,
  }));
  const signed = await signInWorkers(jobs);
  for (const wallet of chain.wallets) wallet.sequence += perWallet;
  return signed.map((list) => list.map((tx) => toSignedTx(tx.txBase64, tx.hash, messagesPerTx)));
}

/**
 * One sender per wallet, each with one request in flight over a keep-alive connection, so a
 * signer's txs reach CheckTx in sequence order. "Mempool is full" is retried after a pause;
 * any other refusal stops that wallet (its later sequences could no longer pass).
 */
async function sendQueues(rpc: JsonRpcHttp, queues: SignedTx[][], deadline: number): Promise<SendStats> {
  const stats: SendStats = {
    accepted: 0,
    rejected: new Map(),
    mempoolFullRetries: 0,
    transportErrors: 0,
    rttMs: [],
    startedAt: performance.now(),
    endedAt: 0,
    unsent: 0,
  };
  await Promise.all(
    queues.map(async (queue) => {
      let next = 0;
      while (next < queue.length && performance.now() < deadline) {
        const sentAt = performance.now();
        let answer: BroadcastAnswer;
        try {
          const reply = await rpc.post(queue[next].body);
          if (reply.error) throw new Error(reply.error.data ?? reply.error.message);
          answer = reply.result as BroadcastAnswer;
        } catch {
          stats.transportErrors++;
          break;
        }
        stats.rttMs.push(performance.now() - sentAt);
        if (answer.code === 0) {
          stats.accepted++;
          next++;
        } else if (answer.code === CODE_MEMPOOL_FULL && answer.codespace === "sdk") {
          stats.mempoolFullRetries++;
          await sleep(25);
        } else {
          const reason = `${answer.codespace}/${answer.code}: ${answer.log.slice(0, 100)}`;
          stats.rejected.set(reason, (stats.rejected.get(reason) ?? 0) + 1);
          break;
        }
      }
      stats.unsent += queue.length - next;
    }),
  );
  stats.endedAt = performance.now();
  return stats;
}

async function height(rpc: JsonRpcHttp): Promise<number> {
  const status = await rpc.call<{ sync_info: { latest_block_height: string } }>("status");
  return Number(status.sync_info.latest_block_height);
}

/** Waits until the mempool is empty (the last block holding our txs is committed), up to `timeoutMs`. */
async function drain(rpc: JsonRpcHttp, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pending = await rpc.call<{ total: string }>("num_unconfirmed_txs");
    if (Number(pending.total) === 0) break;
    await sleep(100);
  }
  return height(rpc);
}

/** Block times and committed txs/registrations for heights in [from, to], from /blockchain and /block_results. */
async function blockStats(rpc: JsonRpcHttp, from: number, to: number): Promise<BlockStat[]> {
  const stats: BlockStat[] = [];
  for (let max = to; max >= from; max -= 20) {
    const min = Math.max(from, max - 19);
    const answer = await rpc.call<{ block_metas: { header: { height: string; time: string }; num_txs: string }[] }>("blockchain", {
      minHeight: String(min),
      maxHeight: String(max),
    });
    for (const meta of answer.block_metas) {
      stats.push({
        height: Number(meta.header.height),
        timeMs: rfc3339Ms(meta.header.time),
        txs: Number(meta.num_txs),
        okTxs: 0,
        registrations: 0,
      });
    }
  }
  stats.sort((a, b) => a.height - b.height);
  for (const block of stats) {
    if (block.txs === 0) continue;
    const results = await rpc.call<{ txs_results: { code: number; events: { type: string }[] }[] | null }>(
      "block_results",
      { height: String(block.height) },
      120_000,
    );
    for (const result of results.txs_results ?? []) {
      if (result.code !== 0) continue;
      block.okTxs++;
      block.registrations += result.events.filter((e) => e.type === "content_registered").length;
    }
  }
  return stats;
}

/**
 * Rate over the committed window: what the blocks after the first one holding our txs committed,
 * divided by the block time from that first block to the last one (the first block's txs
 * arrived before its time, so counting them would overstate the rate).
 */
function windowRate(blocks: BlockStat[], pick: (b: BlockStat) => number): { rate?: number; windowS?: number; steadyRate?: number } {
  const used = blocks.filter((b) => pick(b) > 0);
  if (used.length < 2) return {};
  const first = used[0];
  const last = used[used.length - 1];
  const windowS = (last.timeMs - first.timeMs) / 1000;
  const counted = sum(blocks.filter((b) => b.height > first.height && b.height <= last.height).map(pick));
  // Cross-check without the partial last block: blocks after the first up to the one before the last.
  const beforeLast = used[used.length - 2];
  const steady =
    used.length >= 4
      ? sum(blocks.filter((b) => b.height > first.height && b.height <= beforeLast.height).map(pick)) /
        ((beforeLast.timeMs - first.timeMs) / 1000)
      : undefined;
  return { rate: counted / windowS, windowS, steadyRate: steady };
}

async function throughputRun(
  options: LedgerBenchOptions,
  label: "batched" | "unbatched",
  messagesPerTx: number,
  txsNeeded: number,
): Promise<ThroughputRun> {
  const { log } = options;
  const chain = await createChain(options.workDir, label, options.concurrency);
  const perWallet = Math.ceil(txsNeeded / chain.wallets.length);
  log(
    `[${label}] pre-signing ${perWallet * chain.wallets.length} txs × ${messagesPerTx} registration(s) with CosmJS on ${cpus().length} worker threads (not timed)…`,
  );
  const signStart = performance.now();
  const queues = await presign(chain, perWallet, messagesPerTx);
  const signSeconds = (performance.now() - signStart) / 1000;
  const cpuProfDir = options.profileDir ? join(options.profileDir, label) : undefined;
  // Profiles of earlier bench runs would be summed with this one's.
  if (cpuProfDir) await rm(cpuProfDir, { recursive: true, force: true });
  log(`[${label}] signed in ${signSeconds.toFixed(1)} s; starting the node${cpuProfDir ? ` with --cpu-prof into ${cpuProfDir}` : ""}…`);
  const node = await startNodeProcess({ repoRoot: options.repoRoot, home: chain.home, cpuProfDir });
  const rpc = new JsonRpcHttp(node.url, options.concurrency + 4);
  try {
    await checkAccounts(rpc, chain);
    const startHeight = await height(rpc);
    log(`[${label}] sending for up to ${options.durationS} s at concurrency ${options.concurrency}…`);
    const cpuBefore = node.cpuSeconds();
    const machineBefore = cpuSnapshot();
    const wallBefore = performance.now();
    const fromUs = monotonicUs();
    const deadline = performance.now() + options.durationS * 1000;
    const send = await sendQueues(rpc, queues, deadline);
    const supplyRanOut = send.unsent === 0 && send.endedAt < deadline - 1000;
    const endHeight = await drain(rpc);
    const toUs = monotonicUs();
    const cpuAfter = node.cpuSeconds();
    const machine = cpuBetween(machineBefore, cpuSnapshot());
    const nodeCpuShare =
      cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / ((performance.now() - wallBefore) / 1000) : undefined;
    const otherCpu = machine && nodeCpuShare !== undefined ? Math.max(0, machine.machine - machine.bench - nodeCpuShare) : undefined;
    log(
      `[${label}] ${send.accepted} txs accepted in ${((send.endedAt - send.startedAt) / 1000).toFixed(1)} s; reading blocks ${startHeight + 1}–${endHeight}…`,
    );
    const blocks = await blockStats(rpc, startHeight + 1, endHeight);
    const used = blocks.filter((b) => b.okTxs > 0);
    const tx = windowRate(blocks, (b) => b.okTxs);
    const registrations = windowRate(blocks, (b) => b.registrations);
    const intervals = used.slice(1).map((b, i) => (b.timeMs - used[i].timeMs) / 1000);
    return {
      label,
      messagesPerTx,
      signed: perWallet * chain.wallets.length,
      signSeconds,
      send,
      blocks,
      txPerS: tx.rate,
      registrationsPerS: registrations.rate,
      windowS: tx.windowS,
      supplyRanOut,
      committedTxs: sum(blocks.map((b) => b.okTxs)),
      committedRegistrations: sum(blocks.map((b) => b.registrations)),
      failedInBlocks: sum(blocks.map((b) => b.txs - b.okTxs)),
      nodeCpuShare,
      benchCpu: machine?.bench,
      otherCpu,
      meanBlockIntervalS: intervals.length ? sum(intervals) / intervals.length : undefined,
      maxTxsPerBlock: Math.max(0, ...blocks.map((b) => b.txs)),
      steadyTxPerS: tx.steadyRate,
      steadyRegistrationsPerS: registrations.steadyRate,
      windowUs: { fromUs, toUs },
    };
  } finally {
    rpc.close();
    await node.stop();
    log(`[${label}] node stopped`);
  }
}

interface LatencyRun {
  rate: number;
  sent: number;
  committed: number;
  missing: number;
  latencyMs: number[];
  rttMs: number[];
}

/** Open-loop load at `rate` tx/s for `seconds`; commit time is when the `tm.event='Tx'` event for the tx reaches the client. */
async function latencyRun(
  node: NodeProcess,
  chain: Chain,
  queues: SignedTx[][],
  rate: number,
  log: (line: string) => void,
): Promise<LatencyRun> {
  const rpc = new JsonRpcHttp(node.url, chain.wallets.length + 4);
  const count = sum(queues.map((q) => q.length));
  const committedAt = new Map<string, number>();
  const socket = new WebSocket(`${node.url.replace(/^http/, "ws")}/websocket`);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("open", () => {
      socket.send(JSON.stringify({ jsonrpc: "2.0", id: "latency", method: "subscribe", params: { query: "tm.event='Tx'" } }));
    });
    socket.on("message", (data: WebSocket.Data) => {
      const message = JSON.parse(String(data)) as { id?: string; result?: { events?: Record<string, string[]> } };
      const hash = message.result?.events?.["tx.hash"]?.[0];
      if (hash) committedAt.set(hash, performance.now());
      else if (message.id === "latency") resolve();
    });
  });
  const sentAt = new Map<string, number>();
  const rttMs: number[] = [];
  const chains: Promise<void>[] = chain.wallets.map(() => Promise.resolve());
  const cursor = chain.wallets.map(() => 0);
  log(`[latency] ${count} single-registration txs at ${rate} tx/s, commit seen on the websocket (tm.event='Tx')…`);
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const wait = start + (k * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const w = k % chain.wallets.length;
    const tx = queues[w][cursor[w]++];
    // Each wallet's txs go out one after the other, so they reach CheckTx in sequence order.
    chains[w] = chains[w].then(async () => {
      const t0 = performance.now();
      const reply = await rpc.post(tx.body).catch(() => undefined);
      rttMs.push(performance.now() - t0);
      if ((reply?.result as BroadcastAnswer | undefined)?.code === 0) sentAt.set(tx.hash, t0);
    });
  }
  await Promise.all(chains);
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline && [...sentAt.keys()].some((h) => !committedAt.has(h))) await sleep(50);
  socket.close();
  rpc.close();
  const latencyMs = [...sentAt].filter(([h]) => committedAt.has(h)).map(([h, t0]) => committedAt.get(h)! - t0);
  return { rate, sent: sentAt.size, committed: latencyMs.length, missing: sentAt.size - latencyMs.length, latencyMs, rttMs };
}

/** Closed-loop throughput of one ready request body at `concurrency`. */
async function requestRate(url: string, body: Buffer, concurrency: number, seconds: number, check: (result: unknown) => boolean) {
  const rpc = new JsonRpcHttp(url, concurrency + 2);
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  let unexpected = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const reply = await rpc.post(body);
        if (!check(reply.result)) unexpected++;
        done++;
      }
    }),
  );
  rpc.close();
  return { perS: done / ((performance.now() - start) / 1000), unexpected };
}

/** secp256k1 verifications per second on this thread: @noble/curves, and OpenSSL through node:crypto with a cached KeyObject. */
function verifyRates(seconds: number): { noble: number; openssl: number } {
  const secret = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(secret, true);
  const signDoc = randomBytes(320); // about the size of a one-message SignDoc
  const signature = secp256k1.sign(signDoc, secret);
  const spki = Buffer.concat([Buffer.from("3036301006072a8648ce3d020106052b8104000a032200", "hex"), publicKey]);
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  const measure = (verifyOnce: () => boolean) => {
    if (!verifyOnce()) throw new Error("verification failed");
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < seconds * 1000) {
      verifyOnce();
      n++;
    }
    return n / ((performance.now() - start) / 1000);
  };
  return {
    noble: measure(() => secp256k1.verify(signature, signDoc, publicKey)),
    openssl: measure(() => nodeVerify("sha256", signDoc, { key, dsaEncoding: "ieee-p1363" }, signature)),
  };
}

/** Short digest of the node's sources and their newest change, so figures can be tied to a code state without git. */
function codeFingerprint(repoRoot: string): string {
  const hash = createHash("sha256");
  let newest = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (name.endsWith(".ts")) {
        hash.update(path.slice(repoRoot.length)).update(readFileSync(path));
        newest = Math.max(newest, stat.mtimeMs);
      }
    }
  };
  for (const pkg of ["core", "chain", "cli"]) walk(join(repoRoot, "packages", pkg, "src"));
  return `sha256 ${hash.digest("hex").slice(0, 12)} of packages/{core,chain,cli}/src/**/*.ts, newest file modified ${new Date(newest).toISOString()}`;
}

function runDetails(run: ThroughputRun, target: number): string {
  const rejected = [...run.send.rejected].map(([reason, n]) => `${n}× ${reason}`).join("; ") || "none";
  const sendS = (run.send.endedAt - run.send.startedAt) / 1000;
  const used = run.blocks.filter((b) => b.okTxs > 0);
  const perBlock = formatTable(
    ["height", "block time (UTC)", "txs", "registrations"],
    used.map((b) => [String(b.height), new Date(b.timeMs).toISOString().slice(11, 23), String(b.okTxs), String(b.registrations)]),
    [true, false, true, true],
  );
  const lines = [
    `### ${run.label}: ${run.messagesPerTx} registration(s) per tx`,
    `- pre-signed ${run.signed} txs in ${run.signSeconds.toFixed(1)} s before the window (${((run.signSeconds * 1000) / run.signed).toFixed(2)} ms/tx over ${cpus().length} threads)`,
    `- sent for ${sendS.toFixed(1)} s: ${run.send.accepted} accepted by CheckTx (${formatNumber(run.send.accepted / sendS)} tx/s), ${run.send.mempoolFullRetries} "mempool is full" retries, ${run.send.transportErrors} transport errors, ${run.send.unsent} left unsent; refused: ${rejected}`,
    `- broadcast_tx_sync round trip under this load: p50 ${formatNumber(percentile(run.send.rttMs, 50))} ms, p99 ${formatNumber(percentile(run.send.rttMs, 99))} ms, max ${formatNumber(Math.max(0, ...run.send.rttMs))} ms`,
    `- committed: ${run.committedTxs} txs / ${run.committedRegistrations} registrations in ${used.length} blocks (${run.failedInBlocks} txs failed in DeliverTx); window ${formatNumber(run.windowS)} s; mean interval between these blocks ${formatNumber(run.meanBlockIntervalS)} s (timeout_commit 1 s + block production + queued CheckTx); up to ${run.maxTxsPerBlock} txs in one block`,
    `- cross-check over full blocks only (without the first and the last block, which are partial by construction): ${formatNumber(run.steadyTxPerS)} tx/s, ${formatNumber(run.steadyRegistrationsPerS)} registrations/s`,
    `- CPU while sending and draining, in cores (of ${cpus().length}): node ${formatNumber(run.nodeCpuShare)}, bench client ${formatNumber(run.benchCpu)}, other processes on the machine ${formatNumber(run.otherCpu)}`,
  ];
  if (run.supplyRanOut) {
    lines.push(
      `- NOTE: all ${run.signed} pre-signed txs (${formatNumber(target)}/s target × window × ${run.label === "batched" ? PRESIGN_FACTOR.batched : PRESIGN_FACTOR.unbatched}) were used before the ${sendS.toFixed(0)} s window ended: the node kept up, and may be faster than this figure.`,
    );
  }
  return [...lines, "", perBlock].join("\n");
}

function profileText(profileDir: string, run: ThroughputRun): string {
  const label = run.label;
  try {
    const summary = summariseProfiles([join(profileDir, label)], {
      focus: ["#produceBlock", "checkTx"],
      focusDepth: 3,
      window: run.windowUs,
    });
    const trees = [...summary.trees.values()].map(
      (tree) => `Call tree under ${tree.key} (≥ 1% of busy time):\n${formatCallTree(tree, summary.busyMs, 1)}`,
    );
    return [formatProfileSummary(summary, 10, `Node CPU profile, ${label} run (main thread, timed window only)`), "", ...trees].join("\n");
  } catch (error) {
    return `### Node CPU profile, ${label} run\n(no profile: ${(error as Error).message})`;
  }
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

export async function runLedgerBench(options: LedgerBenchOptions): Promise<BenchSection> {
  const { log, durationS } = options;
  const details: string[] = [];
  const fingerprint = codeFingerprint(options.repoRoot);
  const loadAtStart = loadavg()[0];

  // 1. Batched: 100 registrations per tx.
  const batched = await throughputRun(
    options,
    "batched",
    BATCH,
    Math.ceil((TARGET_REGISTRATIONS_PER_S * durationS * PRESIGN_FACTOR.batched) / BATCH),
  );
  details.push(runDetails(batched, TARGET_REGISTRATIONS_PER_S));
  if (options.profileDir) details.push(profileText(options.profileDir, batched));

  // 2. Unbatched: 1 registration per tx.
  const unbatched = await throughputRun(options, "unbatched", 1, Math.ceil(TARGET_TX_PER_S * durationS * PRESIGN_FACTOR.unbatched));
  details.push(runDetails(unbatched, TARGET_TX_PER_S));
  if (options.profileDir) details.push(profileText(options.profileDir, unbatched));

  // 3 and 4. Latency at moderate load (about half the measured unbatched rate) and the baselines, on a fresh node without profiling.
  const rate = Math.max(10, Math.min(150, Math.round((unbatched.txPerS ?? 100) / 2)));
  const latencySeconds = Math.min(10, durationS);
  const chain = await createChain(options.workDir, "latency", options.concurrency);
  const latencyQueues = await presign(chain, Math.ceil((rate * latencySeconds) / chain.wallets.length), 1);
  // A correctly signed tx whose sequence is far ahead: CheckTx refuses it (wrong sequence) before checking the signature.
  const [refusedTx] = await signJob({ ...jobFor(chain, 0), fromSequence: 1_000_000, count: 1, messagesPerTx: 1 });
  const node = await startNodeProcess({ repoRoot: options.repoRoot, home: chain.home });
  let latency: LatencyRun;
  let status: { perS: number; unexpected: number };
  let refused: { perS: number; unexpected: number };
  try {
    const probe = new JsonRpcHttp(node.url, 2);
    await checkAccounts(probe, chain);
    probe.close();
    latency = await latencyRun(node, chain, latencyQueues, rate, log);
    log(`[baseline] /status and refused broadcast_tx_sync at concurrency ${options.concurrency}, 5 s each…`);
    status = await requestRate(node.url, jsonRpcBody("status", {}), options.concurrency, 5, (r) => r !== undefined);
    refused = await requestRate(
      node.url,
      toSignedTx(refusedTx.txBase64, refusedTx.hash, 1).body,
      options.concurrency,
      5,
      (r) => (r as BroadcastAnswer | undefined)?.code === CODE_WRONG_SEQUENCE,
    );
  } finally {
    await node.stop();
    log("[latency] node stopped");
  }
  log("[baseline] secp256k1 verifications on one thread, 2 s each…");
  const verify = verifyRates(2);

  const rows: BenchRow[] = [
    {
      figure: "Batched: registrations committed /s (100 msgs/tx)",
      value: batched.registrationsPerS,
      unit: "reg/s",
      target: { atLeast: TARGET_REGISTRATIONS_PER_S },
    },
    { figure: "Batched: txs committed /s", value: batched.txPerS, unit: "tx/s" },
    { figure: "Unbatched: txs committed /s (1 msg/tx)", value: unbatched.txPerS, unit: "tx/s", target: { atLeast: TARGET_TX_PER_S } },
    { figure: `Latency p50 broadcast→commit @ ${rate} tx/s`, value: percentile(latency.latencyMs, 50), unit: "ms" },
    { figure: `Latency p95 broadcast→commit @ ${rate} tx/s`, value: percentile(latency.latencyMs, 95), unit: "ms" },
    { figure: `Latency p99 broadcast→commit @ ${rate} tx/s`, value: percentile(latency.latencyMs, 99), unit: "ms" },
    { figure: `Baseline: /status answered /s (concurrency ${options.concurrency})`, value: status.perS, unit: "req/s" },
    { figure: "Baseline: refused broadcast_tx_sync /s (no sig check)", value: refused.perS, unit: "req/s" },
    { figure: "Baseline: secp256k1 verify /s, @noble/curves, 1 thread", value: verify.noble, unit: "verify/s" },
    { figure: "Baseline: secp256k1 verify /s, node:crypto, 1 thread", value: verify.openssl, unit: "verify/s" },
    { figure: "Ratio: unbatched tx/s ÷ /status req/s", value: ratio(unbatched.txPerS, status.perS), unit: "×", digits: 3 },
    { figure: "Ratio: unbatched tx/s ÷ refused-broadcast req/s", value: ratio(unbatched.txPerS, refused.perS), unit: "×", digits: 3 },
    { figure: "Ratio: unbatched tx/s ÷ node:crypto verify/s", value: ratio(unbatched.txPerS, verify.openssl), unit: "×", digits: 3 },
    { figure: "Ratio: unbatched tx/s ÷ noble verify/s", value: ratio(unbatched.txPerS, verify.noble), unit: "×", digits: 3 },
    { figure: "Ratio: batched reg/s ÷ unbatched tx/s", value: ratio(batched.registrationsPerS, unbatched.txPerS), unit: "×", digits: 1 },
  ];

  const cpu = cpus();
  const others = [batched, unbatched].map((r) => `${r.label} ${formatNumber(r.otherCpu)}`).join(", ");
  const notes = [
    `${[batched, unbatched].some((r) => (r.otherCpu ?? 0) > 0.2) ? "WARNING, machine busy: " : ""}other processes (neither the bench nor the node) used ${others} cores during the windows; load average at start ${loadAtStart.toFixed(2)}. Anything well above 0 took CPU from the node, so the figures are then lower bounds.`,
    `Machine: ${cpu.length} CPU core(s) (${cpu[0]?.model.trim() ?? "unknown"}), Node ${process.version}. The bench client and the node child process share these cores; the node runs CheckTx, block production and its RPC on one event loop, so it can use at most one core.`,
    `Code under test: ${fingerprint}.`,
    `Blocks: timeout_commit ${TIMEOUT_COMMIT_MS} ms, create_empty_blocks true; each run starts a fresh home (genesis with ${options.concurrency} funded wallets) and a fresh \`daon node\` child process.`,
    `Txs are signed offline with CosmJS (SigningStargateClient.offline(...).sign over DirectSecp256k1Wallet, sequences tracked by the bench) BEFORE each timed window, on worker threads, so client-side signing cost is not measured against the node. During the window the client only sends ready bodies with broadcast_tx_sync over HTTP/1.1 keep-alive, one request in flight per wallet (${options.concurrency} in flight).`,
    `Committed counts come from /block_results (code-0 txs, content_registered events) and block times from /blockchain: rate = what the blocks after the first one holding bench txs committed ÷ (time of the last such block − time of the first). Sending stops after ${durationS} s or when the pre-signed txs run out (then the node kept up and the figure is a lower bound).`,
    `Latency: open-loop at ~half the measured unbatched rate for ${latencySeconds} s (${latency.sent} txs accepted, ${latency.missing} not seen committed within 20 s); commit time is when the websocket tm.event='Tx' event reaches the client; with 1 s blocks a tx waits on average half a timeout_commit plus block production. broadcast_tx_sync round trip at that load: p50 ${formatNumber(percentile(latency.rttMs, 50))} ms, p99 ${formatNumber(percentile(latency.rttMs, 99))} ms.`,
    "Baselines: /status is the RPC floor (HTTP + JSON-RPC, no tx work); the refused broadcast adds tx decoding and the account/sequence lookup but no signature check or state change; the verify rates bound what one core can do if each tx needs one signature verification.",
  ];
  if (options.profileDir) {
    notes.push(
      `Profiled with --cpu-prof (sampling costs a few %; the figures of a profiled run are slightly low). The summaries below count only samples taken during the timed window (sending + draining), not start-up or the block reads afterwards; the raw profiles are in ${options.profileDir}/{batched,unbatched} (summarise the whole run with \`npx tsx bench/profile-summary.ts DIR --tree "#produceBlock,checkTx"\`).`,
    );
  }
  if (status.unexpected || refused.unexpected) {
    notes.push(
      `Baseline answers not as expected: status ${status.unexpected}, refused broadcast ${refused.unexpected} (expected code ${CODE_WRONG_SEQUENCE}).`,
    );
  }
  return { title: "Ledger node (packages/chain, `daon node`)", rows, notes, details };
}

function jobFor(chain: Chain, walletIndex: number): SignJob {
  const wallet = chain.wallets[walletIndex];
  return {
    privkeyHex: wallet.privkeyHex,
    accountNumber: wallet.accountNumber,
    chainId: chain.chainId,
    fromSequence: wallet.sequence,
    count: 1,
    messagesPerTx: 1,
    labelPrefix: `bench/${runId}/${chain.label}`,
  };
}
