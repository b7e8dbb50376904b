import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { blockIdToJson } from "@daon/core";
import { WebSocketServer, type WebSocket } from "ws";
import type { CommittedBlock, LedgerNode } from "../node.js";
import { base64, blockJson, txResultJson } from "./json.js";
import { invalidParams, type Method, methods, type ParamKind, type Params, RpcError } from "./methods.js";
import { attributeMap, type Condition, matches, parseQuery } from "./query.js";

type JsonRpcId = string | number | null;

interface JsonRpcRequest {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

const MAX_URL_BYTES = 1_048_576;
const MAX_SUBSCRIPTIONS_PER_CLIENT = 16;
const BODY_DRAIN_FACTOR = 16;

const errorBody = (id: JsonRpcId, code: number, message: string, data = "") => ({ jsonrpc: "2.0", id, error: { code, message, data } });
const resultBody = (id: JsonRpcId, result: unknown) => ({ jsonrpc: "2.0", id, result });

/**
 * CometBFT's RPC on one port: JSON-RPC 2.0 over POST (single or batch), the URI form
 * (`GET /status`, `GET /tx_search?query="tx.height>0"`), and `/websocket` subscriptions.
 */
export class RpcServer {
  readonly #server: Server;
  readonly #sockets: WebSocketServer;
  #onBlock: ((block: CommittedBlock) => void) | undefined;

  constructor(
    private readonly node: LedgerNode,
    private readonly maxBodyBytes: number,
  ) {
    this.#server = createServer({ maxHeaderSize: MAX_URL_BYTES, requestTimeout: 30_000, keepAliveTimeout: 65_000 }, (req, res) => {
      this.#handle(req, res).catch(() => send(res, 500, errorBody(-1, -32603, "Internal error", "unexpected failure")));
    });
    this.#server.on("clientError", (_error, socket) => refuse(socket, "malformed HTTP request"));
    this.#sockets = new WebSocketServer({ noServer: true, maxPayload: maxBodyBytes });
    this.#server.on("upgrade", (req, socket, head) => {
      if (requestUrl(req)?.pathname !== "/websocket") return refuse(socket, "WebSocket connections are served at /websocket");
      this.#sockets.handleUpgrade(req, socket, head, (ws) => this.#serveSocket(ws));
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
    if (this.#onBlock) this.node.events.off("block", this.#onBlock);
    for (const client of this.#sockets.clients) client.terminate();
    this.#sockets.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req);
    if (!url) return send(res, 400, errorBody(-1, -32600, "Invalid Request", "malformed request URL"));
    if (req.method === "GET" && url.pathname !== "/") {
      const name = url.pathname.slice(1);
      return send(res, 200, await this.#call(-1, name, uriParams(url.searchParams, methodNamed(name))));
    }
    if (req.method !== "POST") return send(res, 405, errorBody(-1, -32600, "Invalid Request", "use GET /<method> or POST JSON-RPC"));
    const body = await readBody(req, this.maxBodyBytes);
    if (body === "aborted") return;
    if (typeof body === "string") {
      // An unread rest of the body would be parsed as the next request: close unless it was drained.
      if (body === "too large, not drained") res.setHeader("Connection", "close");
      return send(res, 413, errorBody(-1, -32600, "Invalid Request", `body larger than ${this.maxBodyBytes} bytes`));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return send(res, 400, errorBody(-1, -32700, "Parse error", "body is not JSON"));
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0 || parsed.length > 100)
        return send(res, 400, errorBody(-1, -32600, "Invalid Request", "a batch holds 1 to 100 requests"));
      return send(res, 200, await Promise.all(parsed.map((request) => this.#callJson(request))));
    }
    return send(res, 200, await this.#callJson(parsed));
  }

  async #callJson(request: unknown): Promise<object> {
    if (typeof request !== "object" || request === null) return errorBody(-1, -32600, "Invalid Request", "a request is a JSON object");
    const { jsonrpc, id, method, params } = request as JsonRpcRequest;
    const rpcId: JsonRpcId = typeof id === "string" || typeof id === "number" ? id : id === undefined || id === null ? -1 : -1;
    if (jsonrpc !== "2.0") return errorBody(rpcId, -32600, "Invalid Request", 'jsonrpc must be "2.0"');
    if (typeof method !== "string") return errorBody(rpcId, -32600, "Invalid Request", "method must be a string");
    let decoded: Params;
    try {
      decoded = jsonParams(params, methodNamed(method));
    } catch (error) {
      if (error instanceof RpcError) return errorBody(rpcId, error.code, error.message, error.data);
      throw error;
    }
    return this.#call(rpcId, method, decoded);
  }

  async #call(id: JsonRpcId, name: string, params: Params | RpcError): Promise<object> {
    const method = methodNamed(name);
    if (!method) return errorBody(id, -32601, "Method not found", `no method ${JSON.stringify(name.slice(0, 100))}`);
    if (params instanceof RpcError) return errorBody(id, params.code, params.message, params.data);
    try {
      return resultBody(id, await method.handle(this.node, params));
    } catch (error) {
      if (error instanceof RpcError) return errorBody(id, error.code, error.message, error.data);
      return errorBody(id, -32603, "Internal error", "the request failed");
    }
  }

  #serveSocket(ws: WebSocket): void {
    const subscriptions = new Map<string, { id: JsonRpcId; conditions: Condition[] }>();
    const listener = (block: CommittedBlock) => {
      for (const [query, { id, conditions }] of subscriptions) {
        for (const event of blockEvents(block, query)) {
          if (
            event.kind === (conditions.find((c) => c.key === "tm.event")?.value ?? "") &&
            matches(
              conditions.filter((c) => c.key !== "tm.event"),
              event.attributes,
            )
          ) {
            ws.send(JSON.stringify(resultBody(id, { query, data: event.data, events: Object.fromEntries(event.attributes) })));
          }
        }
      }
    };
    this.node.events.on("block", listener);
    ws.on("close", () => this.node.events.off("block", listener));
    ws.on("error", () => ws.terminate());
    ws.on("message", (raw) => {
      // A listener's rejection would be unhandled and end the process: answer it instead.
      this.#onSocketMessage(ws, subscriptions, raw.toString()).catch(() => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(errorBody(-1, -32603, "Internal error", "unexpected failure")));
      });
    });
  }

