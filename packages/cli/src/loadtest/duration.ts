import { UsageError } from "../deployment.js";

const UNITS_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const DURATION = /^(?:\d+(?:ms|d|h|m|s))+$/;

/** `90s`, `15m`, `1h30m`, `24h`, `7d`, `500ms` → milliseconds; anything else is a usage error naming `what`. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) throw new UsageError(`${what} ${JSON.stringify(text)} must be a duration such as 90s, 15m or 1h30m`);
  let ms = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)(ms|d|h|m|s)/g)) ms += Number(amount) * UNITS_MS[unit];
  if (ms <= 0) throw new UsageError(`${what} ${JSON.stringify(text)} must be longer than zero`);
  return ms;
}

/** Milliseconds as the operator wrote them: `1h30m`, `20m`, `8s`, `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let seconds = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  return parts.join("");
}
