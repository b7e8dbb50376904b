import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { type Answer, type Creator, enrol, linkToken, type Mailbox } from "./accounts-journey.js";
import type { TestSystem } from "./test-system.js";

/** What the platform tests share: HTTP calls with keys and signatures, an administrator, registered platforms. */

export interface CallOptions {
  body?: unknown;
  /** A bearer credential: a platform key or an access token. */
  credential?: string;
  headers?: Record<string, string>;
  /** Ed25519 private key: the request is signed (X-DAON-Timestamp, X-DAON-Signature). */
  signWith?: KeyObject;
  /** Unix seconds for the signature (default now). */
  signedAt?: number;
}

/** One call to the API, JSON in and out. */
export async function call(system: TestSystem, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  if (options.credential) headers.authorization = `Bearer ${options.credential}`;
  if (options.signWith) Object.assign(headers, signatureHeaders(options.signWith, method, path, body ?? "", options.signedAt));
  const response = await fetch(`${system.apiUrl}${path}`, { method, headers, body });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

/** The signature of api.md §4 over `<timestamp>\n<METHOD>\n<path?query>\n<hex SHA-256 of the body>`. */
export function signatureHeaders(
  privateKey: KeyObject,
  method: string,
  path: string,
  body: string,
  signedAt = Math.floor(Date.now() / 1000),
) {
  const text = `${signedAt}\n${method}\n${path}\n${createHash("sha256").update(body).digest("hex")}`;
  return { "x-daon-timestamp": String(signedAt), "x-daon-signature": sign(null, Buffer.from(text), privateKey).toString("base64") };
}

/** An Ed25519 key pair, the public half as platforms register it (base64 SPKI DER). */
export function signingKeys(): { privateKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64") };
}

export function assertError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.success, false);
  assert.equal(answer.body.error.code, code, JSON.stringify(answer.body));
}

/** A signed-in account through the real sign-in (magic link by SMTP, TOTP); an administrator when in ADMIN_EMAILS. */
export async function signIn(system: TestSystem, mailbox: Mailbox, email: string, ip: string): Promise<Creator> {
  return enrol(system, email, ip, async () => linkToken(await mailbox.message(email, 1)));
}

export interface RegisteredPlatform {
  id: string;
  domain: string;
  key: string;
}

/** An administrator registers a platform and, unless told otherwise, approves it. */
export async function registerPlatform(
  system: TestSystem,
  adminToken: string,
  spec: { domain: string; certification_tier?: string; public_key?: string; require_signature?: boolean },
  approve = true,
): Promise<RegisteredPlatform> {
  const created = await call(system, "POST", "/api/v1/admin/platforms", {
    credential: adminToken,
    body: { name: `Platform ${spec.domain}`, contact_email: `ops@${spec.domain}`, certification_tier: "community", ...spec },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const platform = { id: created.body.broker.id, domain: created.body.broker.domain, key: created.body.api_key };
  if (approve) {
    const approved = await call(system, "POST", `/api/v1/admin/platforms/${platform.id}/approve`, { credential: adminToken });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
  }
  return platform;
}

/** Waits until a registration is on the ledger (protect's own wait may end first on a busy machine). */
export async function confirmed(system: TestSystem, contentHash: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const answer = await call(system, "GET", `/api/v1/verify/${contentHash}`);
    if (answer.body.status === "confirmed") return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`${contentHash} was not confirmed in 30 s`);
}
