import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { opsToken } from "@daon/api";
import { UsageError } from "../deployment.js";
import { formatDuration, parseDuration } from "./duration.js";
import { Measurements, type Outcome } from "./measurements.js";
import { type LoadTestResults, type Verdict, writeResults } from "./results.js";
import { SystemMetrics } from "./system-metrics.js";
import { evaluate, type Profile, thresholdsFor } from "./thresholds.js";
import { awaitConfirmations, type PendingConfirmation, type RunContext, VirtualUser } from "./virtual-user.js";

const RECOVERY_LIMIT_MS = 120_000;
const PROGRESS_MS = 10_000;
/** Failed requests written to console.log one by one; past this only counted (a dead target fails thousands a second). */
const MAX_ERROR_LINES = 100_000;

export interface LoadTestOptions {
  url: string;
  users: number;
  durationMs: number;
  rampMs: number;
  profile: Profile;
  thresholds: readonly string[];
  apiKey?: string;
  /** Where the run's `<YYYYMMDD_HHMMSS>/` directory goes. */
  resultsRoot: string;
  allowMainnet: boolean;
  /** The deployment's settings (.env): API_KEY_SECRET for minting a key, CHAIN_RPC to find the node. */
  settings: Record<string, string | undefined>;
  /** Asks the operator to go ahead (a TTY without --yes); undefined = already agreed. */
  confirm?: (question: string) => Promise<boolean>;
  /** Progress and errors for the operator (stderr). */
  log: (line: string) => void;
  /** Aborted on SIGINT: drain, report INCOMPLETE. */
  interrupt: AbortSignal;
}

export interface LoadTestOutcome {
  exitCode: number;
  verdict: Verdict;
  dir: string;
  results: LoadTestResults;
}

const MAX_RAMP_MS = 5 * 60_000;

/** USERS, DURATION and --ramp as given (ops.md §4): exactly those, or a usage error; the ramp defaults to 20 % of DURATION, at most 5 m. */
export function runShape(
  usersText: string,
  durationText: string,
  rampText?: string,
): { users: number; durationMs: number; rampMs: number } {
  if (!/^\d+$/.test(usersText) || Number(usersText) < 1 || Number(usersText) > 100_000) {
    throw new UsageError(`USERS ${JSON.stringify(usersText)} must be a whole number from 1 to 100000`);
  }
  const durationMs = parseDuration(durationText, "DURATION");
  const rampMs = rampText === undefined ? Math.min(durationMs * 0.2, MAX_RAMP_MS) : parseDuration(rampText, "--ramp");
  if (rampMs * 2 > durationMs) {
    throw new UsageError(`--ramp ${formatDuration(rampMs)} is more than half of DURATION ${formatDuration(durationMs)}`);
  }
  return { users: Number(usersText), durationMs, rampMs };
}

/** `YYYYMMDD_HHMMSS` in UTC. */
export function resultsStamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0"]);

function localPort(url: string | undefined, fallback: number): number | undefined {
  try {
    const parsed = new URL(url ?? `http://127.0.0.1:${fallback}`);
    if (!LOCAL_HOSTS.has(parsed.hostname)) return undefined;
    return Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  } catch {
    return undefined;
  }
}

/** The run's own requests besides the users' (health, key, recovery): closed at the end, so nothing keeps the process up. */
let checkAgent = new Agent({ keepAliveTimeout: 1000 });

