import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { completeSets, type Manifest, VERIFY_FILE } from "./manifest.js";

export const RETENTION = { daily: 7, weekly: 4, monthly: 6, minimumSets: 3 } as const;

interface SetInfo {
  name: string;
  manifest: Manifest;
  /** False when its last verify failed: such a set is not counted as good, and not removed either. */
  good?: boolean;
}

const day = (time: Date) => time.toISOString().slice(0, 10);
const month = (time: Date) => time.toISOString().slice(0, 7);
/** The Monday (UTC) of the week a time falls in. */
function week(time: Date): string {
  const monday = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()));
  monday.setUTCDate(monday.getUTCDate() - ((monday.getUTCDay() + 6) % 7));
  return day(monday);
}

/**
 * Which sets retention removes (ops.md §5): only `scheduled` sets without `--keep`; of those,
 * the newest of each of the last 7 days, 4 weeks and 6 months stay; and never fewer than 3
 * good sets remain, whatever their kind (the oldest candidates go first).
 */
export function retentionPlan(sets: SetInfo[]): string[] {
  const newestFirst = [...sets].sort((a, b) => Date.parse(b.manifest.time) - Date.parse(a.manifest.time));
  const candidates = newestFirst.filter((set) => set.manifest.kind === "scheduled" && !set.manifest.keep);
  const kept = new Set<string>();
  for (const [period, count] of [
    [day, RETENTION.daily],
    [week, RETENTION.weekly],
    [month, RETENTION.monthly],
  ] as const) {
    const seen = new Set<string>();
    for (const set of candidates) {
      const key = period(new Date(set.manifest.time));
      if (seen.has(key)) continue;
      seen.add(key);
      if (seen.size > count) break;
      kept.add(set.name);
    }
  }
  const isGood = (set: SetInfo) => set.good !== false;
  const removable = candidates.filter((set) => !kept.has(set.name) && isGood(set)).reverse(); // oldest first
  const allowed = Math.max(0, newestFirst.filter(isGood).length - RETENTION.minimumSets);
  return removable.slice(0, allowed).map((set) => set.name);
}

/** Applies the plan to a backups directory: each removed set is deleted by its exact path. */
export async function applyRetention(backupsDir: string): Promise<string[]> {
  const sets = completeSets(backupsDir).map((set) => ({ ...set, good: lastVerify(set.dir)?.ok !== false }));
  const removed = retentionPlan(sets);
  for (const name of removed) {
    const set = sets.find((s) => s.name === name);
    if (set) await rm(set.dir, { recursive: true, force: true });
  }
  return removed;
}

function lastVerify(dir: string): { ok?: boolean } | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, VERIFY_FILE), "utf8"));
  } catch {
    return undefined;
  }
}
