import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { SigningStargateClient, StargateClient } from "@cosmjs/stargate";
import { MsgRegisterContent, QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse } from "@daon/core";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { LedgerStore } from "../src/store/ledger-store.js";
import { contentHash, createTestHome, daonRegistry } from "./test-chain.js";

/**
 * Crash safety: a continuous stream of transactions while the node (a child process running
 * `daon node`) is killed with SIGKILL at random moments. After every restart the chain must
 * continue from its last commit, keep every block and commit signature it ever served, and
 * still hold every tx it reported committed.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = join(ROOT, "packages/cli/src/main.ts");
const KILLS = 22;
const IN_FLIGHT_PER_WALLET = 3;
const FEE = { amount: [], gas: "200000" };
const START_TIMEOUT_MS = 60_000;
const RPC_TIMEOUT_MS = 10_000;
const BATCH = 100;

interface SentTx {
  hash: string;
  wallet: number;
  contentHashes: string[];
}

interface CommittedTx extends SentTx {
  height: number;
}

/** What the node served for a height: it must never change. */
interface SeenBlock {
  hash: string;
  headerAppHash: string;
  signature: string;
}

/** What `/status` said while a height was the latest. */
interface SeenStatus {
  blockHash: string;
  appHash: string;
}

interface RpcAnswer<T = unknown> {
  result?: T;
  error?: { code: number; message: string; data: string };
}

/** The parts of CometBFT's RPC answers this test reads. */
interface StatusJson {
  sync_info: { latest_block_height: string; latest_block_hash: string; latest_app_hash: string };
}
interface BlockJson {
  block_id: { hash: string };
  block: { header: { height: string; app_hash: string } };
}
interface CommitJson {
  signed_header: { commit: { block_id: { hash: string }; signatures: { signature: string }[] } };
}
interface TxJson {
  hash: string;
  height: string;
  tx_result: { code: number; log: string };
}
interface BroadcastJson {
  code: number;
  log: string;
}
interface AbciQueryJson {
  response: { code: number; log: string; value?: string | null };
}

interface RunningNode {
  child: ChildProcess;
  /** Height the node said it resumed at ("ledger node … at height N; RPC …"), when logged. */
  resumedHeight: number | undefined;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** One run of the node: the tx stream, the committed-tx poller and the block observer. */
interface Session {
  stopped: boolean;
  tasks: Promise<void>[];
}

/** The node went away (connection refused or reset): not an RPC answer. */
class NodeDown extends Error {}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok());
  });
  const address = server.address();
  await new Promise<void>((ok) => server.close(() => ok()));
  assert.ok(address && typeof address === "object");
  return address.port;
}

class Rpc {
  constructor(readonly url: string) {}

  async get<T>(path: string): Promise<RpcAnswer<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(RPC_TIMEOUT_MS) });
      return (await response.json()) as RpcAnswer<T>;
    } catch (error) {
      throw new NodeDown(`GET ${path}: ${(error as Error).message}`);
    }
  }

  async post<T>(method: string, params: Record<string, unknown>): Promise<RpcAnswer<T>> {
    const [answer] = await this.batch([{ method, params }]);
    return answer as RpcAnswer<T>;
  }

  /** JSON-RPC batch, answers in request order; split into batches the node accepts. */
  async batch(requests: { method: string; params: Record<string, unknown> }[]): Promise<RpcAnswer[]> {
    const answers: RpcAnswer[] = [];
    for (let start = 0; start < requests.length; start += BATCH) {
      const chunk = requests.slice(start, start + BATCH);
      const body = JSON.stringify(chunk.map((r, id) => ({ jsonrpc: "2.0", id, method: r.method, params: r.params })));
      let parsed: unknown;
      try {
        const response = await fetch(this.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
        });
        parsed = await response.json();
      } catch (error) {
        throw new NodeDown(`POST ${chunk[0].method}…: ${(error as Error).message}`);
      }
      assert.ok(Array.isArray(parsed), `a batch is answered with an array: ${JSON.stringify(parsed).slice(0, 300)}`);
      const byId = new Map((parsed as (RpcAnswer & { id: number })[]).map((a) => [a.id, a]));
      chunk.forEach((_, id) => {
        const answer = byId.get(id);
        assert.ok(answer, `batch answer ${id} is missing`);
        answers.push(answer);
      });
    }
    return answers;
  }

  /** Retries while the connection fails (a pooled socket of the killed node may be handed out once). */
  async retrying<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof NodeDown) || attempt >= 10) throw error;
        await sleep(100);
      }
    }
  }
}

