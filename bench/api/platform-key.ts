/**
 * A platform key for the authenticated protect figure, obtained the way an operator would:
 * the admin signs in by e-mail link (read from the embedded mail folder) and TOTP, registers
 * a platform, approves it and lifts its quota above what the bench can send.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { TOTP } from "otpauth";

// biome-ignore lint/suspicious/noExplicitAny: answers are read by field name, as a client script would
type Answer = Record<string, any>;

export const BENCH_ADMIN = "bench-admin@daon.invalid";

async function call(base: string, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = (await response.json()) as Answer;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer).slice(0, 200)}`);
  return answer;
}

async function magicLinkToken(mailDir: string): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const files = await readdir(mailDir).catch(() => []);
    for (const file of files) {
      // Quoted-printable may fold the link; unfold soft line breaks before looking.
      const text = (await readFile(join(mailDir, file), "utf8")).replace(/=\r?\n/g, "").replace(/=3D/g, "=");
      const token = /#token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
      if (token) return token;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no sign-in mail under ${mailDir}`);
}

/** `base` is a `daon up` started with ADMIN_EMAILS=BENCH_ADMIN and no SMTP_URL; `stateDir` its state directory. */
export async function benchPlatformKey(base: string, stateDir: string): Promise<string> {
  await call(base, "POST", "/api/v1/auth/magic-link", { email: BENCH_ADMIN });
  const { session_id } = await call(base, "POST", "/api/v1/auth/verify", { token: await magicLinkToken(join(stateDir, "mail")) });
  const { secret } = await call(base, "POST", "/api/v1/auth/2fa/setup", { session_id });
  const code = new TOTP({ secret, digits: 6, period: 30, algorithm: "SHA1" }).generate();
  const { access_token } = await call(base, "POST", "/api/v1/auth/2fa/verify-setup", { session_id, code });
  const created = await call(
    base,
    "POST",
    "/api/v1/admin/platforms",
    { domain: "bench.daon.invalid", name: "Bench", contact_email: "ops@bench.daon.invalid", certification_tier: "enterprise" },
    access_token,
  );
  const id = created.broker.id;
  await call(base, "POST", `/api/v1/admin/platforms/${id}/approve`, undefined, access_token);
  await call(base, "PATCH", `/api/v1/admin/platforms/${id}`, { rate_limits: { hourly: 100_000_000, daily: 100_000_000 } }, access_token);
  return created.api_key;
}
