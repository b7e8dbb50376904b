import { existsSync, readFileSync } from "node:fs";
import { Agent, request } from "undici";
import { opsToken } from "@daon/api";
import { LedgerRpc, registersOnly } from "./ledger-rpc.js";

const MINUTE_MS = 60_000;
/** Minutes flagged in "Issues Encountered" (ops.md §9, the runbook's alert levels). */
const ISSUE_ERROR_RATE = 0.05;
const ISSUE_P95_MS = 2000;
/** A gap between blocks longer than twice the 30 s empty-block interval means the ledger stalled. */
const ISSUE_BLOCK_GAP_MS = 60_000;

export interface ReportOptions {
  apiUrl: string;
  rpcUrl: string;
  since: Date;
  until: Date;
  /** Given, else read from launch.json, else the genesis time. */
  launchTime?: Date;
  launchFile: string;
  includeTestTraffic: boolean;
  settings: Record<string, string | undefined>;
  log: (line: string) => void;
}

/** A figure of the report: its text, or why it could not be had (`n/a (reason)`). */
export type Figure = { ok: true; text: string; value: number | string } | { ok: false; text: string; reason: string };

const figure = (value: number | string, text = typeof value === "number" ? value.toLocaleString("en-US") : value): Figure => ({
  ok: true,
  text,
  value,
});
const missing = (reason: string): Figure => ({ ok: false, text: `n/a (${reason})`, reason });

interface StatsMinute {
  minute: string;
  healthyInstances: number;
  requests: number;
  byClass: Record<"2xx" | "3xx" | "4xx" | "5xx", number>;
  latencyBuckets: number[];
  latencySumMs: number;
  maxInFlight: number;
}

interface Stats {
  latencyBoundsMs: number[];
  minutes: StatsMinute[];
  testTraffic: { requests: number };
  registrations: { created: number; confirmed: number; test: number };
  accounts: { created: number } | { error: string };
  ledger: { testOnlyHeights: number[] };
}

export interface LaunchReport {
  launch: Figure;
  window: { since: string; until: string; label: string };
  figures: Record<
    | "totalRequests"
    | "errorRate"
    | "avgResponseTime"
    | "p95ResponseTime"
    | "peakConcurrentUsers"
    | "blockchainTransactions"
    | "registrations"
    | "newAccounts"
    | "uptime"
    | "blocks"
    | "longestBlockGap",
    Figure
  >;
  issues: string[];
  excluded: { requests: number; registrations: number; transactions: number } | null;
  failures: string[];
  markdown: string;
}

/** A quantile of a latency histogram (non-cumulative bucket counts), interpolated inside its bucket as Prometheus does. */
export function histogramQuantile(q: number, bounds: number[], buckets: number[]): number | null {
  const total = buckets.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    if (seen + buckets[i] >= rank && buckets[i] > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + ((bounds[i] - lower) * (rank - seen)) / buckets[i];
    }
    seen += buckets[i];
  }
  return bounds[bounds.length - 1];
}

function windowLabel(ms: number): string {
  const minutes = Math.round(ms / MINUTE_MS);
  if (minutes % 60 === 0) return `${minutes / 60} ${minutes === 60 ? "hour" : "hours"}`;
  return `${minutes} ${minutes === 1 ? "minute" : "minutes"}`;
}

const utcMinute = (at: number) => new Date(at).toISOString().slice(0, 16).replace("T", " ");

/** Runs of consecutive minutes (start times, sorted) as "YYYY-MM-DD HH:MM–HH:MM UTC". */
function minuteRanges(minutes: number[]): { from: number; to: number }[] {
  const ranges: { from: number; to: number }[] = [];
  for (const minute of minutes) {
    const last = ranges.at(-1);
    if (last && minute === last.to + MINUTE_MS) last.to = minute;
    else ranges.push({ from: minute, to: minute });
  }
  return ranges;
}

const rangeText = ({ from, to }: { from: number; to: number }) =>
  from === to ? `${utcMinute(from)} UTC` : `${utcMinute(from)}–${utcMinute(to).slice(11)} UTC`;

/** `run/launch.json` (written by `daon wipe-and-reset`), when it is about this deployment's chain. */
function launchFromFile(path: string, chainId: string | undefined): Date | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const launch = JSON.parse(readFileSync(path, "utf8")) as { chainId?: string; launchedAt?: string };
    if (chainId && launch.chainId && launch.chainId !== chainId) return undefined;
    return launch.launchedAt && !Number.isNaN(Date.parse(launch.launchedAt)) ? new Date(launch.launchedAt) : undefined;
  } catch {
    return undefined;
  }
}

