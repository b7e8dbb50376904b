import { createHash, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "undici";
import { CONFIRM_WAIT_MS, type Endpoint, type ErrorKind, type Measurements, type Outcome } from "./measurements.js";

const REQUEST_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 500;
/** One iteration in this many polls until its registration is confirmed (ops.md §4). */
const POLL_EVERY = 20;

/** A registration whose confirmation is still awaited: from the protect call's start. */
export interface PendingConfirmation {
  contentHash: string;
  protectStartedAt: number;
}

/** What every virtual user of one run shares. */
export interface RunContext {
  target: URL;
  apiKey: string;
  runId: string;
  measurements: Measurements;
  /** The run's iteration counter: iteration n polls for its confirmation when n % 20 = 0. */
  nextIteration(): number;
  /** A failed request, for console.log. */
  onError(outcome: Outcome): void;
  /** A confirmation still awaited when its user stopped: polled after the load ends. */
  handOver(pending: PendingConfirmation): void;
}

interface Answer {
  status: number | null;
  body: Record<string, unknown> | undefined;
  ms: number;
  requestId: string;
  failure?: { kind: ErrorKind; message: string };
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const between = (min: number, max: number) => min + Math.random() * (max - min);

/** A keep-alive HTTP connection of its own (undici Client: one socket) that calls the API and classifies the answer. */
export class Connection {
  readonly #client: Client;
  #sequence = 0;

  constructor(
    private readonly context: Pick<RunContext, "target" | "apiKey" | "runId">,
    private readonly name: string,
  ) {
    this.#client = new Client(context.target.origin, {
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
      connect: { timeout: 10_000 },
    });
  }

  async call(method: "GET" | "POST", path: string, body?: unknown): Promise<Answer> {
    const requestId = `${this.context.runId}.${this.name}.${++this.#sequence}`;
    const base = this.context.target.pathname.replace(/\/$/, "");
    const started = performance.now();
    try {
      const response = await this.#client.request({
        method,
        path: `${base}${path}`,
        headers: {
          authorization: `Bearer ${this.context.apiKey}`,
          "x-daon-load-test": this.context.runId,
          "x-request-id": requestId,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await response.body.text();
      const ms = performance.now() - started;
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const status = response.statusCode;
      const echoed = response.headers["x-request-id"];
      const answer: Answer = { status, body: parsed, ms, requestId: typeof echoed === "string" ? echoed : requestId };
      if (status < 200 || status > 299) {
        const error = parsed?.error as { code?: string; message?: string } | undefined;
        const message = error ? `${error.code}: ${error.message}` : text.slice(0, 200).replace(/\s+/g, " ") || "no body";
        answer.failure = { kind: status === 429 ? "http_429" : status >= 500 ? "http_5xx" : "http_4xx", message };
      }
      return answer;
    } catch (error) {
      const e = error as { name?: string; code?: string; message?: string };
      const timedOut = e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT";
      return {
        status: null,
        body: undefined,
        ms: performance.now() - started,
        requestId,
        failure: timedOut
          ? { kind: "timeout", message: `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` }
          : { kind: "network", message: `${e.code ?? e.name ?? "error"}: ${e.message ?? ""}`.slice(0, 200) },
      };
    }
  }

  close(): Promise<void> {
    return this.#client.close().catch(() => {});
  }
}

/**
 * One virtual user (ops.md §4): from its start until it is told to stop, loops protect
 * (unique content, tagged) → think 1–3 s → verify must find it → 10 %: stats → think 2–6 s;
 * one iteration in 20 polls verify every 500 ms until confirmed (≤ 60 s) in place of the
 * first think. A request in flight when the user stops is finished, never cut off.
 */
export class VirtualUser {
  readonly #connection: Connection;

  constructor(
    private readonly index: number,
    private readonly context: RunContext,
  ) {
    this.#connection = new Connection(context, `u${index}`);
  }

  /** Runs until `stop` is aborted; resolves once the request in flight (if any) has finished. */
  async run(stop: AbortSignal): Promise<void> {
    try {
      while (!stop.aborted) await this.#iteration(stop);
    } finally {
      await this.#connection.close();
    }
  }

  async #iteration(stop: AbortSignal): Promise<void> {
    const iteration = this.context.nextIteration();
    const content = `[daon-loadtest ${this.context.runId}] user ${this.index} iteration ${iteration} ${randomUUID()}`;
    const contentHash = sha256(content);
    const protectStartedAt = Date.now();
    const protect = await this.#connection.call("POST", "/api/v1/protect?wait=false", {
      content,
      metadata: { title: `DAON load test ${this.context.runId}`, type: "loadtest" },
    });
    const protectedOk = this.#check(protect, "protect", "POST", "/api/v1/protect", () =>
      protect.body?.contentHash === contentHash ? undefined : "the answer does not carry the content's hash",
    );
    if (!protectedOk) {
      await pause(between(2000, 6000), stop);
      return;
    }

    if (iteration % POLL_EVERY === 0) await this.#pollUntilConfirmed({ contentHash, protectStartedAt }, stop);
    else if (!(await pause(between(1000, 3000), stop))) return;
    if (stop.aborted) return;

    const verify = await this.#connection.call("GET", `/api/v1/verify/${contentHash}`);
    this.#check(verify, "verify", "GET", "/api/v1/verify/:hash", () =>
      verify.body?.isValid === true && verify.body?.contentHash === contentHash ? undefined : "verify did not find the registration",
    );
    if (Math.random() < 0.1 && !stop.aborted) {
      const stats = await this.#connection.call("GET", "/api/v1/stats");
      this.#check(stats, "stats", "GET", "/api/v1/stats", () => (stats.body?.success === true ? undefined : "no statistics in the answer"));
    }
    await pause(between(2000, 6000), stop);
  }

  async #pollUntilConfirmed(pending: PendingConfirmation, stop: AbortSignal): Promise<void> {
    const deadline = pending.protectStartedAt + CONFIRM_WAIT_MS;
    while (Date.now() < deadline) {
      if (stop.aborted) {
        this.context.handOver(pending);
        return;
      }
      const poll = await this.#connection.call("GET", `/api/v1/verify/${pending.contentHash}`);
      const found = this.#check(poll, "poll", "GET", "/api/v1/verify/:hash", () =>
        poll.body?.isValid === true ? undefined : "verify did not find the registration",
      );
      if (found && poll.body?.status === "confirmed") {
        this.context.measurements.confirmation(Date.now() - pending.protectStartedAt);
        return;
      }
      await pause(POLL_INTERVAL_MS, stop);
    }
    this.context.measurements.confirmation(null);
  }

  /** Records the request; a 2xx answer that fails `problem` (or a 404 from verify) is a failed check. */
  #check(answer: Answer, endpoint: Endpoint, method: string, route: string, problem: () => string | undefined): boolean {
    let failure = answer.failure;
    if (!failure) {
      const message = problem();
      if (message) failure = { kind: "check", message };
    } else if (answer.status === 404 && endpoint !== "protect" && endpoint !== "stats") {
      failure = { kind: "check", message: "verify did not find the registration (404)" };
    }
    const outcome: Outcome = { endpoint, method, route, status: answer.status, ms: answer.ms, requestId: answer.requestId, error: failure };
    this.context.measurements.record(outcome);
    if (failure) this.context.onError(outcome);
    return failure === undefined;
  }
}

