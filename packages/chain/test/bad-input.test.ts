import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { SigningStargateClient, StargateClient } from "@cosmjs/stargate";
import {
  MsgRegisterContent,
  MsgTransferOwnership,
  QUERY_VERIFY_CONTENT,
  QueryVerifyContentRequest,
  QueryVerifyContentResponse,
} from "@daon/core";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import WebSocket from "ws";
import { type LedgerNode, LedgerService, loadHome } from "../src/index.js";
import { methods } from "../src/rpc/methods.js";
import { contentHash, createTestHome, daonRegistry } from "./test-chain.js";

/**
 * Bad input: at least 10,000 malformed requests, generated from a fixed seed, each answered with
 * a JSON-RPC error or a CheckTx refusal with a code, while the node keeps producing blocks.
 */

const SEED = 0xda0_2026;
const CONCURRENCY = 32;
const REQUEST_TIMEOUT_MS = 15_000;
/** The test node's mempool `max_tx_bytes`: low enough that an oversized tx still fits in an RPC body. */
const MAX_TX_BYTES = 65_536;
const MIN_REQUESTS = 10_000;
const JSON_RPC_ERRORS = new Set([-32700, -32600, -32601, -32602, -32603]);
const KNOWN_QUERY_PATHS = [
  QUERY_VERIFY_CONTENT,
  "/daoncore.contentregistry.v1.Query/Params",
  "/cosmos.auth.v1beta1.Query/Account",
  "/cosmos.tx.v1beta1.Service/Simulate",
];
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);

// ---------------------------------------------------------------------------------------------
// Seeded randomness and protobuf bytes

type Rng = ReturnType<typeof prng>;

/** mulberry32: small, fast and the same on every run. */
function prng(seed: number) {
  let state = seed >>> 0;
  const uint32 = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = () => uint32() / 4294967296;
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    range: (lo: number, hi: number) => lo + int(hi - lo + 1),
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
    bytes: (n: number) => {
      const out = Buffer.alloc(n + 3);
      for (let i = 0; i < n; i += 4) out.writeUInt32LE(uint32(), i);
      return out.subarray(0, n);
    },
    /** Printable ASCII, optionally with some latin-1 and control characters mixed in. */
    text: (n: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-'\"=<>! ()%&?#") => {
      let out = "";
      for (let i = 0; i < n; i++) out += alphabet[int(alphabet.length)];
      return out;
    },
  };
}

const varint = (value: number | bigint): number[] => {
  let v = BigInt(value);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
};
const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
const lengthDelimited = (field: number, payload: Uint8Array | number[]) => [...tag(field, 2), ...varint(payload.length), ...payload];
const encodeTxRaw = (bodyBytes: Uint8Array | number[], authInfoBytes: Uint8Array, signature: Uint8Array) =>
  Buffer.from(TxRaw.encode({ bodyBytes: Uint8Array.from(bodyBytes), authInfoBytes, signatures: [signature] }).finish());
const hugeLengths = [2 ** 31 - 1, 2 ** 32 - 1, 2 ** 35, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n, 1_000_000, 65_537];

/** Where each top-level field's tag sits in an encoded message of length-delimited fields. */
function topLevelTags(bytes: Uint8Array): { at: number; field: number }[] {
  const tags: { at: number; field: number }[] = [];
  let pos = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return result;
    }
  };
  while (pos < bytes.length) {
    const at = pos;
    const key = readVarint();
    tags.push({ at, field: key >>> 3 });
    const length = readVarint();
    pos += length;
  }
  return tags;
}

// ---------------------------------------------------------------------------------------------
// The malformed requests

interface Bad {
  category: string;
  method: string;
  path: string;
  body?: Buffer;
  /** abci_query on VerifyContent may truthfully answer "not registered" (code 0, verified false). */
  verifyContentQuery?: boolean;
}

const rpcBody = (method: unknown, params?: unknown, extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 1, method, ...(params === undefined ? {} : { params }), ...extra }));
const postJson = (category: string, body: Buffer | string): Bad => ({
  category,
  method: "POST",
  path: "/",
  body: typeof body === "string" ? Buffer.from(body) : body,
});
const getUri = (category: string, path: string): Bad => ({ category, method: "GET", path });
const broadcastSync = (category: string, tx: Uint8Array, rng: Rng): Bad =>
  rng.chance(0.8)
    ? postJson(category, rpcBody("broadcast_tx_sync", { tx: Buffer.from(tx).toString("base64") }))
    : getUri(category, `/broadcast_tx_sync?tx=0x${Buffer.from(tx).toString("hex")}`);