async function fetchStats(options: ReportOptions): Promise<Stats> {
  const secret = options.settings.API_KEY_SECRET;
  if (!secret) throw new Error("API_KEY_SECRET is not in .env: the ops token cannot be made");
  const query = new URLSearchParams({
    since: options.since.toISOString(),
    until: options.until.toISOString(),
    include_test: String(options.includeTestTraffic),
  });
  const agent = new Agent({ keepAliveTimeout: 1000 });
  try {
    const response = await request(`${options.apiUrl.replace(/\/$/, "")}/internal/ops/stats?${query}`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${opsToken(secret)}`, accept: "application/json" },
      signal: AbortSignal.timeout(60_000),
    });
    const body = (await response.body.json().catch(() => undefined)) as (Stats & { error?: { message?: string } }) | undefined;
    if (response.statusCode !== 200 || !body) {
      throw new Error(
        `${options.apiUrl} /internal/ops/stats answered ${response.statusCode}${body?.error?.message ? `: ${body.error.message}` : ""}`,
      );
    }
    return body;
  } finally {
    await agent.close().catch(() => {});
  }
}

interface LedgerFigures {
  /** Registration-only txs at heights whose registrations are all test traffic are left out; undefined when that is unknown. */
  transactions: number | undefined;
  excludedTransactions: number;
  blocks: number;
  longestGapMs: number | null;
  gaps: { from: number; to: number }[];
}

async function ledgerFigures(rpc: LedgerRpc, options: ReportOptions, testOnlyHeights: Set<number> | undefined): Promise<LedgerFigures> {
  const latest = await rpc.latest();
  const first = await rpc.firstHeightAtOrAfter(options.since, latest.height);
  const last = (await rpc.firstHeightAtOrAfter(options.until, latest.height)) - 1;
  if (last < first) return { transactions: testOnlyHeights && 0, excludedTransactions: 0, blocks: 0, longestGapMs: null, gaps: [] };
  let reported = Date.now();
  const times = await rpc.blockTimes(Math.max(1, first - 1), last, (done) => {
    if (Date.now() - reported < 10_000) return;
    reported = Date.now();
    options.log(`reading block times: ${done}/${last - first + 2}`);
  });
  let longestGapMs: number | null = null;
  const gaps: { from: number; to: number }[] = [];
  for (let height = Math.max(2, first); height <= last; height++) {
    const gap = times.get(height)! - times.get(height - 1)!;
    if (longestGapMs === null || gap > longestGapMs) longestGapMs = gap;
    if (gap > ISSUE_BLOCK_GAP_MS) gaps.push({ from: times.get(height - 1)!, to: times.get(height)! });
  }
  const blocks = last - first + 1;
  if (!testOnlyHeights) return { transactions: undefined, excludedTransactions: 0, blocks, longestGapMs, gaps };
  const txs = await rpc.txs(first, last);
  const excluded = txs.filter((tx) => testOnlyHeights.has(tx.height) && registersOnly(tx)).length;
  return { transactions: txs.length - excluded, excludedTransactions: excluded, blocks, longestGapMs, gaps };
}

/**
 * `daon report` (ops.md §9): the runbook's post-launch report, filled from the API's minute
 * statistics and database counts (`/internal/ops/stats`) and the ledger (`tx_search` over the
 * window's heights). A source that fails leaves its figures `n/a (reason)`.
 */
export async function launchReport(options: ReportOptions): Promise<LaunchReport> {
  const failures: string[] = [];
  const rpc = new LedgerRpc(options.rpcUrl);
  try {
    const [stats, genesis] = await Promise.allSettled([fetchStats(options), options.launchTime ? undefined : rpc.genesisTime()]);
    let launch: Figure;
    let launchAt: Date | undefined = options.launchTime ?? launchFromFile(options.launchFile, options.settings.CHAIN_ID);
    if (!launchAt && genesis.status === "fulfilled") launchAt = genesis.value;
    if (launchAt) launch = figure(launchAt.toISOString());
    else {
      launch = missing(
        `no --launch-time, no ${options.launchFile}, genesis unreadable: ${(genesis as PromiseRejectedResult).reason?.message}`,
      );
      failures.push(`launch time: ${launch.text}`);
    }

    const statsFailure = stats.status === "rejected" ? String((stats.reason as Error).message) : undefined;
    if (statsFailure) failures.push(`API statistics: ${statsFailure}`);
    const fromStats = (make: (s: Stats) => Figure): Figure => (stats.status === "fulfilled" ? make(stats.value) : missing(statsFailure!));

    // Which txs are test traffic comes from the database (through the API); with test traffic included, none is left out.
    const testOnly = options.includeTestTraffic
      ? new Set<number>()
      : stats.status === "fulfilled"
        ? new Set(stats.value.ledger.testOnlyHeights)
        : undefined;
    let ledger: LedgerFigures | undefined;
    let ledgerFailure: string | undefined;
    try {
      ledger = await ledgerFigures(rpc, options, testOnly);
    } catch (error) {
      ledgerFailure = `ledger RPC ${options.rpcUrl}: ${(error as Error).message}`;
      failures.push(ledgerFailure);
    }
    const fromLedger = (make: (l: LedgerFigures) => Figure): Figure => (ledger ? make(ledger) : missing(ledgerFailure!));

    // The window as counted: from the launch if that is later than --since, whole minutes.
    const start = Math.max(options.since.getTime(), launchAt?.getTime() ?? 0);
    const firstMinute = Math.floor(start / MINUTE_MS) * MINUTE_MS;
    const windowMinutes: number[] = [];
    for (let minute = firstMinute; minute < options.until.getTime(); minute += MINUTE_MS) windowMinutes.push(minute);

    const totals = (s: Stats) => {
      const buckets = Array(s.latencyBoundsMs.length + 1).fill(0);
      let requests = 0;
      let errors = 0;
      let sumMs = 0;
      let peak = 0;
      for (const m of s.minutes) {
        requests += m.requests;
        errors += m.byClass["5xx"];
        sumMs += m.latencySumMs;
        peak = Math.max(peak, m.maxInFlight);
        m.latencyBuckets.forEach((n, i) => {
          buckets[i] += n;
        });
      }
      return { requests, errors, sumMs, peak, buckets };
    };

    const figures: LaunchReport["figures"] = {
      totalRequests: fromStats((s) => figure(totals(s).requests)),
      errorRate: fromStats((s) => {
        const t = totals(s);
        const rate = t.requests === 0 ? 0 : (t.errors / t.requests) * 100;
        return figure(rate, `${rate.toFixed(2)}%`);
      }),
      avgResponseTime: fromStats((s) => {
        const t = totals(s);
        if (t.requests === 0) return figure(0, "0ms (no requests)");
        const avg = Math.round(t.sumMs / t.requests);
        return figure(avg, `${avg}ms`);
      }),
      p95ResponseTime: fromStats((s) => {
        const p95 = histogramQuantile(0.95, s.latencyBoundsMs, totals(s).buckets);
        return p95 === null ? figure(0, "0ms (no requests)") : figure(Math.round(p95), `${Math.round(p95)}ms`);
      }),
      peakConcurrentUsers: fromStats((s) => figure(totals(s).peak)),
      blockchainTransactions: fromLedger((l) =>
        l.transactions === undefined ? missing(`which txs are test traffic is unknown: ${statsFailure}`) : figure(l.transactions),
      ),
      registrations: fromStats((s) => figure(s.registrations.created + (options.includeTestTraffic ? s.registrations.test : 0))),
      newAccounts: fromStats((s) => ("error" in s.accounts ? missing(`accounts: ${s.accounts.error}`) : figure(s.accounts.created))),
      uptime: fromStats((s) => {
        if (windowMinutes.length === 0) return missing("the window ends before the launch");
        const up = new Set(s.minutes.filter((m) => m.healthyInstances > 0).map((m) => Date.parse(m.minute)));
        const share = (windowMinutes.filter((m) => up.has(m)).length / windowMinutes.length) * 100;
        return figure(share, `${share.toFixed(2)}%`);
      }),
      blocks: fromLedger((l) => figure(l.blocks)),
      longestBlockGap: fromLedger((l) =>
        l.longestGapMs === null
          ? figure("none", "n/a (fewer than two blocks)")
          : figure(l.longestGapMs, `${(l.longestGapMs / 1000).toFixed(1)} s`),
      ),
    };
    if (figures.newAccounts.ok === false && stats.status === "fulfilled") failures.push(`database: ${figures.newAccounts.reason}`);

    const issues: string[] = [];
    if (stats.status === "rejected") issues.push(`n/a (minute statistics unavailable: ${statsFailure}); check the logs for the window`);
    else {
      const s = stats.value;
      const byMinute = new Map(s.minutes.map((m) => [Date.parse(m.minute), m]));
      const errorMinutes: number[] = [];
      const slowMinutes: number[] = [];
      const downMinutes: number[] = [];
      let peakErrorRate = 0;
      let peakP95 = 0;
      for (const minute of windowMinutes) {
        const m = byMinute.get(minute);
        if (!m || m.healthyInstances === 0) {
          downMinutes.push(minute);
          continue;
        }
        const rate = m.requests === 0 ? 0 : m.byClass["5xx"] / m.requests;
        if (rate > ISSUE_ERROR_RATE) {
          errorMinutes.push(minute);
          peakErrorRate = Math.max(peakErrorRate, rate);
        }
        const p95 = histogramQuantile(0.95, s.latencyBoundsMs, m.latencyBuckets);
        if (p95 !== null && p95 > ISSUE_P95_MS) {
          slowMinutes.push(minute);
          peakP95 = Math.max(peakP95, p95);
        }
      }
      for (const range of minuteRanges(errorMinutes))
        issues.push(`${rangeText(range)}: error rate above 5% (5xx; peak minute ${(peakErrorRate * 100).toFixed(2)}%)`);
      for (const range of minuteRanges(slowMinutes))
        issues.push(`${rangeText(range)}: P95 response time above 2s (peak minute ${Math.round(peakP95)}ms)`);
      for (const range of minuteRanges(downMinutes)) issues.push(`${rangeText(range)}: API down (no healthy instance reported the minute)`);
    }
    for (const gap of ledger?.gaps ?? []) {
      issues.push(
        `${utcMinute(gap.from)}:${new Date(gap.from).toISOString().slice(17, 19)} UTC: no block for ${((gap.to - gap.from) / 1000).toFixed(0)} s`,
      );
    }

    const excluded =
      options.includeTestTraffic || stats.status !== "fulfilled"
        ? null
        : {
            requests: stats.value.testTraffic.requests,
            registrations: stats.value.registrations.test,
            transactions: ledger?.excludedTransactions ?? 0,
          };
    const window = {
      since: options.since.toISOString(),
      until: options.until.toISOString(),
      label: windowLabel(options.until.getTime() - options.since.getTime()),
    };
    const markdown = render({ launch, window, figures, issues, excluded, includeTest: options.includeTestTraffic });
    return { launch, window, figures, issues, excluded, failures, markdown };
  } finally {
    await rpc.close().catch(() => {});
  }
}

function render(report: Pick<LaunchReport, "launch" | "window" | "figures" | "issues" | "excluded"> & { includeTest: boolean }): string {
  const { launch, window, figures: f, issues, excluded } = report;
  const launchAt = launch.ok ? new Date(String(launch.value)) : undefined;
  const lines = [
    "# DAON Production Launch Report",
    "",
    `**Launch Date:** ${launchAt ? launchAt.toISOString().slice(0, 10) : launch.text}`,
    `**Launch Time:** ${launchAt ? `${launchAt.toISOString().slice(11, 16)} UTC` : launch.text}`,
    "",
    `## Metrics (${window.label})`,
    `- Total Requests: ${f.totalRequests.text}`,
    `- Error Rate: ${f.errorRate.text}`,
    `- Avg Response Time: ${f.avgResponseTime.text}`,
    `- P95 Response Time: ${f.p95ResponseTime.text}`,
    `- Peak Concurrent Users: ${f.peakConcurrentUsers.text}`,
    `- Blockchain Transactions: ${f.blockchainTransactions.text}`,
    `- Registrations: ${f.registrations.text}`,
    `- New Accounts: ${f.newAccounts.text}`,
    `- Uptime: ${f.uptime.text}`,
    `- Blocks: ${f.blocks.text}`,
    `- Longest Block Gap: ${f.longestBlockGap.text}`,
    "",
    `Window: ${window.since} to ${window.until}. ${
      report.includeTest
        ? "Test traffic (load tests, smoke tests) included."
        : excluded
          ? `Test traffic excluded: ${excluded.requests.toLocaleString("en-US")} requests, ${excluded.registrations.toLocaleString("en-US")} registrations, ${excluded.transactions.toLocaleString("en-US")} transactions.`
          : "Test traffic excluded."
    } Error rate = 5xx ÷ requests; peak concurrent users = peak requests in flight; uptime = minutes with a healthy API ÷ minutes since launch.`,
    "",
    "## Issues Encountered",
    ...(issues.length > 0
      ? issues.map((issue) => `- ${issue}`)
      : ["- None detected: no minute with errors above 5%, P95 above 2s, downtime or block gaps"]),
    "- [List any issues and resolutions]",
    "",
    "## Lessons Learned",
    "- [What went well]",
    "- [What could be improved]",
    "",
    "## Next Steps",
    "- [Follow-up actions]",
    "",
  ];
  return lines.join("\n");
}