function startNode(home: string, port: number): Promise<RunningNode> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "node", "--home", home, "--rpc-laddr", `tcp://127.0.0.1:${port}`], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
    child.once("exit", (code, signal) => ok({ code, signal })),
  );
  let log = "";
  return new Promise<RunningNode>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`the node did not log "RPC http://" within ${START_TIMEOUT_MS} ms:\n${log}`));
    }, START_TIMEOUT_MS);
    let ready = false;
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      log += chunk;
      if (ready || !log.includes("RPC http://")) return;
      ready = true;
      clearTimeout(timer);
      const resumed = /at height (\d+); RPC http:\/\//.exec(log);
      ok({ child, resumedHeight: resumed ? Number(resumed[1]) : undefined, log: () => log, exited });
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!ready) fail(new Error(`the node exited (${code ?? signal}) before it was ready:\n${log}`));
    });
  });
}

function registration(creator: string, label: string, i: number) {
  const licenses = ["liberation_v1", "cc0", "cc_by", "all_rights_reserved"];
  const policies = ["prohibited", "contact_required", "open"];
  return {
    typeUrl: MsgRegisterContent.typeUrl,
    value: MsgRegisterContent.fromPartial({
      creator,
      contentHash: contentHash(label),
      license: licenses[i % licenses.length],
      aiTrainingPolicy: policies[i % policies.length],
      platform: "crash-test",
      owner: `o_${i % 7}`,
    }),
  };
}

