import http from "node:http";

interface JsonRpcAnswer {
  result?: unknown;
  error?: { code: number; message: string; data?: string };
}

/** A pre-serialised JSON-RPC 2.0 request body, so the timed loop does no encoding. */
export function jsonRpcBody(method: string, params: Record<string, unknown>, id: number | string = 1): Buffer {
  return Buffer.from(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
}

/**
 * JSON-RPC over HTTP POST with keep-alive connections (node:http's Agent, the same
 * connection reuse undici/fetch give) and at most `maxSockets` requests in flight per client.
 */
export class JsonRpcHttp {
  readonly #agent: http.Agent;
  readonly #host: string;
  readonly #port: number;
  #nextId = 1;

  constructor(
    readonly url: string,
    maxSockets = 64,
  ) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** Posts a ready body; resolves with the parsed JSON answer (whatever the HTTP status). */
  post(body: Buffer, timeoutMs = 60_000): Promise<JsonRpcAnswer> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: this.#host,
          port: this.#port,
          path: "/",
          method: "POST",
          agent: this.#agent,
          headers: { "Content-Type": "application/json", "Content-Length": body.length },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as JsonRpcAnswer);
            } catch (error) {
              reject(new Error(`HTTP ${response.statusCode}: answer is not JSON (${(error as Error).message})`));
            }
          });
        },
      );
      request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }

  async call<T>(method: string, params: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    const answer = await this.post(jsonRpcBody(method, params, this.#nextId++), timeoutMs);
    if (answer.error) throw new Error(`${method}: ${answer.error.message}: ${answer.error.data ?? ""}`);
    return answer.result as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}
