import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SigningStargateClient, StargateClient } from "@cosmjs/stargate";
import { MsgRegisterContent } from "@daon/core";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import WebSocket from "ws";
import { contentHash, daonRegistry, startTestChain, type TestChain } from "./test-chain.js";

/**
 * The production launch runbook checks the node with `curl -s http://localhost:26657/… | jq …`.
 * These tests run those shell lines as written (real curl, real jq, through bash) against a test
 * chain's port, in the URI form and as JSON-RPC POST, plus the rest of the RPC surface the spec
 * names (spec/chain.md, "RPC").
 */

const TIMEOUT_COMMIT_MS = 400;

interface Sent {
  hash: string;
  height: number;
  contentHashes: string[];
}

/** Quotes one word for bash. */
const shq = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Runs a command line through bash (pipefail on) and returns what it printed. */
function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["-c", `set -o pipefail; ${command}`], { timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`\`${command.slice(0, 300)}\` failed: ${error.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex").toUpperCase();

describe("the runbook's curl | jq commands against the node's RPC", () => {
  let chain: TestChain;
  let base: string;
  let creator: string;
  let accountNumber: bigint;
  let sequence = 0;
  let offline: SigningStargateClient;
  const committed: Sent[] = [];

  /** `curl -s URL | jq FILTER` in the URI form (GET /method?args). */
  const get = (pathAndQuery: string, filter = ".") => sh(`curl -s --max-time 15 ${shq(`${base}/${pathAndQuery}`)} | jq -c ${shq(filter)}`);
  /** `curl -s -G URL --data-urlencode ARG …`: query arguments with spaces and quotes, encoded by curl. */
  const getEncoded = (method: string, args: Record<string, string>, filter = ".") =>
    sh(
      `curl -s --max-time 15 -G ${shq(`${base}/${method}`)} ${Object.entries(args)
        .map(([k, v]) => `--data-urlencode ${shq(`${k}=${v}`)}`)
        .join(" ")} | jq -c ${shq(filter)}`,
    );
  /** `curl -s -d '{"jsonrpc":"2.0",…}' URL | jq FILTER`: the JSON-RPC 2.0 POST form. */
  const post = (method: string, params: Record<string, unknown> | undefined, filter = ".") =>
    sh(
      `curl -s --max-time 15 -H 'Content-Type: application/json' -d ${shq(JSON.stringify({ jsonrpc: "2.0", id: 7, method, ...(params ? { params } : {}) }))} ${shq(base)} | jq -c ${shq(filter)}`,
    );
  const json = async (printed: Promise<string>) => JSON.parse(await printed);

  async function signRegistration(labels: string[], memo = ""): Promise<{ raw: Uint8Array; hash: string; contentHashes: string[] }> {
    const contentHashes = labels.map((label) => contentHash(`runbook-rpc-${chain.chainId}-${label}`));
    const messages = contentHashes.map((hash) => ({
      typeUrl: MsgRegisterContent.typeUrl,
      value: MsgRegisterContent.fromPartial({ creator, contentHash: hash, license: "cc_by", platform: "runbook", owner: "o_runbook" }),
    }));
    const signed = await offline.sign(creator, messages, { amount: [], gas: "2000000" }, memo, {
      accountNumber,
      sequence: sequence++,
      chainId: chain.chainId,
    });
    const raw = TxRaw.encode(signed).finish();
    return { raw, hash: sha256Hex(raw), contentHashes };
  }

  async function height(): Promise<number> {
    return Number(JSON.parse(await sh(`curl -s ${shq(`${base}/status`)} | jq '.result.sync_info.latest_block_height'`)));
  }

  async function waitForTx(hash: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const found = await json(get(`tx?hash=0x${hash}`, ".result.height // null"));
      if (found !== null) return Number(found);
      await sleep(50);
    }
    throw new Error(`tx ${hash} was not committed`);
  }

  before(async () => {
    const missing = await sh("for t in curl jq; do command -v $t >/dev/null || echo $t; done");
    if (missing) {
      throw new Error(
        `the runbook RPC tests run the runbook's shell commands and need ${missing.split("\n").join(" and ")} on PATH (CI installs them: apt-get install -y curl jq)`,
      );
    }
    chain = await startTestChain({ wallets: 2, consensus: { timeoutCommitMs: TIMEOUT_COMMIT_MS } });
    base = `http://127.0.0.1:${new URL(chain.rpcUrl).port}`;
    creator = chain.addresses[0];
    const reader = await StargateClient.connect(chain.rpcUrl);
    const account = await reader.getAccount(creator);
    reader.disconnect();
    assert.ok(account, "the test wallet is a genesis account");
    accountNumber = account.accountNumber;
    sequence = account.sequence;
    offline = await SigningStargateClient.offline(chain.wallets[0], { registry: daonRegistry() });
  });

  after(async () => {
    await chain?.stop();
  });

  test("`curl -s :26657/status | jq '.result.sync_info.latest_block_height'` prints a quoted height that advances", async () => {
    const line = `curl -s ${base}/status | jq '.result.sync_info.latest_block_height'`;
    const first = await sh(line);
    assert.match(first, /^"\d+"$/, "CometBFT prints int64 heights as JSON strings");
    let second = first;
    for (let i = 0; i < 50 && second === first; i++) {
      await sleep(100);
      second = await sh(line);
    }
    assert.match(second, /^"\d+"$/);
    assert.ok(Number(JSON.parse(second)) > Number(JSON.parse(first)), `height advanced: ${first} → ${second}`);

    const viaPost = await sh(
      `curl -s -d '{"jsonrpc":"2.0","id":1,"method":"status"}' ${base} | jq '.result.sync_info.latest_block_height'`,
    );
    assert.match(viaPost, /^"\d+"$/);
    assert.ok(Number(JSON.parse(viaPost)) >= Number(JSON.parse(second)));
  });

  test("`jq '.result.sync_info'` shows the sync fields the runbook reads", async () => {
    const syncInfo = await json(sh(`curl -s ${base}/status | jq '.result.sync_info'`));
    assert.match(syncInfo.latest_block_hash, /^[0-9A-F]{64}$/);
    assert.match(syncInfo.latest_app_hash, /^[0-9A-F]{64}$/);
    assert.match(syncInfo.latest_block_height, /^\d+$/);
    assert.match(syncInfo.latest_block_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(syncInfo.catching_up, false);
    const viaPost = await json(post("status", {}, ".result.sync_info"));
    assert.deepEqual(Object.keys(viaPost).sort(), Object.keys(syncInfo).sort());
  });

  test("`jq '.result.node_info.network'` is the chain ID, in both forms", async () => {
    const printed = await sh(`curl -s ${base}/status | jq '.result.node_info.network'`);
    assert.equal(printed, JSON.stringify(chain.chainId));
    assert.equal(await sh(`curl -s ${base}/status | jq -r '.result.node_info.network'`), chain.chainId);
    assert.equal(await post("status", undefined, ".result.node_info.network"), JSON.stringify(chain.chainId));
    const validator = await json(get("status", ".result.validator_info"));
    assert.equal(validator.voting_power, "10");
    assert.equal(validator.pub_key.type, "tendermint/PubKeyEd25519");
  });

  test("broadcast_tx_commit (URI form with 0x-hex, and POST with base64) commits a registration", async () => {
    const a = await signRegistration(["commit-uri"]);
    const viaUri = await json(get(`broadcast_tx_commit?tx=0x${Buffer.from(a.raw).toString("hex")}`, ".result"));
    assert.equal(viaUri.check_tx.code, 0, viaUri.check_tx.log);
    assert.equal(viaUri.tx_result.code, 0, viaUri.tx_result.log);
    assert.equal(viaUri.hash, a.hash);
    assert.match(viaUri.height, /^\d+$/);
    assert.ok(Number(viaUri.height) > 0);
    committed.push({ hash: a.hash, height: Number(viaUri.height), contentHashes: a.contentHashes });

    const b = await signRegistration(["commit-post-1", "commit-post-2", "commit-post-3"], "three at once");
    const viaPost = await json(post("broadcast_tx_commit", { tx: Buffer.from(b.raw).toString("base64") }, ".result"));
    assert.equal(viaPost.check_tx.code, 0, viaPost.check_tx.log);
    assert.equal(viaPost.tx_result.code, 0, viaPost.tx_result.log);
    assert.equal(viaPost.hash, b.hash);
    assert.ok(Number(viaPost.height) >= Number(viaUri.height));
    const registered = viaPost.tx_result.events.filter((e: { type: string }) => e.type === "content_registered");
    assert.equal(registered.length, 3);
    committed.push({ hash: b.hash, height: Number(viaPost.height), contentHashes: b.contentHashes });
  });

  test("broadcast_tx_sync and broadcast_tx_async answer with a CheckTx code and the tx hash, then the txs commit", async () => {
    const c = await signRegistration(["sync-uri"]);
    const sync = await json(get(`broadcast_tx_sync?tx=0x${Buffer.from(c.raw).toString("hex")}`, ".result"));
    assert.deepEqual({ code: sync.code, hash: sync.hash, codespace: sync.codespace }, { code: 0, hash: c.hash, codespace: "" });
    committed.push({ hash: c.hash, height: await waitForTx(c.hash), contentHashes: c.contentHashes });

    const d = await signRegistration(["async-post"]);
    const async = await json(post("broadcast_tx_async", { tx: Buffer.from(d.raw).toString("base64") }, ".result"));
    assert.equal(async.code, 0);
    assert.equal(async.hash, d.hash);
    committed.push({ hash: d.hash, height: await waitForTx(d.hash), contentHashes: d.contentHashes });

    // A refusal is a CheckTx code, not an RPC error: the same registration again.
    const again = await signRegistration(["sync-uri"]);
    const refused = await json(post("broadcast_tx_sync", { tx: Buffer.from(again.raw).toString("base64") }, ".result"));
    sequence--; // refused in CheckTx: the sequence was not spent
    assert.equal(refused.code, 3);
    assert.equal(refused.codespace, "contentregistry");
    assert.equal(refused.hash, again.hash);
  });

  test("`curl -s :26657/num_unconfirmed_txs | jq '.'` answers, and unconfirmed_txs lists a waiting tx", async () => {
    const empty = await json(sh(`curl -s ${base}/num_unconfirmed_txs | jq '.'`));
    assert.equal(empty.jsonrpc, "2.0");
    for (const field of ["n_txs", "total", "total_bytes"]) assert.match(empty.result[field], /^\d+$/, `${field} is a numeric string`);
    const emptyPost = await json(post("num_unconfirmed_txs", {}, ".result | keys"));
    assert.deepEqual(emptyPost, Object.keys(empty.result).sort());

    // Catch a tx between blocks: broadcast right after a block, read the mempool at once.
    let seen: { count: Record<string, string>; list: { n_txs: string; total: string; total_bytes: string; txs: string[] } } | undefined;
    let tx: Awaited<ReturnType<typeof signRegistration>> | undefined;
    for (let attempt = 0; attempt < 5 && !seen; attempt++) {
      const start = await height();
      while ((await height()) === start) await sleep(10);
      tx = await signRegistration([`mempool-${attempt}`]);
      const printed = await sh(
        [
          `curl -s ${shq(`${base}/broadcast_tx_sync?tx=0x${Buffer.from(tx.raw).toString("hex")}`)} | jq -c '.result.code'`,
          `curl -s ${base}/num_unconfirmed_txs | jq -c '.result'`,
          `curl -s -d '{"jsonrpc":"2.0","id":2,"method":"unconfirmed_txs","params":{"limit":"10"}}' ${base} | jq -c '.result'`,
        ].join("; "),
      );
      const [code, count, list] = printed.split("\n").map((line) => JSON.parse(line));
      assert.equal(code, 0);
      committed.push({ hash: tx.hash, height: await waitForTx(tx.hash), contentHashes: tx.contentHashes });
      if (count.n_txs !== "0" && list.txs.length > 0) seen = { count, list };
    }
    assert.ok(seen && tx, "a tx was seen waiting in the mempool");
    assert.equal(seen.count.n_txs, "1");
    assert.equal(seen.count.total, "1");
    assert.equal(seen.count.total_bytes, String(tx.raw.length));
    assert.equal(seen.list.total, "1");
    assert.deepEqual(seen.list.txs, [Buffer.from(tx.raw).toString("base64")]);
  });

  test("`tx_search?query=\"tx.height>0\" | jq '.result.total_count'` prints the number of committed txs as a string", async () => {
    const uri = await sh(`curl -s '${base}/tx_search?query="tx.height>0"' | jq '.result.total_count'`);
    assert.equal(uri, JSON.stringify(String(committed.length)));
    const viaPost = await sh(
      `curl -s -d '{"jsonrpc":"2.0","id":1,"method":"tx_search","params":{"query":"tx.height>0"}}' ${base} | jq '.result.total_count'`,
    );
    assert.equal(viaPost, uri);
    const hashes = await json(get('tx_search?query="tx.height>0"&per_page=100', "[.result.txs[].hash]"));
    assert.deepEqual(
      hashes,
      committed.map((t) => t.hash),
      "ascending by height and index",
    );
  });

  test("the runbook's tx_search line, with its nested '\"'\"' shell quoting, prints the total count", async () => {
    // Typed into bash, `query='"'"'tx.height>0'"'"'` sends query="'tx.height>0'": the whole condition in single quotes.
    const printed = await sh(
      `curl -s http://127.0.0.1:${new URL(base).port}/tx_search?query='"'"'tx.height>0'"'"' | jq '.result.total_count'`,
    );
    assert.equal(printed, JSON.stringify(String(committed.length)));
  });

  test("tx?hash=0x… (URI) and tx with a base64 hash (POST) find a committed tx, with a proof on request", async () => {
    const [first, second] = committed;
    const viaUri = await json(get(`tx?hash=0x${second.hash}`, ".result"));
    assert.equal(viaUri.hash, second.hash);
    assert.equal(viaUri.height, String(second.height));
    assert.equal(viaUri.tx_result.code, 0);
    const viaPost = await json(post("tx", { hash: Buffer.from(second.hash, "hex").toString("base64") }, ".result"));
    assert.deepEqual(viaPost, viaUri);

    const proven = await json(get(`tx?hash=0x${first.hash}&prove=true`, ".result.proof"));
    const dataHash = await json(get(`block?height=${first.height}`, ".result.block.header.data_hash"));
    assert.equal(proven.root_hash, dataHash);
    const missing = await json(get(`tx?hash=0x${"AB".repeat(32)}`, ".error"));
    assert.equal(typeof missing.code, "number");
    assert.match(missing.data, /not found/);
  });

  test("tx_search: event attributes, AND, >=, <, <=, paging and order_by", async () => {
    const search = (query: string, extra: Record<string, string> = {}) =>
      json(
        getEncoded(
          "tx_search",
          { query: JSON.stringify(query), ...extra },
          "{total_count: .result.total_count, hashes: [.result.txs[].hash]}",
        ),
      );
    const multi = committed[1];

    const byEvent = await search(`content_registered.content_hash='${multi.contentHashes[1]}'`);
    assert.deepEqual(byEvent, { total_count: "1", hashes: [multi.hash] });
    const byEventPost = await json(
      post(
        "tx_search",
        { query: `content_registered.content_hash='${multi.contentHashes[1]}'` },
        "{total_count: .result.total_count, hashes: [.result.txs[].hash]}",
      ),
    );
    assert.deepEqual(byEventPost, byEvent);

    const bySender = await search(`message.sender='${creator}' AND tx.height>=${committed[0].height}`);
    assert.equal(bySender.total_count, String(committed.length));
    const byHash = await search(`tx.hash='${multi.hash}' AND content_registered.platform='runbook'`);
    assert.deepEqual(byHash.hashes, [multi.hash]);
    const contradicting = await search(`content_registered.content_hash='${multi.contentHashes[0]}' AND tx.height<${multi.height}`);
    assert.deepEqual(contradicting, { total_count: "0", hashes: [] });

    const heights = committed.map((t) => t.height);
    const [low, high] = [Math.min(...heights), Math.max(...heights)];
    const expectedBetween = (from: number, to: number) => committed.filter((t) => t.height >= from && t.height <= to).map((t) => t.hash);
    assert.deepEqual((await search(`tx.height>=${low} AND tx.height<=${high}`)).hashes, expectedBetween(low, high));
    assert.deepEqual((await search(`tx.height<${committed[2].height}`)).hashes, expectedBetween(0, committed[2].height - 1));
    assert.deepEqual((await search(`tx.height<=${committed[2].height}`)).hashes, expectedBetween(0, committed[2].height));
    assert.deepEqual((await search(`tx.height>${committed[2].height}`)).hashes, expectedBetween(committed[2].height + 1, high));

    const all = committed.map((t) => t.hash);
    const page2 = await search("tx.height>0", { per_page: "2", page: "2" });
    assert.deepEqual(page2, { total_count: String(all.length), hashes: all.slice(2, 4) });
    const desc = await search("tx.height>0", { order_by: '"desc"' });
    assert.deepEqual(desc.hashes, [...all].reverse());
    const descPage = await search("tx.height>0", { order_by: '"desc"', per_page: "1", page: "1" });
    assert.deepEqual(descPage.hashes, [all.at(-1)]);
    const descPost = await json(
      post(
        "tx_search",
        { query: "tx.height>0", order_by: "desc", per_page: "1", page: "1" },
        "{total_count: .result.total_count, hashes: [.result.txs[].hash]}",
      ),
    );
    assert.deepEqual(descPost, descPage);
    const beyond = await json(getEncoded("tx_search", { query: '"tx.height>0"', page: "99", per_page: "10" }, ".error.code"));
    assert.equal(beyond, -32602);
  });

  test("block_search block.height>=N, with paging and order_by", async () => {
    const n = committed[1].height;
    const latest = await height();
    const found = await json(
      getEncoded(
        "block_search",
        { query: `"block.height>=${n} AND block.height<=${n + 2}"` },
        "{total_count: .result.total_count, heights: [.result.blocks[].block.header.height]}",
      ),
    );
    assert.deepEqual(found, { total_count: "3", heights: [String(n), String(n + 1), String(n + 2)] });
    const open = await json(getEncoded("block_search", { query: `"block.height>=${n}"`, per_page: "1", order_by: '"desc"' }, ".result"));
    assert.ok(Number(open.total_count) >= latest - n + 1);
    assert.equal(open.blocks.length, 1);
    assert.ok(Number(open.blocks[0].block.header.height) >= latest);
    const viaPost = await json(
      post(
        "block_search",
        { query: `block.height>=${n} AND block.height<=${n + 2}`, order_by: "desc" },
        "[.result.blocks[].block.header.height]",
      ),
    );
    assert.deepEqual(viaPost, [String(n + 2), String(n + 1), String(n)]);
  });

  test("block, block_results, commit, validators, blockchain: the URI form and POST agree", async () => {
    const { height: h, hash } = committed[0];
    const pairs: [string, string, Record<string, unknown>][] = [
      ["block", `block?height=${h}`, { height: String(h) }],
      ["block_results", `block_results?height=${h}`, { height: String(h) }],
      ["commit", `commit?height=${h}`, { height: String(h) }],
      ["validators", `validators?height=${h}`, { height: String(h) }],
      ["blockchain", `blockchain?minHeight=${h}&maxHeight=${h + 2}`, { minHeight: String(h), maxHeight: String(h + 2) }],
    ];
    const results: Record<string, { block: unknown } & Record<string, unknown>> = {};
    for (const [method, uri, params] of pairs) {
      // blockchain's last_height is the moving chain head: compare the rest.
      const filter = method === "blockchain" ? ".result | del(.last_height)" : ".result";
      const viaUri = await json(get(uri, filter));
      assert.deepEqual(await json(post(method, params, filter)), viaUri, method);
      results[method] = viaUri;
    }
    const block = results.block as unknown as {
      block_id: { hash: string };
      block: { header: { height: string; chain_id: string }; data: { txs: string[] } };
    };
    assert.equal(block.block.header.height, String(h));
    assert.equal(block.block.header.chain_id, chain.chainId);
    assert.equal(sha256Hex(Buffer.from(block.block.data.txs[0], "base64")), hash);
    const blockResults = results.block_results as unknown as { txs_results: { code: number; events: { type: string }[] }[] };
    assert.equal(blockResults.txs_results[0].code, 0);
    assert.ok(blockResults.txs_results[0].events.some((e) => e.type === "content_registered"));
    const commit = results.commit as unknown as {
      signed_header: { header: { height: string }; commit: { block_id: { hash: string }; signatures: unknown[] } };
      canonical: boolean;
    };
    assert.equal(commit.signed_header.header.height, String(h));
    assert.equal(commit.signed_header.commit.block_id.hash, block.block_id.hash);
    assert.equal(commit.signed_header.commit.signatures.length, 1);
    const validators = results.validators as unknown as { block_height: string; total: string; validators: { voting_power: string }[] };
    assert.deepEqual([validators.block_height, validators.total, validators.validators[0].voting_power], [String(h), "1", "10"]);
    const chainInfo = results.blockchain as unknown as { block_metas: { header: { height: string }; num_txs: string }[] };
    assert.deepEqual(
      chainInfo.block_metas.map((m) => m.header.height),
      [String(h + 2), String(h + 1), String(h)],
    );
    assert.ok(Number(chainInfo.block_metas[2].num_txs) >= 1);

    const latest = await json(get("block", ".result.block.header.height"));
    assert.match(latest, /^\d+$/);
  });

  test("genesis and abci_info answer in both forms", async () => {
    const genesis = await json(get("genesis", ".result.genesis"));
    assert.equal(genesis.chain_id, chain.chainId);
    assert.equal(genesis.validators.length, 1);
    assert.deepEqual(await json(post("genesis", {}, ".result.genesis")), genesis);

    const info = await json(get("abci_info", ".result.response"));
    assert.match(info.last_block_height, /^\d+$/);
    assert.equal(typeof info.last_block_app_hash, "string");
    const infoPost = await json(post("abci_info", undefined, ".result.response"));
    assert.deepEqual(Object.keys(infoPost).sort(), Object.keys(info).sort());
    assert.equal(infoPost.data, info.data);
    assert.ok(Number(infoPost.last_block_height) >= Number(info.last_block_height));
    assert.equal(await get("health", ".result"), "{}");
  });

  test("the WebSocket at /websocket streams NewBlock and Tx events to subscribers", async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${new URL(base).port}/websocket`);
    const messages: {
      id?: unknown;
      result?: { query?: string; data?: { type: string; value: Record<string, unknown> }; events?: Record<string, string[]> };
      error?: unknown;
    }[] = [];
    const waiters: (() => void)[] = [];
    socket.on("message", (data) => {
      messages.push(JSON.parse(data.toString()));
      for (const wake of waiters.splice(0)) wake();
    });
    const waitFor = async <T>(pick: () => T | undefined, what: string, ms = 10_000): Promise<T> => {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = pick();
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no ${what} over the WebSocket within ${ms} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    };
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
      });
      const tx = await signRegistration(["websocket"]);
      const queries = [
        "tm.event='NewBlock'",
        "tm.event='Tx'",
        `tm.event='Tx' AND content_registered.content_hash='${tx.contentHashes[0]}'`,
      ];
      queries.forEach((query, index) => {
        socket.send(JSON.stringify({ jsonrpc: "2.0", id: index + 1, method: "subscribe", params: { query } }));
      });
      for (const id of [1, 2, 3]) {
        const ack = await waitFor(() => messages.find((m) => m.id === id && !m.result?.data), `subscribe ack ${id}`);
        assert.deepEqual(ack.result, {}, `subscription ${id} accepted`);
      }

      const newBlock = await waitFor(() => messages.find((m) => m.result?.data?.type === "tendermint/event/NewBlock"), "NewBlock event");
      assert.equal(newBlock.result?.query, queries[0]);
      const block = newBlock.result?.data?.value.block as { header: { chain_id: string; height: string } };
      assert.equal(block.header.chain_id, chain.chainId);
      assert.deepEqual(newBlock.result?.events?.["tm.event"], ["NewBlock"]);

      const sync = await json(post("broadcast_tx_sync", { tx: Buffer.from(tx.raw).toString("base64") }, ".result"));
      assert.equal(sync.code, 0, sync.log);
      const isOurs = (query: string) => () =>
        messages.find(
          (m) =>
            m.result?.query === query && m.result?.data?.type === "tendermint/event/Tx" && m.result.events?.["tx.hash"]?.includes(tx.hash),
        );
      const txEvent = await waitFor(isOurs(queries[1]), "Tx event");
      const filtered = await waitFor(isOurs(queries[2]), "Tx event for the content_hash subscription");
      const txResult = txEvent.result?.data?.value.TxResult as { height: string; tx: string; result: { code: number } };
      assert.equal(txResult.tx, Buffer.from(tx.raw).toString("base64"));
      assert.equal(txResult.result.code, 0);
      assert.deepEqual(filtered.result?.events?.["content_registered.content_hash"], tx.contentHashes);
      committed.push({ hash: tx.hash, height: Number(txResult.height), contentHashes: tx.contentHashes });

      // Only the subscribed-to tx shows up on the filtered query.
      assert.ok(
        messages
          .filter((m) => m.result?.query === queries[2] && m.result.data)
          .every((m) => m.result?.events?.["tx.hash"]?.includes(tx.hash)),
      );

      socket.send(JSON.stringify({ jsonrpc: "2.0", id: 9, method: "subscribe", params: { query: "tm.event=" } }));
      const refused = await waitFor(() => messages.find((m) => m.id === 9), "answer to a bad subscription");
      assert.equal((refused.error as { code: number }).code, -32602);
    } finally {
      socket.close();
    }
    const total = await sh(`curl -s '${base}/tx_search?query="tx.height>0"' | jq '.result.total_count'`);
    assert.equal(total, JSON.stringify(String(committed.length)));
  });
});
