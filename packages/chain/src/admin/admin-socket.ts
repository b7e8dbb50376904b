import { chmod, rm } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { isAbsolute, join, resolve } from "node:path";
import type { LedgerNode } from "../node.js";
import { copyLedgerHome, copyStoppedLedgerHome, type LedgerSnapshot } from "./ledger-snapshot.js";

/** Where a running node answers operators: a Unix socket in its home, reachable only by the home's owner. */
export function adminSocketPath(home: string): string {
  return join(home, "admin.sock");
}

type AdminRequest = { op: "status" } | { op: "snapshot"; out: string; keys?: boolean };
type AdminReply = { ok: true; snapshot?: LedgerSnapshot; chainId?: string; height?: number } | { ok: false; error: string };

const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * The node's admin socket (ops.md §13): one JSON request per line, one JSON reply per line.
 * `snapshot` copies the home at one committed height, with block production paused between
 * two blocks for the copy, and resumed after.
 */
export class AdminSocket {
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async open(node: LedgerNode): Promise<AdminSocket> {
    const path = adminSocketPath(node.home.paths.home);
    // A socket file left by a crashed node: the store's lock already proves no other node runs on this home.
    await rm(path, { force: true });
    let socket: AdminSocket | undefined;
    const server = createServer((connection) => socket?.serve(node, connection));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
    socket = new AdminSocket(server, path);
    return socket;
  }

  private serve(node: LedgerNode, connection: Socket): void {
    let buffered = "";
    connection.setEncoding("utf8");
    connection.on("error", () => {});
    connection.on("data", (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) return connection.end(`${JSON.stringify({ ok: false, error: "request too large" })}\n`);
      const newline = buffered.indexOf("\n");
      if (newline < 0) return;
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const work = this.answer(node, line).then((reply) => {
        if (!connection.destroyed) connection.write(`${JSON.stringify(reply)}\n`);
      });
      this.#inFlight.add(work);
      work.finally(() => this.#inFlight.delete(work));
    });
  }

  private async answer(node: LedgerNode, line: string): Promise<AdminReply> {
    let request: AdminRequest;
    try {
      request = JSON.parse(line) as AdminRequest;
    } catch {
      return { ok: false, error: "the request is not JSON" };
    }
    try {
      if (request.op === "status") return { ok: true, chainId: node.chainId, height: node.height };
      if (request.op === "snapshot") {
        if (typeof request.out !== "string" || !isAbsolute(request.out)) return { ok: false, error: "out must be an absolute path" };
        const snapshot = await node.betweenBlocks(() =>
          copyLedgerHome(node.home.paths.home, node.store, request.out, { keys: request.keys === true }),
        );
        return { ok: true, snapshot };
      }
      return { ok: false, error: `unknown op ${JSON.stringify((request as { op?: unknown }).op)}` };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  }

  /** Stops accepting, lets a snapshot in progress finish, removes the socket file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.allSettled([...this.#inFlight]);
    await rm(this.path, { force: true });
  }
}

/**
 * `daon node snapshot`: asks the running node of `home` for a copy at one committed height, or
 * copies the home directly when no node is running on it.
 */
export async function snapshotLedgerHome(home: string, target: string, options: { keys: boolean }): Promise<LedgerSnapshot> {
  const out = resolve(target);
  const reply = await askNode(home, { op: "snapshot", out, keys: options.keys }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT" || error.code === "ECONNREFUSED") return undefined;
    throw error;
  });
  if (!reply) return copyStoppedLedgerHome(home, out, options);
  if (!reply.ok) throw new Error(`the node refused the snapshot: ${reply.error}`);
  if (!reply.snapshot) throw new Error("the node answered without a snapshot");
  return reply.snapshot;
}

function askNode(home: string, request: AdminRequest): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const connection = createConnection(adminSocketPath(home));
    let answer = "";
    connection.setEncoding("utf8");
    connection.on("connect", () => connection.write(`${JSON.stringify(request)}\n`));
    connection.on("data", (chunk: string) => {
      answer += chunk;
      const newline = answer.indexOf("\n");
      if (newline < 0) return;
      connection.end();
      try {
        resolve(JSON.parse(answer.slice(0, newline)) as AdminReply);
      } catch {
        reject(new Error("the node's admin socket answered something that is not JSON"));
      }
    });
    connection.on("error", reject);
    connection.on("close", () => reject(new Error("the node closed its admin socket without answering")));
  });
}
