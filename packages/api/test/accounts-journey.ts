import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { HOTP, Secret } from "otpauth";
import { SMTPServer } from "smtp-server";
import type { TestSystem } from "./test-system.js";

/** What the accounts tests share: a real SMTP server, HTTP calls, TOTP codes, and a creator's sign-in. */

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, asserted field by field
  body: any;
  headers: Headers;
}

/** A JSON call to the API; `ip` becomes X-Forwarded-For (the test runs on loopback, a trusted proxy). */
export async function call(
  system: TestSystem,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; ip?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.ip) headers["x-forwarded-for"] = options.ip;
  const response = await fetch(`${system.apiUrl}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

export function assertError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.success, false);
  assert.equal(answer.body.error.code, code, JSON.stringify(answer.body));
}

/** An SMTP server in this process that keeps every message it receives. */
export class Mailbox {
  readonly messages: { to: string; raw: string }[] = [];
  #waiters: (() => void)[] = [];

  private constructor(private readonly server: SMTPServer) {}

  static async start(): Promise<Mailbox> {
    let mailbox: Mailbox | undefined;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          for (const rcpt of session.envelope.rcptTo)
            mailbox!.messages.push({ to: rcpt.address, raw: Buffer.concat(chunks).toString("utf8") });
          for (const wake of mailbox!.#waiters.splice(0)) wake();
          callback();
        });
      },
    });
    mailbox = new Mailbox(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return mailbox;
  }

  get url(): string {
    return `smtp://127.0.0.1:${(this.server.server.address() as AddressInfo).port}`;
  }

  /** The `count`-th message (1-based) to an address, once it has arrived. */
  async message(to: string, count: number): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.messages.filter((m) => m.to === to);
      if (found.length >= count) return decodeMail(found[count - 1].raw);
      assert.ok(Date.now() < deadline, `no mail #${count} to ${to}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A mail's headers and text, quoted-printable undone. */
export function decodeMail(raw: string): string {
  if (!/^content-transfer-encoding:\s*quoted-printable/im.test(raw)) return raw;
  return raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The magic link's token, from the link's fragment. */
export function linkToken(mail: string): string {
  const match = /\/auth\/verify#token=([A-Za-z0-9_-]{43})/.exec(mail);
  assert.ok(match, `no sign-in link in the mail:\n${mail}`);
  return match[1];
}

/** The mails the embedded mailer wrote under `<state>/mail/`, oldest first. */
export async function mailFiles(stateDir: string): Promise<{ file: string; text: string }[]> {
  const dir = join(stateDir, "mail");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".eml")).sort();
  return Promise.all(names.map(async (name) => ({ file: join(dir, name), text: decodeMail(await readFile(join(dir, name), "utf8")) })));
}

const PERIOD_MS = 30_000;
const currentStep = () => Math.floor(Date.now() / PERIOD_MS);

/** The code of a TOTP secret at a time step, as an authenticator app computes it (RFC 6238, SHA-1, 6 digits). */
export function codeAt(secret: string, step: number): string {
  return HOTP.generate({ secret: Secret.fromBase32(secret), counter: step, algorithm: "SHA1", digits: 6 });
}

/**
 * A creator's next TOTP code: the step after the last one used (codes at or before it are
 * replays), within the ±1 step the API accepts; waits for the clock only when both are spent.
 */
export async function nextCode(creator: { secret: string; lastStep: number }): Promise<string> {
  let step = Math.max(creator.lastStep + 1, currentStep());
  while (step > currentStep() + 1) await new Promise((resolve) => setTimeout(resolve, 250));
  step = Math.max(creator.lastStep + 1, currentStep());
  creator.lastStep = step;
  return codeAt(creator.secret, step);
}

export interface Creator {
  email: string;
  ip: string;
  user: { id: string; email: string; role: string; owner_id: string };
  secret: string;
  lastStep: number;
  accessToken: string;
  refreshToken: string;
  backupCodes: string[];
  /** Every secret the journey saw, for the log scan. */
  seen: string[];
}

/** A first sign-in through HTTP: magic link → mail → verify → 2fa/setup → 2fa/verify-setup. */
export async function enrol(system: TestSystem, email: string, ip: string, takeToken: () => Promise<string>): Promise<Creator> {
  const requested = await call(system, "POST", "/api/v1/auth/magic-link", { body: { email }, ip });
  assert.equal(requested.status, 202, JSON.stringify(requested.body));
  assert.equal(requested.body.success, true);
  const linkTokenValue = await takeToken();

  const verified = await call(system, "POST", "/api/v1/auth/verify", { body: { token: linkTokenValue }, ip });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.requires_2fa, true);
  assert.equal(verified.body.stage, "setup");
  assert.equal(verified.body.expires_in, 1800);
  assert.equal(verified.body.user.email, email);
  assert.match(verified.body.user.owner_id, /^o_[a-z2-7]{26}$/);
  const sessionId: string = verified.body.session_id;

  const setup = await call(system, "POST", "/api/v1/auth/2fa/setup", { body: { session_id: sessionId }, ip });
  assert.equal(setup.status, 200, JSON.stringify(setup.body));
  assert.match(setup.body.secret, /^[A-Z2-7]{32}$/);
  assert.match(setup.body.otpauth_url, /^otpauth:\/\/totp\/DAON%3A.+\?secret=[A-Z2-7]{32}&issuer=DAON&algorithm=SHA1&digits=6&period=30$/);
  assert.match(setup.body.qr_code, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
  assert.equal(setup.body.manual_entry_key.replaceAll(" ", ""), setup.body.secret);
  const secret: string = setup.body.secret;

  const creator = { secret, lastStep: currentStep() - 2 };
  const code = await nextCode(creator);
  const tokens = await call(system, "POST", "/api/v1/auth/2fa/verify-setup", { body: { session_id: sessionId, code }, ip });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  assert.equal(tokens.body.requires_2fa, false);
  assert.equal(tokens.body.token_type, "Bearer");
  assert.equal(tokens.body.expires_in, 900);
  assert.equal(tokens.body.backup_codes.length, 10);
  for (const backupCode of tokens.body.backup_codes) assert.match(backupCode, /^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$/);
  assert.equal(new Set(tokens.body.backup_codes).size, 10);
  assert.deepEqual(tokens.body.user, verified.body.user);
  return {
    email,
    ip,
    user: tokens.body.user,
    secret,
    lastStep: creator.lastStep,
    accessToken: tokens.body.access_token,
    refreshToken: tokens.body.refresh_token,
    backupCodes: tokens.body.backup_codes,
    seen: [linkTokenValue, sessionId, secret, code, tokens.body.access_token, tokens.body.refresh_token, ...tokens.body.backup_codes],
  };
}
