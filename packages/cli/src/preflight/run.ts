import { existsSync } from "node:fs";
import type { Deployment } from "../deployment.js";
import { readEnv, UsageError } from "../deployment.js";
import { backupChecks } from "./backup-checks.js";
import { configChecks } from "./config-checks.js";
import { type Check, type CheckResult, type PreflightOptions, PreflightContext, type Status, warn } from "./context.js";
import { hostChecks } from "./host-checks.js";
import { serviceChecks } from "./service-checks.js";
import { smokeCheck } from "./smoke.js";

/** The 26 checks of ops.md §3, in their order. */
export const CHECKS: Check[] = [...configChecks, ...serviceChecks, ...hostChecks, ...backupChecks, smokeCheck].sort(
  (a, b) => a.number - b.number,
);

export interface CheckOutcome extends CheckResult {
  number: number;
  id: string;
}

export interface PreflightReport {
  ready: boolean;
  strict: boolean;
  exitCode: number;
  totals: Record<Status, number>;
  checks: CheckOutcome[];
}

function selection(list: string | undefined): Set<string> | undefined {
  if (!list) return undefined;
  const wanted = new Set<string>();
  for (const item of list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const check = CHECKS.find((c) => c.id === item || String(c.number) === item.replace(/^0+/, ""));
    if (!check) throw new UsageError(`unknown check ${JSON.stringify(item)}; ids: ${CHECKS.map((c) => c.id).join(", ")}`);
    wanted.add(check.id);
  }
  return wanted;
}

async function runOne(check: Check, context: PreflightContext): Promise<CheckResult> {
  const seconds = check.timeoutSeconds ?? 30;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check.run(context),
      new Promise<CheckResult>((resolve) => {
        timer = setTimeout(() => resolve({ status: "FAIL", reason: `no answer within ${seconds} s` }), seconds * 1000);
      }),
    ]);
  } catch (error) {
    return { status: "FAIL", reason: `the check itself failed: ${(error as Error).message.slice(0, 160)}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `daon preflight` (ops.md §3): every check, PASS/WARN/FAIL with what was measured. Read-only
 * except `--smoke`. Throws UsageError (exit 2) only when `.env` cannot be read.
 */
export async function runPreflight(
  deployment: Deployment,
  options: PreflightOptions,
  onResult: (outcome: CheckOutcome) => void = () => {},
): Promise<PreflightReport> {
  let env: Record<string, string>;
  try {
    if (!existsSync(deployment.envFile)) throw new Error("no such file");
    env = readEnv(deployment.envFile);
  } catch (error) {
    throw new UsageError(`cannot read ${deployment.envFile}: ${(error as Error).message}`);
  }
  const only = selection(options.only);
  const skip = selection(options.skip);
  const context = new PreflightContext(deployment, env, options);
  const checks: CheckOutcome[] = [];
  for (const check of CHECKS) {
    const skipped = (only && !only.has(check.id)) || skip?.has(check.id);
    const result = skipped ? warn(`skipped (${only && !only.has(check.id) ? "--only" : "--skip"})`) : await runOne(check, context);
    const outcome = { number: check.number, id: check.id, ...result };
    checks.push(outcome);
    onResult(outcome);
  }
  const totals: Record<Status, number> = { PASS: 0, WARN: 0, FAIL: 0 };
  for (const check of checks) totals[check.status]++;
  const strict = Boolean(options.strict);
  const ready = totals.FAIL === 0 && (!strict || totals.WARN === 0);
  return { ready, strict, exitCode: ready ? 0 : 1, totals, checks };
}

export function formatOutcome(outcome: CheckOutcome): string {
  return `${String(outcome.number).padStart(2, "0")} ${outcome.status} ${outcome.id}: ${outcome.reason}`;
}

export function formatSummary(report: PreflightReport): string {
  const { PASS, WARN, FAIL } = report.totals;
  return [
    `${report.checks.length} checks: ${PASS} PASS, ${WARN} WARN, ${FAIL} FAIL${report.strict ? " (--strict: WARN fails too)" : ""}`,
    report.ready ? "READY" : "NOT READY",
  ].join("\n");
}
