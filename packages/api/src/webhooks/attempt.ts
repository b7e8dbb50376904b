import { createHmac } from "node:crypto";
import { Agent, request } from "undici";
import { type DestinationPolicy, DestinationRefused } from "./destinations.js";

export const USER_AGENT = "DAON-Webhook/1.0";
/** Of a receiver's answer only this much is read (and thrown away): the status code is what counts. */
const RESPONSE_READ_LIMIT = 64 * 1024;

/** `sha256=` + lowercase hex HMAC-SHA-256 of `<T>.<body>` keyed by the webhook's secret (api.md §5). */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export interface AttemptRequest {
  url: string;
  secret: string;
  deliveryId: string;
  event: string;
  body: string;
  customHeaders: Record<string, string>;
}

export interface AttemptOutcome {
  /** 2xx: done. */
  success: boolean;
  /** The destination is refused by the SSRF rules: retrying cannot help. */
  refused: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/**
 * Sends webhook requests: one POST per attempt, signed at the moment it is sent, to an
 * address checked against the destination policy both before the attempt and at connect
 * time; no redirects; the whole attempt bounded by `timeoutMs`.
 */
export class WebhookSender {
  readonly #agent: Agent;

  constructor(
    private readonly policy: DestinationPolicy,
    private readonly timeoutMs: number,
  ) {
    this.#agent = new Agent({
      connect: { lookup: policy.lookup as never, timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 4000,
      connections: 64,
    });
  }

  async send(attempt: AttemptRequest, now = new Date()): Promise<AttemptOutcome> {
    const started = performance.now();
    const outcome = (fields: Omit<AttemptOutcome, "durationMs">): AttemptOutcome => ({
      ...fields,
      durationMs: Math.round(performance.now() - started),
    });
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await this.policy.check(attempt.url, this.timeoutMs);
      const timestamp = Math.floor(now.getTime() / 1000);
      const response = await request(attempt.url, {
        method: "POST",
        dispatcher: this.#agent,
        signal,
        headers: {
          ...attempt.customHeaders,
          "content-type": "application/json",
          "user-agent": USER_AGENT,
          "x-daon-webhook-event": attempt.event,
          "x-daon-webhook-id": attempt.deliveryId,
          "x-daon-webhook-timestamp": String(timestamp),
          "x-daon-webhook-signature": webhookSignature(attempt.secret, timestamp, attempt.body),
        },
        body: attempt.body,
      });
      await response.body.dump({ limit: RESPONSE_READ_LIMIT }).catch(() => {});
      const success = response.statusCode >= 200 && response.statusCode < 300;
      return outcome({
        success,
        refused: false,
        statusCode: response.statusCode,
        error: success ? null : `receiver answered ${response.statusCode}`,
      });
    } catch (error) {
      const refusal = refusalIn(error);
      if (refusal) return outcome({ success: false, refused: true, statusCode: null, error: `destination refused: ${refusal.message}` });
      return outcome({ success: false, refused: false, statusCode: null, error: describe(error, signal.aborted, this.timeoutMs) });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function refusalIn(error: unknown): DestinationRefused | undefined {
  for (let e = error as { cause?: unknown } | undefined; e; e = e.cause as { cause?: unknown } | undefined) {
    if (e instanceof DestinationRefused) return e;
  }
  return undefined;
}

/** A short reason for the log: never the URL's query or the secret, only what went wrong. */
function describe(error: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `timed out after ${timeoutMs} ms`;
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return `timed out after ${timeoutMs} ms`;
  }
  return code ? `connection failed (${code})` : "connection failed";
}