  async #onSocketMessage(
    ws: WebSocket,
    subscriptions: Map<string, { id: JsonRpcId; conditions: Condition[] }>,
    text: string,
  ): Promise<void> {
    let request: JsonRpcRequest;
    try {
      request = JSON.parse(text);
    } catch {
      return ws.send(JSON.stringify(errorBody(-1, -32700, "Parse error", "message is not JSON")));
    }
    const id: JsonRpcId = typeof request?.id === "string" || typeof request?.id === "number" ? request.id : -1;
    const query = (request?.params as { query?: unknown } | undefined)?.query;
    if (request?.method === "subscribe") {
      try {
        if (typeof query !== "string") throw invalidParams("query must be a string");
        const conditions = parseQuery(query);
        if (!conditions.some((c) => c.key === "tm.event" && c.op === "=")) throw invalidParams("query must name tm.event");
        if (subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CLIENT) throw invalidParams("too many subscriptions");
        subscriptions.set(query, { id, conditions });
        return ws.send(JSON.stringify(resultBody(id, {})));
      } catch (error) {
        return ws.send(JSON.stringify(errorBody(id, -32602, "Invalid params", (error as Error).message)));
      }
    }
    if (request?.method === "unsubscribe") {
      subscriptions.delete(String(query));
      return ws.send(JSON.stringify(resultBody(id, {})));
    }
    if (request?.method === "unsubscribe_all") {
      subscriptions.clear();
      return ws.send(JSON.stringify(resultBody(id, {})));
    }
    ws.send(JSON.stringify(await this.#callJson(request)));
  }
}

/** Answers what the HTTP layer cannot route (400, JSON-RPC -32600) and closes the connection. */
function refuse(socket: Duplex, data: string): void {
  // An upgrade socket has no error listener of node's left: a reset would otherwise end the process.
  socket.on("error", () => socket.destroy());
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify(errorBody(-1, -32600, "Invalid Request", data));
  socket.end(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** A method by its own name only: `constructor`, `__proto__` and the like are not methods. */
function methodNamed(name: string): Method | undefined {
  return Object.hasOwn(methods, name) ? methods[name] : undefined;
}

/** The request's URL, or undefined when it cannot be parsed (e.g. `GET //[`). */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? "/", "http://rpc");
  } catch {
    return undefined;
  }
}

