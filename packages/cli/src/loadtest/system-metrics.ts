import { createWriteStream, type WriteStream } from "node:fs";
import { readdir, readFile, readlink } from "node:fs/promises";
import { basename } from "node:path";
import { loadavg, totalmem, freemem } from "node:os";

export const CSV_HEADER = "timestamp,scope,name,cpu_percent,rss_mb,mem_percent,load1,load5,load15,open_connections";
/** Kernel clock ticks per second for /proc/<pid>/stat times: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

export interface Sample {
  timestamp: string;
  scope: "host" | "process";
  name: string;
  cpuPercent: number | null;
  rssMb: number;
  memPercent: number;
  load?: [number, number, number];
  openConnections: number | null;
}

export interface ProcessPeak {
  scope: "host" | "process";
  name: string;
  cpuPercent: number | null;
  rssMb: number;
}

/** Which processes are DAON's: listening on the API or ledger RPC port, or running `daon up|api|node`. */
export interface WatchedPorts {
  api?: number;
  node?: number;
}

interface CpuReading {
  at: number;
  busy: number;
  total: number;
  processes: Map<number, number>;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

async function read(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** TCP sockets by inode: those listening (with their port) and those connected. */
async function tcpSockets(): Promise<{ listening: Map<string, number>; established: Set<string> }> {
  const listening = new Map<string, number>();
  const established = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await read(file);
    for (const line of text?.split("\n").slice(1) ?? []) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [, local, , state] = fields;
      const inode = fields[9];
      if (state === "0A") listening.set(inode, Number.parseInt(local.split(":").at(-1) ?? "0", 16));
      else if (state === "01") established.add(inode);
    }
  }
  return { listening, established };
}

/** The role a command line names: `daon up|api|node` (also through bin/daon.mjs). */
function roleOfCommand(argv: string[]): string | undefined {
  const at = argv.findIndex((arg) => /^daon(\.mjs)?$/.test(basename(arg)));
  if (at === -1) return undefined;
  const command = argv.slice(at + 1).find((arg) => !arg.startsWith("-"));
  if (command === "up") return "api+node";
  if (command === "api" || command === "node") return command;
  return undefined;
}

/**
 * Samples the host and each DAON process from /proc every 5 s into system-metrics.csv
 * (ops.md §4): CPU %, RSS, memory %, load (host) and open TCP connections.
 */
export class SystemMetrics {
  readonly #out: WriteStream;
  #previous: CpuReading | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<unknown> = Promise.resolve();
  readonly samples: Sample[] = [];

  constructor(
    file: string,
    private readonly ports: WatchedPorts,
    private readonly intervalMs = 5000,
  ) {
    this.#out = createWriteStream(file, { mode: 0o600 });
    this.#out.write(`${CSV_HEADER}\n`);
  }

