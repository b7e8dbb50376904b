import { readFileSync } from "node:fs";

/** Jiffies (1/100 s) from /proc/stat: all CPUs together. Undefined where /proc is missing. */
export interface CpuSnapshot {
  busy: number;
  total: number;
  self: number;
  atMs: number;
}

export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = user + nice + system + irq + softirq + steal;
    const usage = process.cpuUsage();
    return { busy, total: busy + idle + iowait, self: (usage.user + usage.system) / 10_000, atMs: performance.now() };
  } catch {
    return undefined;
  }
}

/**
 * CPU used between two snapshots, in cores: by the whole machine, by this process (the bench
 * client, worker threads included), and by everything else (the node child is reported apart).
 */
export function cpuBetween(from: CpuSnapshot | undefined, to: CpuSnapshot | undefined): { machine: number; bench: number } | undefined {
  if (!from || !to) return undefined;
  const seconds = (to.atMs - from.atMs) / 1000;
  if (seconds <= 0) return undefined;
  return { machine: (to.busy - from.busy) / 100 / seconds, bench: (to.self - from.self) / 100 / seconds };
}