function* blockEvents(block: CommittedBlock, _query: string) {
  const height = String(block.height);
  yield {
    kind: "NewBlock",
    attributes: attributeMap([], { "tm.event": "NewBlock", "block.height": height }),
    data: {
      type: "tendermint/event/NewBlock",
      value: {
        block: blockJson(block.block),
        block_id: blockIdToJson(block.blockId),
        result_finalize_block: { events: [], tx_results: block.results.map(txResultJson) },
      },
    },
  };
  for (let index = 0; index < block.txHashes.length; index++) {
    const result = block.results[index];
    yield {
      kind: "Tx",
      attributes: attributeMap(result.events, { "tm.event": "Tx", "tx.height": height, "tx.hash": block.txHashes[index] }),
      data: {
        type: "tendermint/event/Tx",
        value: { TxResult: { height, index, tx: base64(block.block.data.txs[index]), result: txResultJson(result) } },
      },
    };
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The body, or why not: a body over `limit` is read on to its end and dropped (up to
 * BODY_DRAIN_FACTOR × limit) so a keep-alive connection stays in step; past that it is left unread.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | "too large" | "too large, not drained" | "aborted"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * BODY_DRAIN_FACTOR) {
        req.off("data", onData);
        req.pause();
        resolve("too large, not drained");
      }
    };
    req.on("data", onData);
    req.on("end", () => resolve(size > limit ? "too large" : Buffer.concat(chunks)));
    req.on("close", () => resolve("aborted"));
    req.on("error", reject);
  });
}

/** URI arguments as CometBFT reads them: strings quoted, bytes as 0x-hex or quoted, numbers bare. */
function uriParams(search: URLSearchParams, method: Method | undefined): Params | RpcError {
  const params: Params = {};
  if (!method) return params;
  try {
    for (const [name, kind] of Object.entries(method.params)) {
      const raw = search.get(name);
      if (raw === null || raw === "") continue;
      params[name] = fromUri(raw, kind, name);
    }
    return params;
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
}

function fromUri(raw: string, kind: ParamKind, name: string): Params[string] {
  const quoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : undefined;
  switch (kind) {
    case "string":
      return quoted ?? raw;
    case "int":
      return toInt(quoted ?? raw, name);
    case "bool":
      return toBool(quoted ?? raw, name);
    case "bytes":
    case "hex":
      if (quoted !== undefined) return Buffer.from(quoted, "utf8");
      if (/^0x([0-9a-fA-F]{2})*$/.test(raw)) return Buffer.from(raw.slice(2), "hex");
      if (kind === "bytes" && /^([0-9a-fA-F]{2})+$/.test(raw)) return Buffer.from(raw, "hex");
      throw invalidParams(`${name} must be 0x-prefixed hex or a quoted string`);
  }
}

/** JSON-RPC params by name (or by position): int64 as strings or numbers, bytes as base64, hex bytes as hex. */
function jsonParams(params: unknown, method: Method | undefined): Params {
  const decoded: Params = {};
  if (!method || params === undefined || params === null) return decoded;
  const names = Object.keys(method.params);
  const byName: Record<string, unknown> = Array.isArray(params)
    ? Object.fromEntries(params.map((value, index) => [names[index], value]))
    : typeof params === "object"
      ? (params as Record<string, unknown>)
      : (() => {
          throw invalidParams("params must be an object or an array");
        })();
  for (const [name, kind] of Object.entries(method.params)) {
    const value = byName[name];
    if (value === undefined || value === null || value === "") continue;
    decoded[name] = fromJson(value, kind, name);
  }
  return decoded;
}

function fromJson(value: unknown, kind: ParamKind, name: string): Params[string] {
  switch (kind) {
    case "string":
      if (typeof value !== "string") throw invalidParams(`${name} must be a string`);
      return value;
    case "int":
      if (typeof value !== "string" && typeof value !== "number") throw invalidParams(`${name} must be an integer`);
      return toInt(String(value), name);
    case "bool":
      if (typeof value === "boolean") return value;
      if (typeof value === "string") return toBool(value, name);
      throw invalidParams(`${name} must be a boolean`);
    case "bytes":
      if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
        throw invalidParams(`${name} must be base64`);
      return Buffer.from(value, "base64");
    case "hex":
      if (typeof value !== "string" || !/^([0-9a-fA-F]{2})*$/.test(value)) throw invalidParams(`${name} must be hex`);
      return Buffer.from(value, "hex");
  }
}

function toInt(text: string, name: string): number {
  if (!/^-?\d{1,16}$/.test(text)) throw invalidParams(`${name} must be an integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw invalidParams(`${name} must be a non-negative integer`);
  return n;
}

function toBool(text: string, name: string): boolean {
  if (text === "true") return true;
  if (text === "false") return false;
  throw invalidParams(`${name} must be true or false`);
}
