/** What the SDK and portal tests share: a started system with real mail, TOTP codes as an app computes them, a webhook receiver. */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HOTP, Secret } from "otpauth";
import { SMTPServer } from "smtp-server";
import { type StoragePath, startTestSystem, type TestSystem } from "../../api/test/test-system.js";

export const ADMIN_EMAIL = "admin@daon.test";

/** An SMTP server in this process that keeps every message. */
export class Mailbox {
  private constructor(
    private readonly server: SMTPServer,
    readonly messages: { to: string; text: string }[],
  ) {}

  static async start(): Promise<Mailbox> {
    const messages: Mailbox["messages"] = [];
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          // Quoted-printable soft breaks and escapes undone, so the link reads whole.
          const text = Buffer.concat(chunks)
            .toString("utf8")
            .replace(/=\r?\n/g, "")
            .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
          for (const rcpt of session.envelope.rcptTo) messages.push({ to: rcpt.address, text });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new Mailbox(server, messages);
  }

  get url(): string {
    return `smtp://127.0.0.1:${(this.server.server.address() as AddressInfo).port}`;
  }

  /** The token of the newest sign-in link mailed to an address, waiting for it to arrive. */
  async signInToken(to: string, after = 0): Promise<string> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const mails = this.messages.filter((m) => m.to === to);
      const match = mails.length > after ? /\/auth\/verify#token=([A-Za-z0-9_-]{43})/.exec(mails.at(-1)!.text) : null;
      if (match) return match[1];
      assert.ok(Date.now() < deadline, `no sign-in mail to ${to}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  count(to: string): number {
    return this.messages.filter((m) => m.to === to).length;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** An authenticator app: RFC 6238 codes from the enrolment secret, never one at or before a step already used. */
export class Authenticator {
  #lastStep = 0;

  constructor(readonly secret: string) {}

  /** The next unused code the API accepts (±1 step); waits for the clock only when both steps are spent. */
  async nextCode(): Promise<string> {
    const now = () => Math.floor(Date.now() / 30_000);
    while (this.#lastStep + 1 > now() + 1) await new Promise((resolve) => setTimeout(resolve, 250));
    const step = Math.max(this.#lastStep + 1, now());
    this.#lastStep = step;
    return HOTP.generate({ secret: Secret.fromBase32(this.secret.replaceAll(" ", "")), counter: step, algorithm: "SHA1", digits: 6 });
  }
}

/** A webhook receiver in this process: keeps each request's exact body and headers, answers 200. */
export class WebhookReceiver {
  private constructor(
    private readonly server: Server,
    readonly requests: { headers: IncomingHttpHeaders; body: Buffer }[],
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const requests: WebhookReceiver["requests"] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        requests.push({ headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(200, { "content-type": "text/plain" }).end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new WebhookReceiver(server, requests);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/daon-hook`;
  }

  async waitFor(predicate: (request: WebhookReceiver["requests"][number]) => boolean): Promise<WebhookReceiver["requests"][number]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = this.requests.find(predicate);
      if (found) return found;
      assert.ok(Date.now() < deadline, "the webhook delivery did not arrive");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A started ledger node and API that mails through `mailbox`, with ADMIN_EMAIL as administrator and webhooks allowed to loopback. */
export function startSystemWithMail(storage: StoragePath, mailbox: Mailbox, env: Record<string, string> = {}): Promise<TestSystem> {
  return startTestSystem(storage, {
    SMTP_URL: mailbox.url,
    ADMIN_EMAILS: ADMIN_EMAIL,
    WEBHOOK_ALLOW_HTTP: "true",
    WEBHOOK_ALLOWED_CIDRS: "127.0.0.1/32",
    ...env,
  });
}

export type { StoragePath, TestSystem };