describe("crash safety: SIGKILL under a continuous stream of transactions", () => {
  let created: Awaited<ReturnType<typeof createTestHome>>;
  let rpc: Rpc;
  let port: number;
  let node: RunningNode | undefined;

  before(async () => {
    created = await createTestHome({
      wallets: 4,
      consensus: { timeoutCommitMs: 100, createEmptyBlocks: true, createEmptyBlocksIntervalMs: 0 },
    });
    port = await freePort();
    rpc = new Rpc(`http://127.0.0.1:${port}`);
  });

  after(async () => {
    if (node && node.child.exitCode === null && node.child.signalCode === null) {
      node.child.kill("SIGKILL");
      await node.exited;
    }
    await rm(created.dir, { recursive: true, force: true });
  });

  test(`the node survives ${KILLS} SIGKILLs without losing or re-signing anything`, { timeout: 240_000 }, async (t) => {
    const started = Date.now();
    const { home, chainId, wallets, addresses } = created;
    const runId = randomBytes(6).toString("hex");
    const signers = await Promise.all(
      wallets.map((w: DirectSecp256k1HdWallet) => SigningStargateClient.offline(w, { registry: daonRegistry() })),
    );

    const blocks = new Map<number, SeenBlock>();
    const statuses = new Map<number, SeenStatus>();
    const committed = new Map<string, CommittedTx>();
    /** Sent (or being sent) and not yet seen committed: after a kill, their fate is settled on restart. */
    const unresolved = new Map<string, SentTx>();
    /** Violations seen by the background loops; asserted empty after every run. */
    const problems: string[] = [];
    const accounts = addresses.map(() => ({ accountNumber: 0n, sequence: 0 }));
    let highestSeen = 0;
    let fetchedUpTo = 0;
    let label = 0;
    let lost = 0;

    const seeHeight = (height: number) => {
      highestSeen = Math.max(highestSeen, height);
    };

    const recordStatus = (height: number, blockHash: string, appHash: string) => {
      if (height === 0) return;
      seeHeight(height);
      const earlier = statuses.get(height);
      if (!earlier) statuses.set(height, { blockHash, appHash });
      else if (earlier.blockHash !== blockHash || earlier.appHash !== appHash) {
        problems.push(`/status at height ${height} changed from ${JSON.stringify(earlier)} to ${JSON.stringify({ blockHash, appHash })}`);
      }
    };

    /** `/block` and `/commit` of heights; returns what the node serves now. */
    const readBlocks = async (heights: number[]): Promise<Map<number, SeenBlock>> => {
      const answers = await rpc.batch(
        heights.flatMap((height) => [
          { method: "block", params: { height: String(height) } },
          { method: "commit", params: { height: String(height) } },
        ]),
      );
      const read = new Map<number, SeenBlock>();
      heights.forEach((height, i) => {
        const block = answers[2 * i] as RpcAnswer<BlockJson>;
        const commit = answers[2 * i + 1] as RpcAnswer<CommitJson>;
        assert.ok(block.result && commit.result, `block ${height}: ${JSON.stringify(block.error ?? commit.error)}`);
        const hash = block.result.block_id.hash as string;
        assert.equal(block.result.block.header.height, String(height));
        assert.equal(commit.result.signed_header.commit.block_id.hash, hash, `the commit of ${height} signs the block served at ${height}`);
        assert.equal(commit.result.signed_header.commit.signatures.length, 1);
        read.set(height, {
          hash,
          headerAppHash: block.result.block.header.app_hash,
          signature: commit.result.signed_header.commit.signatures[0].signature,
        });
      });
      return read;
    };

    const recordBlocks = async (from: number, to: number) => {
      const heights = Array.from({ length: to - from + 1 }, (_, i) => from + i);
      for (const [height, seen] of await readBlocks(heights)) {
        seeHeight(height);
        const earlier = blocks.get(height);
        if (!earlier) blocks.set(height, seen);
        else if (JSON.stringify(earlier) !== JSON.stringify(seen)) {
          problems.push(`block ${height} changed from ${JSON.stringify(earlier)} to ${JSON.stringify(seen)}`);
        }
      }
    };

    /** Latest height, its hashes, and the blocks up to it: what is recorded before a kill. */
    const observe = async () => {
      const status = await rpc.get<StatusJson>("/status");
      assert.ok(status.result, JSON.stringify(status.error));
      const sync = status.result.sync_info;
      const height = Number(sync.latest_block_height);
      recordStatus(height, sync.latest_block_hash, sync.latest_app_hash);
      if (height > fetchedUpTo) {
        await recordBlocks(fetchedUpTo + 1, height);
        fetchedUpTo = height;
      }
    };

    /** `/tx?hash=`: records the tx as committed once the node reports it. */
    const lookUp = async (sent: SentTx): Promise<boolean> => {
      const answer = await rpc.get<TxJson>(`/tx?hash=0x${sent.hash}`);
      if (!answer.result) return false;
      const height = Number(answer.result.height);
      if (answer.result.hash !== sent.hash) problems.push(`/tx?hash=${sent.hash} answered ${answer.result.hash}`);
      if (answer.result.tx_result.code !== 0) problems.push(`tx ${sent.hash} failed in block ${height}: ${answer.result.tx_result.log}`);
      committed.set(sent.hash, { ...sent, height });
      unresolved.delete(sent.hash);
      seeHeight(height);
      return true;
    };

    const inFlight = (wallet: number) => {
      let count = 0;
      for (const sent of unresolved.values()) if (sent.wallet === wallet) count++;
      return count;
    };

    const streamTxs = async (session: Session, wallet: number) => {
      const address = addresses[wallet];
      while (!session.stopped) {
        if (inFlight(wallet) >= IN_FLIGHT_PER_WALLET) {
          await sleep(10);
          continue;
        }
        const n = label++;
        const count = n % 3 === 0 ? 1 : 2 + (n % 4);
        const messages = Array.from({ length: count }, (_, i) => registration(address, `crash-${runId}-${n}-${i}`, n + i));
        const { accountNumber, sequence } = accounts[wallet];
        const signed = await signers[wallet].sign(address, messages, FEE, "", { accountNumber, sequence, chainId });
        const raw = TxRaw.encode(signed).finish();
        const hash = createHash("sha256").update(raw).digest("hex").toUpperCase();
        unresolved.set(hash, { hash, wallet, contentHashes: messages.map((m) => m.value.contentHash) });
        let answer: RpcAnswer<BroadcastJson>;
        try {
          answer = await rpc.post<BroadcastJson>("broadcast_tx_sync", { tx: Buffer.from(raw).toString("base64") });
        } catch {
          return; // killed mid-request: whether the tx made it is settled after the restart
        }
        if (answer.result?.code === 0) {
          accounts[wallet].sequence++;
          continue;
        }
        unresolved.delete(hash);
        problems.push(
          `broadcast of ${hash} (wallet ${wallet}, sequence ${sequence}) refused: ${JSON.stringify(answer.result ?? answer.error)}`,
        );
        return;
      }
    };

    const pollCommitted = async (session: Session) => {
      while (!session.stopped) {
        try {
          await Promise.all([...unresolved.values()].map(lookUp));
        } catch {
          return;
        }
        await sleep(30);
      }
    };

    const watchBlocks = async (session: Session) => {
      while (!session.stopped) {
        try {
          await observe();
        } catch (error) {
          if (error instanceof NodeDown) return;
          problems.push(`observing blocks: ${(error as Error).message}`);
          return;
        }
        await sleep(25);
      }
    };

    const startSession = (): Session => {
      const session: Session = { stopped: false, tasks: [] };
      session.tasks.push(...wallets.map((_, w) => streamTxs(session, w)), pollCommitted(session), watchBlocks(session));
      return session;
    };

    const stopSession = async (session: Session) => {
      session.stopped = true;
      await Promise.all(session.tasks);
      assert.deepEqual(problems, []);
    };

    /** Everything the node ever reported must still be there, unchanged. */
    const verifyAfterRestart = async (running: RunningNode) => {
      const top = highestSeen;
      if (running.resumedHeight !== undefined) {
        assert.ok(running.resumedHeight >= top, `resumed at ${running.resumedHeight}, but height ${top} had been reported`);
      }
      // Wait for the first block after the restart: its header carries the app hash of the resumed state.
      let height = 0;
      for (let i = 0; i < 200; i++) {
        const status = await rpc.retrying(() => rpc.get<StatusJson>("/status"));
        assert.ok(status.result, JSON.stringify(status.error));
        const sync = status.result.sync_info;
        height = Number(sync.latest_block_height);
        assert.ok(height >= top, `after the restart /status says ${height}, but height ${top} had been reported`);
        recordStatus(height, sync.latest_block_hash, sync.latest_app_hash);
        if (height > top) break;
        await sleep(50);
      }
      assert.ok(height > top, `no block after height ${top} within 10 s of the restart`);

      // Txs in flight at the kill: committed (and then kept) or lost with the mempool.
      for (const sent of [...unresolved.values()]) {
        if (!(await rpc.retrying(() => lookUp(sent)))) {
          unresolved.delete(sent.hash);
          lost++;
        }
      }

      // Same block hash, header app hash and commit signature at every height ever served.
      // (`height` > every height reported before the kill, so block h + 1 exists for each of those.)
      const wanted = [...blocks.keys(), ...[...statuses.keys()].flatMap((h) => [h, h + 1])].filter((h) => h <= height);
      const heights = [...new Set(wanted)].sort((a, b) => a - b);
      const now = await rpc.retrying(() => readBlocks(heights));
      for (const [h, seen] of blocks) assert.deepEqual(now.get(h), seen, `block ${h} after the restart`);
      for (const [h, seen] of statuses) {
        if (h >= height) continue;
        assert.equal(now.get(h)?.hash, seen.blockHash, `/status latest_block_hash at ${h} is the block at ${h}`);
        assert.equal(now.get(h + 1)?.headerAppHash, seen.appHash, `header ${h + 1} carries the app hash /status reported at ${h}`);
      }
      for (const [h, block] of now) if (!blocks.has(h)) blocks.set(h, block);
      fetchedUpTo = Math.max(fetchedUpTo, ...now.keys());

      // Every tx reported committed: same height in the index, its records in the state.
      const txs = [...committed.values()];
      const txAnswers = await rpc.retrying(() =>
        rpc.batch(txs.map((tx) => ({ method: "tx", params: { hash: Buffer.from(tx.hash, "hex").toString("base64") } }))),
      );
      txs.forEach((tx, i) => {
        const answer = txAnswers[i] as RpcAnswer<TxJson>;
        assert.ok(answer.result, `committed tx ${tx.hash} (height ${tx.height}) is not found: ${JSON.stringify(answer.error)}`);
        assert.equal(answer.result.hash, tx.hash);
        assert.equal(Number(answer.result.height), tx.height, `tx ${tx.hash} height`);
        assert.equal(answer.result.tx_result.code, 0);
      });
      const records = txs.flatMap((tx) => tx.contentHashes.map((hash) => ({ tx, hash })));
      const queryAnswers = await rpc.retrying(() =>
        rpc.batch(
          records.map(({ hash }) => ({
            method: "abci_query",
            params: {
              path: QUERY_VERIFY_CONTENT,
              data: Buffer.from(QueryVerifyContentRequest.encode({ contentHash: hash }).finish()).toString("hex"),
            },
          })),
        ),
      );
      records.forEach(({ tx, hash }, i) => {
        const response = (queryAnswers[i] as RpcAnswer<AbciQueryJson>).result?.response;
        assert.ok(response, `VerifyContent ${hash}: ${JSON.stringify(queryAnswers[i].error)}`);
        assert.equal(response.code, 0);
        const answer = QueryVerifyContentResponse.decode(Buffer.from(response.value ?? "", "base64"));
        assert.equal(answer.verified, true, `record ${hash} of committed tx ${tx.hash} (height ${tx.height})`);
        assert.equal(answer.height, BigInt(tx.height));
        assert.equal(answer.txHash, tx.hash);
        assert.equal(answer.creator, addresses[tx.wallet]);
      });

      // Sequences: each account has signed exactly the txs known committed; continue from there.
      const reader = await rpc.retrying(async () => {
        try {
          return await StargateClient.connect(rpc.url);
        } catch (error) {
          throw new NodeDown((error as Error).message);
        }
      });
      try {
        for (const [w, address] of addresses.entries()) {
          const account = await reader.getAccount(address);
          assert.ok(account, `account ${address}`);
          assert.equal(account.sequence, txs.filter((tx) => tx.wallet === w).length, `sequence of wallet ${w}`);
          accounts[w] = { accountNumber: account.accountNumber, sequence: account.sequence };
        }
      } finally {
        reader.disconnect();
      }
    };

    let kills = 0;
    for (let round = 0; round < KILLS; round++) {
      node = await startNode(home, port);
      await verifyAfterRestart(node);
      const session = startSession();
      await sleep(150 + Math.floor(Math.random() * 750));
      await observe();
      node.child.kill("SIGKILL");
      const exit = await node.exited;
      assert.equal(exit.signal, "SIGKILL", `run ${round}: the node ended by ${exit.code ?? exit.signal}, not by the kill:\n${node.log()}`);
      kills++;
      await stopSession(session);
    }

    // After the last restart the chain keeps going, then stops cleanly.
    node = await startNode(home, port);
    await verifyAfterRestart(node);
    const heightBefore = highestSeen;
    const committedBefore = committed.size;
    const session = startSession();
    for (let i = 0; i < 300 && (highestSeen < heightBefore + 5 || committed.size < committedBefore + 8); i++) await sleep(50);
    await stopSession(session);
    for (let i = 0; i < 100 && unresolved.size > 0; i++) {
      for (const sent of [...unresolved.values()]) await lookUp(sent);
      await sleep(50);
    }
    await observe();
    assert.deepEqual([...unresolved.keys()], [], "every tx accepted by the running node gets committed");
    assert.ok(highestSeen >= heightBefore + 5, `height ${heightBefore} → ${highestSeen} after the last restart`);
    assert.ok(committed.size >= committedBefore + 8, `${committed.size - committedBefore} txs committed after the last restart`);

    node.child.kill("SIGTERM");
    const exit = await node.exited;
    assert.equal(exit.code, 0, `graceful stop:\n${node.log()}`);

    const store = new LedgerStore(join(home, "data", "ledger.db"));
    await store.open();
    const head = await store.head();
    await store.close();
    assert.ok(head);
    assert.ok(head.height >= highestSeen, `committed head ${head.height} is at least the reported height ${highestSeen}`);
    const signedState = JSON.parse(await readFile(join(home, "data", "priv_validator_state.json"), "utf8"));
    assert.equal(Number(signedState.height), head.height, "priv_validator_state.json records the committed height");
    if (statuses.has(head.height)) assert.equal(statuses.get(head.height)?.appHash, head.appHash);
    assert.equal(blocks.get(head.height)?.hash ?? head.blockHash, head.blockHash);

    const multi = [...committed.values()].filter((tx) => tx.contentHashes.length > 1).length;
    assert.equal(kills, KILLS);
    assert.ok(highestSeen > 2 * KILLS, `the chain advanced across the runs (height ${highestSeen})`);
    assert.ok(committed.size > KILLS, `txs were streamed across the runs (${committed.size} committed)`);
    assert.ok(
      multi > 0 && committed.size - multi > 0,
      `both 1-message (${committed.size - multi}) and multi-message (${multi}) txs committed`,
    );
    t.diagnostic(
      `${kills} SIGKILLs; height ${head.height}; ${committed.size} txs committed (${multi} multi-message), ${lost} lost from the mempool; ${blocks.size} blocks checked; ${Math.round((Date.now() - started) / 1000)} s`,
    );
  });
});