/** Everything the flood sends, in a fixed order from the seed; `bases` are valid signed txs never sent whole. */
function generate(rng: Rng, bases: Buffer[], latestHeight: number): { requests: Bad[]; counts: Record<string, number> } {
  const requests: Bad[] = [];
  const add = (count: number, make: (i: number) => Bad) => {
    for (let i = 0; i < count; i++) requests.push(make(i));
  };

  // Random bytes as txs.
  add(2000, () => {
    const size = rng.pick([rng.range(1, 16), rng.range(16, 512), rng.range(512, 4096), rng.range(4096, 60_000)]);
    return broadcastSync("random-bytes-tx", rng.bytes(size), rng);
  });

  // Valid signed txs cut short at a random point (never at their full length).
  add(1000, () => {
    const base = rng.pick(bases);
    return broadcastSync("truncated-tx", base.subarray(0, rng.range(1, base.length - 1)), rng);
  });

  // Valid signed txs with 1–4 bytes flipped.
  add(700, () => {
    const tx = Buffer.from(rng.pick(bases));
    for (let n = rng.range(1, 4), i = 0; i < n; i++) tx[rng.int(tx.length)] ^= rng.range(1, 255);
    return broadcastSync("flipped-tx", tx, rng);
  });

  // Oversized: txs above the mempool's max_tx_bytes, and bodies above the RPC's max_body_bytes.
  add(30, (i) => {
    const size = MAX_TX_BYTES + rng.range(1, 40_000);
    const tx = i % 2 ? rng.bytes(size) : Buffer.concat([rng.pick(bases), rng.bytes(size)]);
    return i % 3 === 0
      ? getUri("oversized", `/broadcast_tx_sync?tx=0x${tx.toString("hex")}`)
      : postJson("oversized", rpcBody("broadcast_tx_sync", { tx: tx.toString("base64") }));
  });
  add(6, (i) =>
    postJson(
      "oversized",
      i % 2
        ? rpcBody("broadcast_tx_sync", { tx: rng.bytes(800_000).toString("base64") })
        : Buffer.concat([
            Buffer.from('{"jsonrpc":"2.0","id":1,"method":"status","params":{"pad":"'),
            Buffer.alloc(1_100_000, 0x61),
            Buffer.from('"}}'),
          ]),
    ),
  );

  // Protobuf: wrong wire types, huge declared lengths, deep nesting.
  const [good] = bases;
  const goodRaw = TxRaw.decode(good);
  const signature = goodRaw.signatures[0];
  add(400, () => {
    const kind = rng.int(3);
    if (kind === 0) {
      // A valid tx with one top-level field re-tagged with another wire type.
      const base = Buffer.from(rng.pick(bases));
      const target = rng.pick(topLevelTags(base));
      base[target.at] = (target.field << 3) | rng.pick([0, 1, 3, 4, 5, 6, 7]);
      return broadcastSync("protobuf-wire-type", base, rng);
    }
    if (kind === 1) {
      // The body's first field (messages) re-tagged: the body no longer matches the signature.
      const body = Buffer.from(goodRaw.bodyBytes);
      body[0] = (1 << 3) | rng.pick([0, 1, 3, 4, 5, 6, 7]);
      return broadcastSync("protobuf-wire-type", encodeTxRaw(body, goodRaw.authInfoBytes, signature), rng);
    }
    // Random fields with random (also invalid) wire types, field 0 included.
    const bytes: number[] = [];
    for (let n = rng.range(1, 20), i = 0; i < n; i++) {
      const wireType = rng.int(8);
      bytes.push(...tag(rng.int(20), wireType));
      if (wireType === 0) bytes.push(...varint(rng.int(1_000_000)));
      else if (wireType === 1) bytes.push(...rng.bytes(8));
      else if (wireType === 5) bytes.push(...rng.bytes(4));
      else if (wireType === 2) bytes.push(...varint(rng.int(40)), ...rng.bytes(rng.int(40)));
    }
    return broadcastSync("protobuf-wire-type", Buffer.from(bytes), rng);
  });
  add(400, () => {
    const huge = rng.pick(hugeLengths);
    const tail = [...rng.bytes(rng.range(0, 64))];
    switch (rng.int(5)) {
      case 0:
        return broadcastSync("protobuf-huge-length", Buffer.from([...tag(rng.range(1, 3), 2), ...varint(huge), ...tail]), rng);
      case 1:
        return broadcastSync(
          "protobuf-huge-length",
          encodeTxRaw([...tag(1, 2), ...varint(huge), ...tail], goodRaw.authInfoBytes, signature),
          rng,
        );
      case 2: {
        // A register message whose content_hash claims more bytes than there are.
        const any = [
          ...lengthDelimited(1, Buffer.from(MsgRegisterContent.typeUrl)),
          ...lengthDelimited(2, [...tag(2, 2), ...varint(huge), ...tail]),
        ];
        return broadcastSync("protobuf-huge-length", encodeTxRaw(lengthDelimited(1, any), goodRaw.authInfoBytes, signature), rng);
      }
      case 3:
        return broadcastSync(
          "protobuf-huge-length",
          encodeTxRaw(goodRaw.bodyBytes, Uint8Array.from([...tag(1, 2), ...varint(huge), ...tail]), signature),
          rng,
        );
      default: {
        // The body's length prefix written as a longer varint than needed (same bytes, another hash).
        const body = goodRaw.bodyBytes;
        const padded = [...varint(body.length)];
        padded[padded.length - 1] |= 0x80;
        padded.push(...Array.from({ length: rng.range(0, 3) }, () => 0x80), 0x00);
        const rest = good.subarray(1 + varint(body.length).length + body.length);
        return broadcastSync("protobuf-huge-length", Buffer.concat([Buffer.from([0x0a, ...padded]), Buffer.from(body), rest]), rng);
      }
    }
  });
  add(400, () => {
    const depth = rng.pick([rng.range(2, 100), rng.range(100, 2000), rng.range(2000, 30_000)]);
    const groups = (closed: boolean) => Buffer.concat([Buffer.alloc(depth, 0x7b), Buffer.alloc(closed ? depth : 0, 0x7c)]);
    switch (rng.int(4)) {
      case 0:
        // Nested groups of an unknown field at the top level (closed or not).
        return broadcastSync("protobuf-deep-nesting", groups(rng.chance(0.7)), rng);
      case 1:
        return broadcastSync("protobuf-deep-nesting", encodeTxRaw(groups(true), goodRaw.authInfoBytes, signature), rng);
      case 2: {
        const any = [...lengthDelimited(1, Buffer.from(MsgRegisterContent.typeUrl)), ...lengthDelimited(2, groups(rng.chance(0.5)))];
        return broadcastSync("protobuf-deep-nesting", encodeTxRaw(lengthDelimited(1, any), goodRaw.authInfoBytes, signature), rng);
      }
      default: {
        // Length-delimited messages inside each other, built from the inside out.
        const inner = rng.bytes(8);
        const headers: Buffer[] = [];
        let size = inner.length;
        for (let level = 0; level < Math.min(depth, 5000); level++) {
          const header = Buffer.from([...tag(rng.range(1, 3), 2), ...varint(size)]);
          headers.push(header);
          size += header.length;
        }
        return broadcastSync(
          "protobuf-deep-nesting",
          encodeTxRaw(Buffer.concat([...headers.reverse(), inner]), goodRaw.authInfoBytes, signature),
          rng,
        );
      }
    }
  });

  // Broken JSON-RPC.
  const validBodies = [
    rpcBody("status"),
    rpcBody("block", { height: "1" }),
    rpcBody("tx_search", { query: "tx.height>0", page: "1" }),
    rpcBody("abci_query", { path: QUERY_VERIFY_CONTENT, data: "0a00" }),
    rpcBody("broadcast_tx_sync", { tx: good.toString("base64") }),
  ].map((b) => b.toString());
  const badParams: [string, Record<string, unknown>, string, unknown[]][] = [
    ["block", {}, "height", ["abc", -1, "-1", 1.5, "1.5", true, {}, [], "1e3", "99999999999999999999", "0x10", 99_999_999]],
    ["commit", {}, "height", ["abc", -7, false, { h: 1 }, [1], "2.0", 12_345_678]],
    ["block_results", {}, "height", ["x", -2, 0.5, "NaN", "Infinity"]],
    ["validators", {}, "height", ["h", -1, "1 ", " 1"]],
    ["blockchain", {}, "minHeight", ["a", -3, [], {}]],
    ["blockchain", { minHeight: "5" }, "maxHeight", ["b", -3, "2", 3]],
    ["tx", {}, "hash", [123, "!!!!", "abc", {}, [], true, Buffer.alloc(32).toString("base64")]],
    ["tx", { hash: Buffer.alloc(32, 1).toString("base64") }, "prove", ["maybe", 1, "TRUE", {}]],
    ["tx_search", {}, "query", [5, true, {}, [], "tx.height>", "'tx.height>0'", "tx.height>0 AND", "a='b", "x".repeat(600)]],
    ["tx_search", { query: "tx.height>0" }, "page", ["zero", 0, -1, "0", 99_999]],
    ["tx_search", { query: "tx.height>0" }, "per_page", ["many", -5, {}]],
    ["tx_search", { query: "tx.height>0" }, "order_by", ["sideways", 1, "ASC", {}]],
    ["block_search", {}, "query", [7, "block.height>=", "block.height>='1", "", "EXISTS"]],
    ["abci_query", {}, "path", [5, {}, [], false]],
    ["abci_query", { path: QUERY_VERIFY_CONTENT }, "data", ["zz", "abc", 12, "0x00", {}]],
    ["abci_query", { path: QUERY_VERIFY_CONTENT }, "height", ["top", -1, 1.25]],
    ["abci_query", { path: QUERY_VERIFY_CONTENT }, "prove", ["yes", 0, []]],
    ["broadcast_tx_sync", {}, "tx", ["!!!!", "abc", 42, {}, [], true, "0x0a0b", "ZZZZ===="]],
    ["broadcast_tx_commit", {}, "tx", ["?", 7, "AA=", "====", "not base64 at all"]],
    ["unconfirmed_txs", {}, "limit", ["lots", -1, {}]],
  ];
  const brokenJson: (() => Bad)[] = [
    // Valid requests cut short.
    () => {
      const body = rng.pick(validBodies);
      return postJson("broken-json", body.slice(0, rng.int(body.length)));
    },
    // Random bytes, or JSON-looking noise.
    () => postJson("broken-json", rng.bytes(rng.range(1, 600))),
    () => postJson("broken-json", `{${rng.text(rng.range(1, 200))}`),
    // Wrong types for params.
    () => {
      const [method, rest, name, values] = rng.pick(badParams);
      const value = rng.pick(values);
      const params = { ...rest, [name]: value };
      return postJson(
        "broken-json",
        rng.chance(0.2) && Object.keys(rest).length === 0 ? rpcBody(method, [value]) : rpcBody(method, params),
      );
    },
    // params as a string, number or boolean.
    () =>
      postJson(
        "broken-json",
        rpcBody(
          rng.pick(["status", "block", "tx_search", "abci_query", "broadcast_tx_sync", "health"]),
          rng.pick(["x", "height=1", 5, 0, -1, true, false]),
        ),
      ),
    // Missing or non-string method.
    () =>
      postJson(
        "broken-json",
        rng.chance(0.3) ? JSON.stringify({ jsonrpc: "2.0", id: 1, params: {} }) : rpcBody(rng.pick([5, null, {}, [], true, ["status"]])),
      ),
    // Wrong protocol version.
    () =>
      postJson(
        "broken-json",
        JSON.stringify({
          ...(rng.chance(0.2) ? {} : { jsonrpc: rng.pick(["1.0", "2", 2, 2.0, null, "2.0 ", "", {}]) }),
          id: rng.int(1000),
          method: "status",
        }),
      ),
    // Not an object.
    () => postJson("broken-json", rng.pick(["1", '"status"', "null", "true", "false", "-0", "1e999", '""', "{}", "[{}]"])),
    // Batches: empty, too long, of garbage.
    () => postJson("broken-json", "[]"),
    () => {
      const garbage = () =>
        rng.pick<unknown>([
          1,
          "x",
          null,
          [],
          [1, 2],
          {},
          { jsonrpc: "1.0", method: "status" },
          { jsonrpc: "2.0", method: "nope" },
          { jsonrpc: "2.0", id: {}, method: 5 },
          { jsonrpc: "2.0", method: "block", params: { height: "abc" } },
        ]);
      return postJson("broken-json", JSON.stringify(Array.from({ length: rng.range(1, 130) }, garbage)));
    },
    // Deeply nested JSON.
    () => {
      const depth = rng.range(10, 50_000);
      return postJson(
        "broken-json",
        rng.chance(0.5) ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
      );
    },
    // Other HTTP methods.
    () => ({ category: "broken-json", method: rng.pick(["PUT", "DELETE", "PATCH", "OPTIONS"]), path: "/", body: rpcBody("status") }),
    () => getUri("broken-json", "/"),
  ];
  add(2000, () => rng.pick(brokenJson)());

  // Unknown methods.
  add(1000, () => {
    const name = rng.pick<() => string>([
      () => rng.pick(PROTOTYPE_NAMES),
      () => rng.text(rng.range(1, 40), "abcdefghijklmnopqrstuvwxyz_"),
      () =>
        rng.pick([
          "Status",
          "STATUS",
          "status ",
          " status",
          "status/",
          "block_",
          "tx_searc",
          "broadcast_tx",
          "subscribe",
          "unsubscribe",
          "dial_seeds",
          "unsafe_flush_mempool",
        ]),
      () => rng.text(rng.range(1000, 10_000), "abcdef"),
      () => `${rng.pick(["é", "ü", "中", "🚀", "\u0000", "\u202e"])}${rng.text(8)}`,
    ])();
    if (Object.hasOwn(methods, name)) return postJson("unknown-method", rpcBody(`${name}_`));
    const params = rng.pick<unknown>([undefined, {}, [], { height: "1" }, { x: 1 }]);
    if (rng.chance(0.7) || /[^\x21-\x7e]/.test(name)) return postJson("unknown-method", rpcBody(name, params));
    return getUri("unknown-method", `/${encodeURIComponent(name)}${rng.chance(0.5) ? "?height=1&x=2" : ""}`);
  });

  // URI forms with garbage arguments.
  const longQuery = () => {
    const size = rng.range(90_000, 110_000);
    return rng.pick([
      `"${"a".repeat(size)}"`,
      encodeURIComponent(`tx.height>0 AND ${"x='y' AND ".repeat(size / 12)}tx.height<9`),
      "%41".repeat(size / 3),
    ]);
  };
  const unbalanced = () => {
    let query = rng.text(rng.range(1, 60));
    if ((query.match(/'/g) ?? []).length % 2 === 0) query += "'";
    return encodeURIComponent(`"${query}"`);
  };
  const percentGarbage = () => rng.pick(["%", "%%", "%zz", "%E0%A4%A", "%00", "%FF%FE", "%C0%AF", "%ED%A0%80", "%2", "%%41", "%u0041"]);
  const uriGarbage: (() => string)[] = [
    () =>
      `/${rng.pick(["block", "commit", "block_results", "validators", "consensus_params"])}?height=${rng.pick(["-1", "abc", "1.5", "99999999999", "0x10", "%00", '"-1"', "1e3", "12345678901234567890", "-0x1", "NaN", `${latestHeight + 100_000}`, percentGarbage()])}`,
    () =>
      `/tx?hash=${rng.pick(["zz", "0x123", "0xZZ", `0x${rng.bytes(32).toString("hex")}`, '"abc"', percentGarbage(), `0x${rng.bytes(rng.range(1, 40)).toString("hex")}`])}`,
    () => `/tx_search?query=${unbalanced()}`,
    () =>
      `/tx_search?query=${rng.pick(['""', '"AND"', '"tx.height>>5"', encodeURIComponent(`"tx.height='1' AND"`), '"=5"', encodeURIComponent('"tx.height EXISTS EXISTS"'), percentGarbage()])}`,
    () => `/tx_search?query=${longQuery()}`,
    () =>
      `/tx_search?query="tx.height>0"&${rng.pick(["page=0", "page=-1", "page=abc", "page=99999", "per_page=abc", "per_page=-1", 'order_by="up"', "order_by=%zz", "prove=maybe", `page=${percentGarbage()}`])}`,
    () =>
      `/block_search?query=${rng.pick([unbalanced(), longQuery(), '"block.height>="', percentGarbage(), '"block.height>=1"&page=-4', '"block.height>=1"&order_by="random"'])}`,
    () =>
      `/blockchain?${rng.pick(["minHeight=10&maxHeight=2", "minHeight=-5", "maxHeight=x", `minHeight=${percentGarbage()}`, "minHeight=1e9&maxHeight=1e10"])}`,
    () =>
      `/abci_query?${rng.pick(["data=zz", 'path="/x"&data=0xZ', "height=-1", "prove=yes", `data=0x${rng.bytes(3).toString("hex")}1`, `path=${percentGarbage()}`, "path=%22%22&data=0x00&height=abc"])}`,
    () => `/broadcast_tx_sync?tx=${rng.pick(["zz", "0x1", '""', "%ZZ", "0x", "", percentGarbage(), "0xGG00"])}`,
    () => `/broadcast_tx_commit?tx=${rng.pick(["zz", '""', "0x", `0x${rng.bytes(rng.range(1, 80)).toString("hex")}`])}`,
    () => `/unconfirmed_txs?limit=${rng.pick(["abc", "-1", "1.5", percentGarbage()])}`,
    () => rng.pick(["//[", "/%", "/%zz", "/status/..%2F..%2F", "/?jsonrpc=2.0&method=status", `/${percentGarbage()}`]),
  ];
  add(1500, () => getUri("uri-garbage", rng.pick(uriGarbage)()));

  // abci_query with random paths and random data.
  add(1000, () => {
    const known = rng.chance(0.3);
    let path = known
      ? rng.pick(KNOWN_QUERY_PATHS.filter((p) => !p.endsWith("/Params")))
      : `${rng.chance(0.7) ? "/" : ""}${rng.text(rng.range(0, 120))}`;
    if (!known && KNOWN_QUERY_PATHS.includes(path)) path += "x";
    const data = rng.bytes(rng.pick([0, rng.range(1, 64), rng.range(64, 4000)])).toString("hex");
    const verifyContentQuery = path === QUERY_VERIFY_CONTENT;
    if (rng.chance(0.75)) {
      const params: Record<string, unknown> = { path, data };
      if (rng.chance(0.3)) params.prove = rng.chance(0.5);
      if (rng.chance(0.2)) params.height = String(latestHeight + rng.range(1000, 100_000));
      return { ...postJson("abci-query", rpcBody("abci_query", params)), verifyContentQuery };
    }
    return {
      ...getUri(
        "abci-query",
        `/abci_query?path=${encodeURIComponent(JSON.stringify(path))}&data=0x${data}${rng.chance(0.3) ? "&prove=true" : ""}`,
      ),
      verifyContentQuery,
    };
  });

  const counts: Record<string, number> = {};
  for (const r of requests) counts[r.category] = (counts[r.category] ?? 0) + 1;
  return { requests, counts };
}

// ---------------------------------------------------------------------------------------------
// Judging the answers

/** Why an answer is not an acceptable refusal, or undefined when it is. */
function judge(bad: Bad, status: number, text: string): string | undefined {
  if (status >= 500) return `HTTP ${status}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`;
  }
  if (Array.isArray(body)) {
    if (body.length === 0) return "an empty batch answer";
    for (const item of body) {
      const problem = judgeEnvelope(bad, item);
      if (problem) return `batch item: ${problem}`;
    }
    return undefined;
  }
  return judgeEnvelope(bad, body);
}

function judgeEnvelope(bad: Bad, envelope: unknown): string | undefined {
  if (typeof envelope !== "object" || envelope === null) return `not a JSON-RPC answer: ${JSON.stringify(envelope)?.slice(0, 120)}`;
  const { jsonrpc, error, result } = envelope as {
    jsonrpc?: unknown;
    error?: { code?: unknown; message?: unknown };
    result?: Record<string, unknown>;
  };
  if (jsonrpc !== "2.0") return `jsonrpc is ${JSON.stringify(jsonrpc)}`;
  if (error !== undefined) {
    if (!JSON_RPC_ERRORS.has(error.code as number)) return `error code ${JSON.stringify(error.code)} is not a JSON-RPC error code`;
    if (typeof error.message !== "string" || error.message === "") return "error without a message";
    return undefined;
  }
  if (typeof result !== "object" || result === null) return "neither error nor result";
  const refusal = (answer: unknown, where: string) => {
    const { code, codespace } = (answer ?? {}) as { code?: unknown; codespace?: unknown };
    if (typeof code !== "number") return `${where} has no numeric code`;
    if (code === 0) return `${where} accepted garbage (code 0)`;
    if (typeof codespace !== "string" || codespace === "") return `${where} code ${code} without a codespace`;
    return undefined;
  };
  if ("check_tx" in result) return refusal(result.check_tx, "check_tx");
  if ("response" in result) {
    const response = result.response as { code?: unknown; value?: string | null };
    if (bad.verifyContentQuery && response.code === 0) {
      // Random data that decodes as a request for an unknown hash: "not registered" is the right answer.
      const answer = QueryVerifyContentResponse.decode(Buffer.from(response.value ?? "", "base64"));
      return answer.verified ? "VerifyContent verified garbage" : undefined;
    }
    return refusal(response, "abci_query response");
  }
  return refusal(result, "result");
}

/** A short name for an accepted answer, for the summary: `-32602`, `sdk/2`, `batch`. */
function outcome(text: string): string {
  const body = JSON.parse(text);
  if (Array.isArray(body)) return "batch";
  if (body.error) return String(body.error.code);
  if (body.result.response?.code === 0) return "not-registered";
  const answer = body.result.check_tx ?? body.result.response ?? body.result;
  return `${answer.codespace || "ok"}/${answer.code}`;
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Answer {
  status: number;
  text: string;
}

function exchange(port: number, agent: Agent, bad: Bad): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer!);
    };
    const headers: Record<string, string | number> = bad.body
      ? { "Content-Type": "application/json", "Content-Length": bad.body.length }
      : {};
    const req = request({ host: "127.0.0.1", port, method: bad.method, path: bad.path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (error) => finish(error));
    });
    const timer = setTimeout(() => {
      finish(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms (hang)`));
      req.destroy();
    }, REQUEST_TIMEOUT_MS);
    req.on("error", (error) => finish(error));
    req.end(bad.body);
  });
}

/** Not HTTP at all, or HTTP the parser must refuse: each gets a 400 with a JSON-RPC error, or (upgrade) at least no crash. */
function rawGarbage(rng: Rng): { text: Buffer; expectAnswer: boolean }[] {
  const lines = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "GET /status HTTP/1.1\r\nHost x\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /sta tus HTTP/1.1\r\nHost: x\r\n\r\n",
    "\x00\x01\x02\x03\r\n\r\n",
    "GET /status HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n",
  ];
  const upgrade = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const out: { text: Buffer; expectAnswer: boolean }[] = [];
  for (let i = 0; i < 120; i++) {
    const kind = i % 4;
    if (kind === 0) out.push({ text: Buffer.from(lines[(i / 4) % lines.length]), expectAnswer: true });
    else if (kind === 1)
      out.push({
        text: Buffer.concat([Buffer.from([rng.range(0, 31)]), rng.bytes(rng.range(1, 300)), Buffer.from("\r\n\r\n")]),
        expectAnswer: true,
      });
    else if (kind === 2)
      out.push({ text: Buffer.from(upgrade(rng.pick(["//[", "/status", "/", "/websocket/x", "/%zz"]))), expectAnswer: true });
    else
      out.push({
        text: Buffer.from(
          upgrade("/websocket").replace("Sec-WebSocket-Version: 13", `Sec-WebSocket-Version: ${rng.pick(["0", "x", "99"])}`),
        ),
        expectAnswer: false,
      });
  }
  return out;
}

function rawExchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(bytes));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw request got no close within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Garbage over the WebSocket: every message gets one JSON-RPC error back. */
async function socketGarbage(port: number, rng: Rng, count: number): Promise<{ sent: number; problems: string[] }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const problems: string[] = [];
  const makers: (() => string)[] = [
    () => rng.text(rng.range(1, 200)),
    () => JSON.stringify({ jsonrpc: "2.0", id: 1, method: rng.pick(PROTOTYPE_NAMES), params: rng.pick([{}, [], { query: "x" }]) }),
    () =>
      JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "subscribe",
        params: rng.pick([{}, { query: 5 }, { query: "tm.event=" }, { query: "tx.height>0" }, { query: `'${rng.text(10)}` }, "x", null]),
      }),
    () => JSON.stringify({ jsonrpc: "1.0", id: 3, method: "status" }),
    () => JSON.stringify(rng.pick<unknown>([null, 1, "x", [], [{ jsonrpc: "2.0", method: "status" }]])),
    () => JSON.stringify({ jsonrpc: "2.0", id: 4, method: "block", params: { height: rng.pick(["abc", -1, {}]) } }),
    () => JSON.stringify({ jsonrpc: "2.0", id: 5, method: rng.text(12, "xyz_") }),
  ];
  let sent = 0;
  try {
    for (; sent < count; sent++) {
      const message = rng.pick(makers)();
      const reply = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no WebSocket answer to ${message.slice(0, 80)}`)), REQUEST_TIMEOUT_MS);
        socket.once("message", (data) => {
          clearTimeout(timer);
          resolve(data.toString());
        });
        socket.send(message);
      });
      const problem = judge({ category: "websocket", method: "WS", path: "/websocket" }, 200, reply);
      if (problem) problems.push(`websocket ${message.slice(0, 80)}: ${problem}`);
    }
  } finally {
    socket.close();
  }
  return { sent, problems };
}

// ---------------------------------------------------------------------------------------------

describe("bad input: a flood of malformed requests", () => {
  let dir: string;
  let service: LedgerService;
  let port: number;
  let creator: string;
  let accountNumber: bigint;
  let bases: Buffer[];
  let baseHashes: string[];
  let wallets: Awaited<ReturnType<typeof createTestHome>>["wallets"];
  let addresses: string[];
  const fatal: unknown[] = [];

  before(async () => {
    const created = await createTestHome({ wallets: 2, consensus: { timeoutCommitMs: 200 } });
    ({ dir, wallets, addresses } = created);
    const home = await loadHome(created.home);
    home.config.mempool.maxTxBytes = MAX_TX_BYTES;
    service = await LedgerService.start(home, { rpcListen: "tcp://127.0.0.1:0" });
    service.node.events.on("fatal", (error) => fatal.push(error));
    port = service.address.port;
    while (service.node.height < 1) await new Promise((resolve) => setTimeout(resolve, 20));

    creator = addresses[0];
    const reader = await StargateClient.connect(service.rpcUrl);
    const account = await reader.getAccount(creator);
    reader.disconnect();
    assert.ok(account);
    accountNumber = account.accountNumber;
    // Valid signed txs at the account's current sequence: cut, flipped and re-framed, never sent whole.
    const signer = await SigningStargateClient.offline(wallets[0], { registry: daonRegistry() });
    const register = (label: string, extra: Partial<MsgRegisterContent> = {}) => ({
      typeUrl: MsgRegisterContent.typeUrl,
      value: MsgRegisterContent.fromPartial({
        creator,
        contentHash: contentHash(`bad-input-${dir}-${label}`),
        license: "cc0",
        platform: "fuzz",
        ...extra,
      }),
    });
    const shapes = [
      [register("one")],
      [register("owner", { owner: "o_fuzz", fingerprint: "fp", aiTrainingPolicy: "open" })],
      Array.from({ length: 5 }, (_, i) => register(`five-${i}`)),
      [
        register("with-transfer"),
        {
          typeUrl: MsgTransferOwnership.typeUrl,
          value: MsgTransferOwnership.fromPartial({
            creator,
            contentHash: contentHash(`bad-input-${dir}-with-transfer`),
            newOwner: "o_next",
          }),
        },
      ],
    ];
    bases = [];
    for (const [i, messages] of shapes.entries()) {
      const signed = await signer.sign(creator, messages, { amount: [], gas: "500000" }, i === 3 ? "a memo" : "", {
        accountNumber,
        sequence: account.sequence,
        chainId: home.genesis.chain_id,
      });
      bases.push(Buffer.from(TxRaw.encode(signed).finish()));
    }
    baseHashes = shapes[0].map((m) => (m.value as MsgRegisterContent).contentHash);
  });

  after(async () => {
    await service?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test(`≥ ${MIN_REQUESTS} malformed requests each get a JSON-RPC error or a CheckTx refusal; the node keeps producing blocks`, async () => {
    const node: LedgerNode = service.node;
    const rng = prng(SEED);
    const startedAt = Date.now();
    const heightBefore = node.height;
    const { requests, counts } = generate(rng, bases, heightBefore);
    const raw = rawGarbage(rng);
    const generatedMs = Date.now() - startedAt;

    // Block production while the flood runs: commit times, and /status as a client sees it.
    const commitTimes: number[] = [];
    const onBlock = () => commitTimes.push(Date.now());
    node.events.on("block", onBlock);
    const statusHeights: number[] = [];
    let flooding = true;
    const monitor = (async () => {
      while (flooding) {
        const status = (await (await fetch(`${service.rpcUrl}/status`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json()) as {
          result: { sync_info: { latest_block_height: string } };
        };
        statusHeights.push(Number(status.result.sync_info.latest_block_height));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();

    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const problems: string[] = [];
    const byCategory: Record<string, { sent: number; statuses: Record<number, number>; outcomes: Record<string, number> }> = {};
    let answered = 0;
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const bad = requests[next++];
        byCategory[bad.category] ??= { sent: 0, statuses: {}, outcomes: {} };
        const stats = byCategory[bad.category];
        stats.sent++;
        try {
          const { status, text } = await exchange(port, agent, bad);
          answered++;
          stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
          const problem = judge(bad, status, text);
          if (problem)
            problems.push(
              `${bad.category} ${bad.method} ${bad.path.slice(0, 100)} ${bad.body?.subarray(0, 100).toString() ?? ""}: ${problem}`,
            );
          else {
            const key = outcome(text);
            stats.outcomes[key] = (stats.outcomes[key] ?? 0) + 1;
          }
        } catch (error) {
          problems.push(
            `${bad.category} ${bad.method} ${bad.path.slice(0, 100)}: ${(error as Error & { code?: string }).code ?? ""} ${(error as Error).message}`,
          );
        }
      }
    };
    const floodStart = Date.now();
    await Promise.all([
      ...Array.from({ length: CONCURRENCY }, worker),
      (async () => {
        for (const [i, { text, expectAnswer }] of raw.entries()) {
          try {
            const answer = await rawExchange(port, text);
            if (expectAnswer) {
              const [head, ...rest] = answer.split("\r\n\r\n");
              const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
              if (!status) problems.push(`raw-http #${i}: no HTTP answer: ${JSON.stringify(answer.slice(0, 80))}`);
              else {
                const problem = judge({ category: "raw-http", method: "RAW", path: "" }, status, rest.join("\r\n\r\n"));
                if (problem) problems.push(`raw-http #${i} ${JSON.stringify(text.subarray(0, 60).toString())}: ${problem}`);
              }
            }
          } catch (error) {
            problems.push(`raw-http #${i}: ${(error as Error & { code?: string }).code ?? ""} ${(error as Error).message}`);
          }
        }
      })(),
      (async () => {
        const ws = await socketGarbage(port, rng, 300);
        counts.websocket = ws.sent;
        problems.push(...ws.problems);
      })(),
    ]);
    const floodMs = Date.now() - floodStart;
    flooding = false;
    await monitor;
    agent.destroy();
    node.events.off("block", onBlock);
    counts["raw-http"] = raw.length;

    const heightAfterFlood = node.height;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(
      `bad-input: ${total} malformed requests (generated in ${generatedMs} ms) sent in ${floodMs} ms, height ${heightBefore} → ${heightAfterFlood}`,
    );
    for (const [category, stats] of Object.entries(byCategory)) console.log(`  ${category}: ${JSON.stringify(stats)}`);
    console.log(`  websocket: ${counts.websocket}, raw-http: ${counts["raw-http"]}`);

    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} requests were not answered as refusals`);
    assert.equal(answered, requests.length, "every HTTP request was answered");
    assert.ok(requests.length >= MIN_REQUESTS, `${requests.length} HTTP requests sent`);
    assert.ok(total >= MIN_REQUESTS);

    // The node is the same and kept producing blocks, during the flood and after it.
    assert.equal(service.node, node);
    assert.deepEqual(fatal, []);
    assert.ok(heightAfterFlood - heightBefore >= 3, `height rose by ${heightAfterFlood - heightBefore} during the flood`);
    const gaps = commitTimes.slice(1).map((t, i) => t - commitTimes[i]);
    assert.ok(Math.max(...gaps) < 5000, `longest gap between blocks during the flood: ${Math.max(...gaps)} ms`);
    assert.ok(
      statusHeights.length >= 2 && statusHeights.at(-1)! > statusHeights[0],
      `/status heights during the flood: ${statusHeights.join(",")}`,
    );
    assert.ok(
      statusHeights.every((h, i) => i === 0 || h >= statusHeights[i - 1]),
      "/status height never went back",
    );
    const statusAfter = async () =>
      Number(
        (
          (await (await fetch(`${service.rpcUrl}/status`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json()) as {
            result: { sync_info: { latest_block_height: string } };
          }
        ).result.sync_info.latest_block_height,
      );
    const deadline = Date.now() + 10_000;
    while ((await statusAfter()) < heightAfterFlood + 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok((await statusAfter()) >= heightAfterFlood + 3, "/status height keeps increasing after the flood");

    // No garbage reached the mempool, and the account's sequence was not spent by any variant.
    const pending = (await (
      await fetch(`${service.rpcUrl}/num_unconfirmed_txs`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    ).json()) as { result: { total: string } };
    assert.equal(pending.result.total, "0");

    // A valid registration still commits: the very tx whose variants were refused, then one from CosmJS.
    const commit = (await (
      await fetch(service.rpcUrl, {
        method: "POST",
        body: rpcBody("broadcast_tx_commit", { tx: bases[0].toString("base64") }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    ).json()) as { result: { check_tx: { code: number; log: string }; tx_result: { code: number; log: string }; height: string } };
    assert.equal(commit.result.check_tx.code, 0, commit.result.check_tx.log);
    assert.equal(commit.result.tx_result.code, 0, commit.result.tx_result.log);
    assert.ok(Number(commit.result.height) > heightAfterFlood);
    const verify = (await (
      await fetch(service.rpcUrl, {
        method: "POST",
        body: rpcBody("abci_query", {
          path: QUERY_VERIFY_CONTENT,
          data: Buffer.from(QueryVerifyContentRequest.encode({ contentHash: baseHashes[0] }).finish()).toString("hex"),
        }),
      })
    ).json()) as { result: { response: { value: string } } };
    assert.equal(QueryVerifyContentResponse.decode(Buffer.from(verify.result.response.value, "base64")).verified, true);

    const client = await SigningStargateClient.connectWithSigner(service.rpcUrl, wallets[1], {
      registry: daonRegistry(),
      broadcastPollIntervalMs: 100,
    });
    try {
      const result = await client.signAndBroadcast(
        addresses[1],
        [
          {
            typeUrl: MsgRegisterContent.typeUrl,
            value: MsgRegisterContent.fromPartial({
              creator: addresses[1],
              contentHash: contentHash(`bad-input-${dir}-after`),
              license: "cc_by",
              platform: "fuzz",
            }),
          },
        ],
        { amount: [], gas: "200000" },
      );
      assert.equal(result.code, 0, result.rawLog);
    } finally {
      client.disconnect();
    }
    console.log(`bad-input: whole test ${Date.now() - startedAt} ms`);
  });
});
