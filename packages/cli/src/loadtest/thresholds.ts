import { UsageError } from "../deployment.js";
import { parseDuration } from "./duration.js";

export type Profile = "gate" | "launch";

/** What a run measured that thresholds judge; null when there was nothing to measure. */
export interface Measured {
  errorRate: number | null;
  /** Latency percentiles in ms, overall ("") and per endpoint name. */
  percentile(p: 50 | 95 | 99, endpoint?: string): number | null;
  confirmP95: number | null;
  confirmedRatio: number | null;
  /** null: not checked (the run was interrupted). */
  recovered: boolean | null;
}

export interface Threshold {
  key: string;
  kind: "ratio-below" | "ms-below" | "ratio-at-least" | "true";
  limit: number;
}

export interface ThresholdResult {
  key: string;
  limit: string;
  measured: string;
  pass: boolean;
}

/**
 * ops.md §4: `gate` (T-5) error rate < 10 %, p95 < 5 s; `launch` < 1 %, p95 < 2 s; both:
 * confirmation p95 < 30 s, ≥ 99 % confirmed, recovered.
 */
const PROFILES: Record<Profile, Record<string, number>> = {
  gate: { error_rate: 0.1, p95: 5000 },
  launch: { error_rate: 0.01, p95: 2000 },
};
const COMMON = { confirm_p95: 30_000, confirmed: 0.99, recovered: 1 };
const KEY = /^(error_rate|confirm_p95|confirmed|recovered|p(?:50|95|99)(?:\.[a-z-]+)?)$/;

function kindOf(key: string): Threshold["kind"] {
  if (key === "error_rate") return "ratio-below";
  if (key === "confirmed") return "ratio-at-least";
  if (key === "recovered") return "true";
  return "ms-below";
}

function parseValue(key: string, kind: Threshold["kind"], text: string): number {
  if (kind === "true") {
    if (text === "true") return 1;
    throw new UsageError(`--threshold ${key}=${text}: use ${key}=true or ${key}=off`);
  }
  if (kind === "ms-below") {
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
    return parseDuration(text, `--threshold ${key}`);
  }
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  const value = percent ? Number(percent[1]) / 100 : /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 0 && value <= 1)) throw new UsageError(`--threshold ${key}=${text}: give a fraction (0.05) or a percentage (5%)`);
  return value;
}

/** The profile's thresholds with `--threshold K=V` applied (`K=off` drops one). */
export function thresholdsFor(profile: Profile, overrides: readonly string[]): Threshold[] {
  const limits = new Map(Object.entries({ ...PROFILES[profile], ...COMMON }));
  for (const override of overrides) {
    const [key, value] = [override.slice(0, override.indexOf("=")), override.slice(override.indexOf("=") + 1)];
    if (!override.includes("=") || !KEY.test(key)) {
      throw new UsageError(
        `--threshold ${JSON.stringify(override)}: use K=V with K one of error_rate, p95, p99, p95.<endpoint>, confirm_p95, confirmed, recovered`,
      );
    }
    if (value === "off") limits.delete(key);
    else limits.set(key, parseValue(key, kindOf(key), value));
  }
  return [...limits].map(([key, limit]) => ({ key, kind: kindOf(key), limit }));
}

const percent = (ratio: number) => `${(ratio * 100).toFixed(2)}%`;
const ms = (value: number) => `${Math.round(value)} ms`;

export function evaluate(thresholds: readonly Threshold[], measured: Measured): ThresholdResult[] {
  return thresholds.map(({ key, kind, limit }) => {
    if (kind === "true") {
      const shown = measured.recovered === null ? "not checked" : measured.recovered ? "yes" : "no";
      return { key, limit: "yes", measured: shown, pass: measured.recovered === true };
    }
    let value: number | null;
    if (key === "error_rate") value = measured.errorRate;
    else if (key === "confirmed") value = measured.confirmedRatio;
    else if (key === "confirm_p95") value = measured.confirmP95;
    else {
      const [name, endpoint] = key.split(".");
      value = measured.percentile(Number(name.slice(1)) as 50 | 95 | 99, endpoint);
    }
    const shown = kind === "ms-below" ? `< ${ms(limit)}` : kind === "ratio-below" ? `< ${percent(limit)}` : `>= ${percent(limit)}`;
    // Nothing measured proves nothing: a threshold without a measurement fails.
    if (value === null) return { key, limit: shown, measured: "n/a", pass: false };
    const pass = kind === "ratio-at-least" ? value >= limit : value < limit;
    return { key, limit: shown, measured: kind === "ms-below" ? ms(value) : percent(value), pass };
  });
}