/** Waits `ms`, or less if `stop` is aborted; true if the whole pause passed. */
async function pause(ms: number, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return false;
  try {
    await sleep(ms, undefined, { signal: stop });
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls the confirmations still awaited when their users stopped, on one connection, after
 * the load: these requests are checks, not load, and are not counted as requests.
 */
export async function awaitConfirmations(
  pending: readonly PendingConfirmation[],
  context: Pick<RunContext, "target" | "apiKey" | "runId" | "measurements">,
  stop: AbortSignal,
): Promise<void> {
  if (pending.length === 0) return;
  const connection = new Connection(context, "confirm");
  const waiting = new Set(pending);
  try {
    while (waiting.size > 0 && !stop.aborted) {
      for (const item of [...waiting]) {
        const answer = await connection.call("GET", `/api/v1/verify/${item.contentHash}`);
        if (answer.status === 200 && answer.body?.status === "confirmed") {
          context.measurements.confirmation(Date.now() - item.protectStartedAt);
          waiting.delete(item);
        } else if (Date.now() >= item.protectStartedAt + CONFIRM_WAIT_MS) {
          context.measurements.confirmation(null);
          waiting.delete(item);
        }
      }
      if (waiting.size > 0) await pause(POLL_INTERVAL_MS, stop);
    }
  } finally {
    await connection.close();
  }
}
