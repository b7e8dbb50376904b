import { execFile } from "node:child_process";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { opsToken } from "@daon/api";
import type { Deployment } from "../deployment.js";
import { liveInstances } from "../preflight/context.js";

const run = promisify(execFile);

export interface OpsAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The ops tokens of every API_KEY_SECRET in these settings (current and previous), for calls across a rotation. */
export function opsTokensOf(...settings: Record<string, string | undefined>[]): string[] {
  const secrets = settings.flatMap((env) => [env.API_KEY_SECRET, env.API_KEY_SECRET_PREVIOUS]).filter((s): s is string => Boolean(s));
  return [...new Set(secrets)].map(opsToken);
}

/** Calls `/internal/ops/<path>` with the first token the instance accepts. */
export async function opsCall(
  url: string,
  path: string,
  tokens: string[],
  init: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<OpsAnswer> {
  let last: OpsAnswer = { status: 0, body: {} };
  for (const token of tokens) {
    const response = await fetch(`${url}/internal/ops/${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${token}`, ...(init.body ? { "content-type": "application/json" } : {}) },
      body: init.body ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
    });
    last = { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
    if (response.status !== 404) return last;
  }
  return last;
}

/** API instances that answer now: each live process record, and `localhost:PORT` (Caddy's listener under compose). */
export async function runningApis(deployment: Deployment, env: Record<string, string>): Promise<string[]> {
  const candidates = new Set([
    ...liveInstances(deployment.stateDir)
      .filter((i) => i.apiUrl)
      .map((i) => i.apiUrl as string),
    `http://127.0.0.1:${env.PORT ?? "3000"}`,
  ]);
  const answering: string[] = [];
  for (const url of candidates) {
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) })
      .then((r) => r.status < 500 || r.status === 503)
      .catch(() => false);
    if (ok) answering.push(url);
  }
  return answering;
}

/** SIGHUP to every API process (ops.md §8): own processes by pid, compose and systemd through their tools. */
export async function signalReload(deployment: Deployment, env: Record<string, string>): Promise<string> {
  const supervisor = env.DAON_SUPERVISOR ?? "process";
  if (supervisor === "compose") {
    await run("docker", ["compose", "kill", "-s", "HUP", "daon-api"], { cwd: dirname(deployment.envFile), timeout: 30_000 });
    return "docker compose kill -s HUP daon-api";
  }
  if (supervisor === "systemd") {
    await run("systemctl", ["kill", "-s", "HUP", "daon.service", "daon-api@*.service"], { timeout: 30_000 });
    return "systemctl kill -s HUP daon.service daon-api@*.service";
  }
  const pids = liveInstances(deployment.stateDir)
    .filter((i) => i.kind === "up" || i.kind === "api")
    .map((i) => i.pid);
  for (const pid of pids) process.kill(pid, "SIGHUP");
  return pids.length > 0 ? `SIGHUP to pid ${pids.join(", ")}` : "no running API process";
}

/**
 * Waits until every instance reports the expected fingerprints (null: the setting must be
 * absent) on `/internal/ops/config`; resolves with the instances still lagging at the deadline.
 */
export async function waitForFingerprints(
  urls: string[],
  tokens: string[],
  expected: Record<string, string | null>,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let lagging: string[] = [];
  do {
    lagging = [];
    for (const url of urls) {
      const answer = await opsCall(url, "config", tokens).catch(
        (error: Error) => ({ status: 0, body: { error: error.message } }) as OpsAnswer,
      );
      const reported = (answer.body.fingerprints ?? {}) as Record<string, string>;
      const wrong = Object.entries(expected).filter(([name, fp]) => (reported[name] ?? null) !== fp);
      if (answer.status !== 200) lagging.push(`${url} (HTTP ${answer.status})`);
      else if (wrong.length > 0) lagging.push(`${url} (${wrong.map(([name]) => name).join(", ")})`);
    }
    if (lagging.length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 300));
  } while (Date.now() < deadline);
  return lagging;
}