async function getJson(url: string, timeoutMs: number, headers: Record<string, string> = {}, body?: unknown) {
  const response = await request(url, {
    dispatcher: checkAgent,
    method: body === undefined ? "GET" : "POST",
    headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.body.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, json };
}

/** The key the virtual users send: given, from DAON_LOADTEST_API_KEY, or minted for this run by the target. */
async function loadTestKey(
  options: LoadTestOptions,
  base: string,
  runId: string,
): Promise<{ key: string; minted: boolean; expiresAt?: string }> {
  const given = options.apiKey ?? options.settings.DAON_LOADTEST_API_KEY;
  if (given) return { key: given, minted: false };
  const secret = options.settings.API_KEY_SECRET;
  if (!secret) {
    throw new UsageError(
      "no load-test key: pass --api-key or DAON_LOADTEST_API_KEY, or run where the deployment's .env (API_KEY_SECRET) is, so one can be minted",
    );
  }
  const answer = await getJson(
    `${base}/internal/ops/loadtest-key`,
    10_000,
    { authorization: `Bearer ${opsToken(secret)}` },
    { runId, users: options.users, durationSeconds: Math.ceil((options.durationMs + RECOVERY_LIMIT_MS) / 1000) },
  ).catch((error: Error) => ({ status: 0, json: { error: { message: error.message } } as Record<string, unknown> }));
  if (answer.status !== 201 || typeof answer.json?.key !== "string") {
    const reason = (answer.json?.error as { message?: string } | undefined)?.message ?? `HTTP ${answer.status}`;
    throw new UsageError(
      `could not mint a load-test key at ${base}/internal/ops/loadtest-key (${reason}): check API_KEY_SECRET in .env, or pass --api-key`,
    );
  }
  return { key: answer.json.key, minted: true, expiresAt: String(answer.json.expiresAt) };
}

/**
 * `daon loadtest` (ops.md §4): checks the target, gets a key, runs USERS virtual users for
 * DURATION (ramp up, hold, ramp down), then checks recovery and writes REPORT.md,
 * results.json, system-metrics.csv and console.log. Nothing in the target is changed but
 * the test registrations it makes, which stay, tagged.
 */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestOutcome> {
  checkAgent = new Agent({ keepAliveTimeout: 1000 });
  try {
    return await run(options);
  } finally {
    await checkAgent.close().catch(() => {});
  }
}

async function run(options: LoadTestOptions): Promise<LoadTestOutcome> {
  let target: URL;
  try {
    target = new URL(options.url);
  } catch {
    throw new UsageError(`URL ${JSON.stringify(options.url)} is not a URL (e.g. http://localhost:3000)`);
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") throw new UsageError(`URL ${options.url} must be http(s)`);
  const base = options.url.replace(/\/$/, "");

  options.log(`checking ${base}/health before a load test of ${options.users} users for ${formatDuration(options.durationMs)}`);
  const health = await getJson(`${base}/health`, 10_000).catch((error: Error) => error);
  if (health instanceof Error || health.status !== 200) {
    const answered = health instanceof Error ? `nothing (${health.message})` : String(health.status);
    throw new UsageError(`${base}/health answered ${answered}: a load test starts only against a healthy API`);
  }
  const chainId = String(health.json?.chainId ?? "unknown");
  if (chainId === "daon-mainnet-1" && !options.allowMainnet) {
    throw new UsageError(`${base} serves ${chainId}: a load test against mainnet needs --allow-mainnet`);
  }
  const question = `Run a load test of ${options.users} users for ${formatDuration(options.durationMs)} against ${base} (${chainId})?`;
  if (options.confirm && !(await options.confirm(question))) throw new UsageError("not confirmed: nothing was sent");

  const thresholds = thresholdsFor(options.profile, options.thresholds);
  const stamp = resultsStamp(new Date());
  const runId = `${stamp.replace("_", "-")}-${randomBytes(3).toString("hex")}`;
  const tag = `loadtest:${runId}`;
  const key = await loadTestKey(options, base, runId);
  let dir = join(options.resultsRoot, stamp);
  for (let n = 2; existsSync(dir); n++) dir = join(options.resultsRoot, `${stamp}-${n}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const consoleLog = createWriteStream(join(dir, "console.log"), { mode: 0o600 });
  const say = (line: string) => {
    consoleLog.write(`${line}\n`);
    options.log(line);
  };
  let errorLines = 0;
  const logError = (outcome: Outcome) => {
    errorLines += 1;
    if (errorLines > MAX_ERROR_LINES) return;
    const status = outcome.status ?? "-";
    consoleLog.write(
      `ERROR ${new Date().toISOString()} ${outcome.method} ${outcome.route} status=${status} request_id=${outcome.requestId} ${outcome.error!.kind}: ${outcome.error!.message.replace(/\s+/g, " ")}\n`,
    );
  };
  say(
    `load test ${runId} against ${base} (${chainId}): ${options.users} users for ${formatDuration(options.durationMs)}, profile ${options.profile}`,
  );
  say(`test registrations are tagged ${tag}${key.minted ? `; key minted for this run, expires ${key.expiresAt}` : ""}`);
  say(`results in ${dir}`);

  const system = new SystemMetrics(join(dir, "system-metrics.csv"), {
    api: localPort(options.url, 80),
    node: localPort(options.settings.CHAIN_RPC, 26657),
  });
  await system.start();

  const loadStart = Date.now();
  const measurements = new Measurements(loadStart);
  const handedOver: PendingConfirmation[] = [];
  let iterations = 0;
  let active = 0;
  const context: RunContext = {
    target,
    apiKey: key.key,
    runId,
    measurements,
    nextIteration: () => iterations++,
    onError: logError,
    handOver: (pending) => handedOver.push(pending),
  };

  const progress = () => {
    const point = measurements.closeWindow(Date.now(), active);
    const elapsed = formatDuration(Math.max(1000, point.t * 1000));
    const rate = measurements.requests === 0 ? 0 : (measurements.errors / measurements.requests) * 100;
    say(
      `[${elapsed}/${formatDuration(options.durationMs)}] users ${active}/${options.users}  requests ${measurements.requests} (${point.rps}/s)  errors ${measurements.errors} (${rate.toFixed(2)}%)  429 ${measurements.errorsByKind.get("http_429")}  p95 ${point.p95 ?? "-"} ms`,
    );
  };
  const ticker = setInterval(progress, PROGRESS_MS).unref();

  setMaxListeners(options.users + 20, options.interrupt); // each user listens for SIGINT
  // Users start evenly over the ramp and stop in reverse over the last ramp: all USERS hold together in between.
  const runs = Array.from({ length: options.users }, async (_, index) => {
    const offset = (options.rampMs * index) / options.users;
    const stop = new AbortController();
    const onInterrupt = () => stop.abort();
    options.interrupt.addEventListener("abort", onInterrupt);
    const stopTimer = setTimeout(() => stop.abort(), options.durationMs - offset);
    let started = false;
    try {
      await sleep(offset, undefined, { signal: stop.signal }).catch(() => {});
      if (stop.signal.aborted) return;
      active += 1;
      started = true;
      await new VirtualUser(index, context).run(stop.signal);
    } finally {
      if (started) active -= 1;
      clearTimeout(stopTimer);
      options.interrupt.removeEventListener("abort", onInterrupt);
    }
  });
  await Promise.all(runs);
  clearInterval(ticker);
  const loadEnd = Date.now();
  if (loadEnd - (measurements.series.at(-1)?.t ?? 0) * 1000 - loadStart > 500 || measurements.series.length === 0) progress();
  const interrupted = options.interrupt.aborted;
  if (interrupted) say("interrupted: in-flight requests finished; the run is INCOMPLETE");

  // After the load: confirmations still awaited, and the target's recovery.
  const recovery: LoadTestResults["recovery"] = {
    checked: false,
    recovered: false,
    seconds: null,
    healthStatus: null,
    outboxPending: null,
  };
  if (!interrupted) {
    say("load finished; checking recovery (/health 200 and outbox drained, up to 120 s)");
    const deadline = Date.now() + RECOVERY_LIMIT_MS;
    const recoveryStop = AbortSignal.any([options.interrupt, AbortSignal.timeout(RECOVERY_LIMIT_MS)]);
    const confirming = awaitConfirmations(handedOver, context, recoveryStop);
    recovery.checked = true;
    while (!options.interrupt.aborted) {
      const answer = await getJson(`${base}/health`, 5000).catch(() => ({ status: 0, json: undefined }));
      const pending = (answer.json?.checks as { outbox?: { pending?: number | null } } | undefined)?.outbox?.pending;
      recovery.healthStatus = answer.status || null;
      recovery.outboxPending = typeof pending === "number" ? pending : null;
      if (answer.status === 200 && pending === 0) {
        recovery.recovered = true;
        recovery.seconds = Math.round((Date.now() - loadEnd) / 100) / 10;
        break;
      }
      if (Date.now() >= deadline) break;
      await sleep(1000);
    }
    await confirming;
    say(
      recovery.recovered
        ? `recovered in ${recovery.seconds} s`
        : `not recovered within 120 s: /health ${recovery.healthStatus ?? "no answer"}, outbox pending ${recovery.outboxPending ?? "unknown"}`,
    );
  }
  const afterRecovery = await system.sample().catch(() => []);
  await system.stop();

  const confirmations = measurements.confirmationSummary();
  const checks = evaluate(thresholds, {
    errorRate: measurements.requests === 0 ? null : measurements.errors / measurements.requests,
    percentile: (p, endpoint) => measurements.percentile(p, endpoint),
    confirmP95: confirmations.p95,
    confirmedRatio: confirmations.ratio,
    recovered: recovery.checked ? recovery.recovered : null,
  });
  const verdict: Verdict = interrupted ? "INCOMPLETE" : checks.every((c) => c.pass) ? "PASS" : "FAIL";
  const exitCode = verdict === "PASS" ? 0 : 1;
  const loadSeconds = (loadEnd - loadStart) / 1000;
  const results: LoadTestResults = {
    runId,
    tag,
    target: base,
    chainId,
    users: options.users,
    duration: formatDuration(options.durationMs),
    durationSeconds: options.durationMs / 1000,
    rampSeconds: options.rampMs / 1000,
    profile: options.profile,
    startedAt: new Date(loadStart).toISOString(),
    endedAt: new Date(loadEnd).toISOString(),
    verdict,
    exitCode,
    thresholds: checks,
    requests: {
      total: measurements.requests,
      errors: measurements.errors,
      errorRate: measurements.requests === 0 ? null : Math.round((measurements.errors / measurements.requests) * 1e6) / 1e6,
      perSecond: Math.round((measurements.requests / Math.max(loadSeconds, 0.001)) * 10) / 10,
    },
    endpoints: measurements.endpointSummary(),
    errorsByKind: Object.fromEntries(measurements.errorsByKind),
    confirmations,
    recovery,
    system: {
      peaks: system.peaks(loadStart, loadEnd),
      afterRecovery: afterRecovery.map(({ scope, name, cpuPercent, rssMb }) => ({ scope, name, cpuPercent, rssMb })),
    },
    series: measurements.series,
  };
  await writeResults(dir, results);
  if (errorLines > MAX_ERROR_LINES) consoleLog.write(`${errorLines - MAX_ERROR_LINES} more failed requests were counted but not listed\n`);
  for (const check of checks) say(`${check.pass ? "PASS" : "FAIL"} ${check.key}: ${check.measured} (limit ${check.limit})`);
  say(`${verdict}: ${measurements.requests} requests, ${measurements.errors} errors; report ${join(dir, "REPORT.md")}`);
  await new Promise<void>((resolve) => consoleLog.end(resolve));
  return { exitCode, verdict, dir, results };
}
