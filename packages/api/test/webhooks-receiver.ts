import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; event: string; timestamp: string; broker_id: string; data: Record<string, unknown> };
  deliveryId: string;
  receivedAt: number;
}

/** What an endpoint answers: a status code, "hang" to never answer (a timeout), or a status after a delay. */
export type Answer = number | "hang" | { status: number; afterMs: number };

/**
 * A webhook receiver as a platform would run one: it checks every request's signature and
 * timestamp the way api.md §5 tells receivers to, and records what arrived. Each path is
 * one endpoint with its own secret and answer.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** Requests that failed the receiver's checks (bad signature, stale timestamp, missing header). */
  readonly refused: string[] = [];
  readonly #endpoints = new Map<string, { secret: string; answer: Answer | ((count: number) => Answer) }>();
  readonly #hanging = new Set<ServerResponse>();
  #listeners: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((request, response) => receiver!.handle(request, response));
    await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
    const { port } = server.address() as { port: number };
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}`);
    return receiver;
  }

  /** An endpoint at `path`: signed with `secret`, answering `answer` (or answer(n) for its n-th request, 1-based). */
  endpoint(path: string, secret: string, answer: Answer | ((count: number) => Answer) = 200): string {
    this.#endpoints.set(path, { secret, answer });
    return `${this.url}${path}`;
  }

  answer(path: string, answer: Answer | ((count: number) => Answer)): void {
    const endpoint = this.#endpoints.get(path);
    if (endpoint) endpoint.answer = answer;
  }

  at(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  /** Resolves once `predicate` holds (checked after each request), or rejects after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs = 20_000, what = "webhook requests"): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners = this.#listeners.filter((l) => l !== listener);
        reject(new Error(`timed out waiting for ${what}; received ${this.received.length}`));
      }, timeoutMs);
      const listener = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== listener);
        resolve();
      };
      this.#listeners.push(listener);
    });
  }

  async stop(): Promise<void> {
    for (const response of this.#hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise((closed) => this.server.close(closed));
  }

  private handle(request: import("node:http").IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const path = (request.url ?? "/").split("?")[0];
      const body = Buffer.concat(chunks).toString("utf8");
      const endpoint = this.#endpoints.get(path);
      if (!endpoint) {
        response.writeHead(404).end();
        return;
      }
      const problem = this.check(request.headers, body, endpoint.secret);
      if (problem) {
        this.refused.push(`${path}: ${problem}`);
        response.writeHead(401).end();
        this.#notify();
        return;
      }
      this.received.push({
        path,
        headers: request.headers,
        body,
        json: JSON.parse(body),
        deliveryId: String(request.headers["x-daon-webhook-id"]),
        receivedAt: Date.now(),
      });
      const count = this.at(path).length;
      const answer = typeof endpoint.answer === "function" ? endpoint.answer(count) : endpoint.answer;
      this.#notify();
      if (answer === "hang") {
        this.#hanging.add(response);
        return;
      }
      if (typeof answer === "object") {
        setTimeout(() => response.writeHead(answer.status).end("ok"), answer.afterMs);
        return;
      }
      response.writeHead(answer, { "content-type": "text/plain" }).end("ok");
    });
  }

  /** The receiver's side of api.md §5: HMAC of "<T>.<body>" with the secret, T within 5 minutes. */
  private check(headers: IncomingHttpHeaders, body: string, secret: string): string | undefined {
    const timestamp = String(headers["x-daon-webhook-timestamp"] ?? "");
    const signature = String(headers["x-daon-webhook-signature"] ?? "");
    if (!/^\d+$/.test(timestamp)) return "no timestamp";
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return "timestamp older than 5 minutes";
    const expected = `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
    if (signature.length !== expected.length || !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) return "bad signature";
    if (!headers["x-daon-webhook-id"]) return "no delivery id";
    return undefined;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}