  async start(): Promise<void> {
    this.#previous = await this.#cpuReading(await this.#processes());
    this.#timer = setInterval(() => {
      this.sample().catch(() => {});
    }, this.intervalMs).unref();
  }

  /** Takes one sample now (also between the 5 s ticks, e.g. after recovery); rows go to the CSV. */
  sample(): Promise<Sample[]> {
    const next = this.#sampling.then(() => this.#sample());
    this.#sampling = next.catch(() => {});
    return next;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sampling;
    await new Promise<void>((resolve) => this.#out.end(resolve));
  }

  /** Highest CPU and RSS of each host/process between two times. */
  peaks(from: number, to: number): ProcessPeak[] {
    const peaks = new Map<string, ProcessPeak>();
    for (const sample of this.samples) {
      const at = Date.parse(sample.timestamp);
      if (at < from || at > to) continue;
      const key = `${sample.scope}/${sample.name}`;
      const peak = peaks.get(key) ?? { scope: sample.scope, name: sample.name, cpuPercent: null, rssMb: 0 };
      if (sample.cpuPercent !== null) peak.cpuPercent = Math.max(peak.cpuPercent ?? 0, sample.cpuPercent);
      peak.rssMb = Math.max(peak.rssMb, sample.rssMb);
      peaks.set(key, peak);
    }
    return [...peaks.values()];
  }

  /** DAON's processes now, by pid: a name for the CSV and the inodes of their sockets. */
  async #processes(): Promise<Map<number, { name: string; sockets: Set<string> }>> {
    const found = new Map<number, { name: string; sockets: Set<string> }>();
    const entries = await readdir("/proc").catch(() => [] as string[]);
    const { listening } = await tcpSockets();
    const portRole = new Map<number, string>();
    if (this.ports.api) portRole.set(this.ports.api, "api");
    if (this.ports.node) portRole.set(this.ports.node, "node");
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === process.pid) continue;
      const cmdline = await read(`/proc/${pid}/cmdline`);
      if (!cmdline) continue;
      const roles = new Set<string>();
      const fromCommand = roleOfCommand(cmdline.split("\0").filter(Boolean));
      if (fromCommand) for (const role of fromCommand.split("+")) roles.add(role);
      const sockets = new Set<string>();
      for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
        const inode = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ""))?.[1];
        if (!inode) continue;
        sockets.add(inode);
        const port = listening.get(inode);
        const role = port === undefined ? undefined : portRole.get(port);
        if (role) roles.add(role);
      }
      if (roles.size === 0) continue;
      // The program's own name too: on a proxied deployment the API port may be Caddy's.
      const program = ((await read(`/proc/${pid}/comm`)) ?? "process").trim().replace(/[^A-Za-z0-9._-]/g, "_");
      found.set(pid, { name: `${program}:${[...roles].sort().join("+")}[${pid}]`, sockets });
    }
    return found;
  }

  async #cpuReading(processes: Map<number, unknown>): Promise<CpuReading> {
    const stat = (await read("/proc/stat"))?.split("\n")[0].trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = stat.reduce((sum, n) => sum + n, 0);
    const idle = (stat[3] ?? 0) + (stat[4] ?? 0);
    const ticks = new Map<number, number>();
    for (const pid of processes.keys()) {
      const text = await read(`/proc/${pid}/stat`);
      if (!text) continue;
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    }
    return { at: Date.now(), busy: total - idle, total, processes: ticks };
  }

  async #sample(): Promise<Sample[]> {
    const processes = await this.#processes();
    const reading = await this.#cpuReading(processes);
    const previous = this.#previous ?? reading;
    this.#previous = reading;
    const timestamp = new Date(reading.at).toISOString();
    const meminfo = await read("/proc/meminfo");
    const memKb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(meminfo ?? "")?.[1] ?? Number.NaN);
    const totalMb = Number.isFinite(memKb("MemTotal")) ? memKb("MemTotal") / 1024 : totalmem() / 1048576;
    const availableMb = Number.isFinite(memKb("MemAvailable")) ? memKb("MemAvailable") / 1024 : freemem() / 1048576;
    const { established } = await tcpSockets();
    const loads = (await read("/proc/loadavg"))?.split(" ").slice(0, 3).map(Number) ?? loadavg();
    const totalDelta = reading.total - previous.total;
    const samples: Sample[] = [
      {
        timestamp,
        scope: "host",
        name: "host",
        cpuPercent: totalDelta > 0 ? round1(((reading.busy - previous.busy) / totalDelta) * 100) : null,
        rssMb: round1(totalMb - availableMb),
        memPercent: round1(((totalMb - availableMb) / totalMb) * 100),
        load: [loads[0], loads[1], loads[2]],
        openConnections: established.size,
      },
    ];
    const seconds = (reading.at - previous.at) / 1000;
    for (const [pid, { name, sockets }] of processes) {
      const status = await read(`/proc/${pid}/status`);
      if (!status) continue;
      const rssMb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
      const now = reading.processes.get(pid);
      const before = previous.processes.get(pid);
      const connections = [...sockets].filter((inode) => established.has(inode)).length;
      samples.push({
        timestamp,
        scope: "process",
        name,
        cpuPercent:
          now !== undefined && before !== undefined && seconds > 0 ? round1(((now - before) / CLOCK_TICKS / seconds) * 100) : null,
        rssMb: round1(rssMb),
        memPercent: round1((rssMb / totalMb) * 100),
        openConnections: connections,
      });
    }
    for (const sample of samples) {
      this.samples.push(sample);
      const cell = (value: number | null | undefined) => (value === null || value === undefined ? "" : String(value));
      this.#out.write(
        `${[
          sample.timestamp,
          sample.scope,
          sample.name,
          cell(sample.cpuPercent),
          cell(sample.rssMb),
          cell(sample.memPercent),
          cell(sample.load?.[0]),
          cell(sample.load?.[1]),
          cell(sample.load?.[2]),
          cell(sample.openConnections),
        ].join(",")}\n`,
      );
    }
    return samples;
  }
}
