import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ENDPOINTS, ERROR_KINDS, type SeriesPoint } from "./measurements.js";
import type { ProcessPeak } from "./system-metrics.js";
import type { ThresholdResult } from "./thresholds.js";

export type Verdict = "PASS" | "FAIL" | "INCOMPLETE";

interface EndpointFigures {
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** What results.json holds; REPORT.md shows the same figures (without the series). */
export interface LoadTestResults {
  runId: string;
  tag: string;
  target: string;
  chainId: string;
  users: number;
  duration: string;
  durationSeconds: number;
  rampSeconds: number;
  profile: string;
  startedAt: string;
  endedAt: string;
  verdict: Verdict;
  exitCode: number;
  thresholds: ThresholdResult[];
  requests: { total: number; errors: number; errorRate: number | null; perSecond: number };
  endpoints: Record<string, EndpointFigures>;
  errorsByKind: Record<string, number>;
  confirmations: { polled: number; confirmed: number; ratio: number | null; p50: number | null; p95: number | null };
  recovery: { checked: boolean; recovered: boolean; seconds: number | null; healthStatus: number | null; outboxPending: number | null };
  system: { peaks: ProcessPeak[]; afterRecovery: ProcessPeak[] };
  series: SeriesPoint[];
}

const ms = (value: number | null) => (value === null ? "n/a" : `${Math.round(value)} ms`);
const pct = (value: number | null) => (value === null ? "n/a" : `${(value * 100).toFixed(2)}%`);
const num = (value: number | null) => (value === null ? "n/a" : String(value));

export function renderReport(r: LoadTestResults): string {
  const lines = [
    `# DAON load test: ${r.verdict}`,
    "",
    "| | |",
    "|---|---|",
    `| Target | ${r.target} |`,
    `| Chain ID | ${r.chainId} |`,
    `| Users | ${r.users} |`,
    `| Duration | ${r.duration} (${r.durationSeconds} s; ramp ${r.rampSeconds} s up and ${r.rampSeconds} s down) |`,
    `| Profile | ${r.profile} |`,
    `| Started | ${r.startedAt} |`,
    `| Ended | ${r.endedAt} |`,
    `| Test tag | ${r.tag} |`,
    "",
    "## Verdict",
    "",
    "| Threshold | Limit | Measured | Result |",
    "|---|---|---|---|",
    ...r.thresholds.map((t) => `| ${t.key} | ${t.limit} | ${t.measured} | ${t.pass ? "PASS" : "FAIL"} |`),
    "",
    ...(r.verdict === "INCOMPLETE" ? ["The run was interrupted (SIGINT): the figures cover only the part that ran.", ""] : []),
    "## Requests",
    "",
    `| Total requests | ${r.requests.total} |`,
    "|---|---|",
    `| Errors | ${r.requests.errors} |`,
    `| Error rate | ${pct(r.requests.errorRate)} |`,
    `| Requests per second | ${r.requests.perSecond} |`,
    "",
    "| Endpoint | Requests | Errors | p50 | p95 | p99 |",
    "|---|---|---|---|---|---|",
    ...ENDPOINTS.map((name) => {
      const e = r.endpoints[name];
      return `| ${name} | ${e.count} | ${e.errors} | ${ms(e.p50)} | ${ms(e.p95)} | ${ms(e.p99)} |`;
    }),
    "",
    "`poll` is the verify calls of the iterations (1 in 20) that wait for their registration's confirmation.",
    "",
    "## Errors by kind",
    "",
    "| Kind | Count |",
    "|---|---|",
    ...ERROR_KINDS.map((kind) => `| ${kind} | ${r.errorsByKind[kind]} |`),
    "",
    "Each failed request is in console.log: `grep ERROR console.log`.",
    "",
    "## Confirmations",
    "",
    `| Polled iterations | ${r.confirmations.polled} |`,
    "|---|---|",
    `| Confirmed within 60 s | ${r.confirmations.confirmed} |`,
    `| Confirmed share | ${pct(r.confirmations.ratio)} |`,
    `| Confirmation p50 | ${ms(r.confirmations.p50)} |`,
    `| Confirmation p95 | ${ms(r.confirmations.p95)} |`,
    "",
    "## Recovery",
    "",
    `| Checked | ${r.recovery.checked ? "yes" : "no"} |`,
    "|---|---|",
    `| Recovered (/health 200, outbox drained, within 120 s) | ${r.recovery.recovered ? "yes" : "no"} |`,
    `| Seconds to recover | ${num(r.recovery.seconds)} |`,
    `| Last /health status | ${num(r.recovery.healthStatus)} |`,
    `| Outbox pending at the end | ${num(r.recovery.outboxPending)} |`,
    "",
    "## System",
    "",
    "| Scope | Name | CPU peak | RSS peak | CPU after recovery | RSS after recovery |",
    "|---|---|---|---|---|---|",
    ...r.system.peaks.map((peak) => {
      const after = r.system.afterRecovery.find((a) => a.scope === peak.scope && a.name === peak.name);
      const cpu = (value: number | null | undefined) => (value === null || value === undefined ? "n/a" : `${value}%`);
      const rss = (value: number | undefined) => (value === undefined ? "n/a" : `${value} MB`);
      return `| ${peak.scope} | ${peak.name} | ${cpu(peak.cpuPercent)} | ${rss(peak.rssMb)} | ${cpu(after?.cpuPercent)} | ${rss(after?.rssMb)} |`;
    }),
    "",
    "Every 5 s sample is in system-metrics.csv; results.json has these figures and a 10 s series.",
    "",
    `Test registrations stay in the target, tagged \`${r.tag}\` (metadata type \`loadtest\`).`,
    "",
  ];
  return lines.join("\n");
}

export async function writeResults(dir: string, results: LoadTestResults): Promise<void> {
  await writeFile(join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`, { mode: 0o600 });
  await writeFile(join(dir, "REPORT.md"), renderReport(results), { mode: 0o600 });
}
