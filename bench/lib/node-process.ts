import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { ownChild } from "./cleanup.js";
import { JsonRpcHttp } from "./rpc.js";
import { sleep } from "./stats.js";

export interface NodeProcess {
  url: string;
  pid: number;
  /** User+system CPU seconds the child has used so far (Linux /proc), or undefined elsewhere. */
  cpuSeconds(): number | undefined;
  /** SIGTERM, then waits for a clean exit (which is when --cpu-prof writes its profile); SIGKILL after 20 s. */
  stop(): Promise<void>;
  stderrTail(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs `daon node` in its own process (own event loop, own core when one is free):
 * `node [--cpu-prof …] --import tsx packages/cli/src/main.ts node --home H --rpc-laddr …`.
 */
export async function startNodeProcess(options: { repoRoot: string; home: string; cpuProfDir?: string }): Promise<NodeProcess> {
  const port = await freePort();
  const flags: string[] = [];
  if (options.cpuProfDir) {
    await mkdir(options.cpuProfDir, { recursive: true });
    flags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  }
  const args = [
    ...flags,
    "--import",
    "tsx",
    "packages/cli/src/main.ts",
    "node",
    "--home",
    options.home,
    "--rpc-laddr",
    `tcp://127.0.0.1:${port}`,
  ];
  const child = spawn(process.execPath, args, { cwd: options.repoRoot, stdio: ["ignore", "ignore", "pipe"] });
  ownChild(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the node process");
  const node: NodeProcess = {
    url,
    pid,
    cpuSeconds: () => processCpuSeconds(pid),
    stderrTail: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killed = await Promise.race([exited.then(() => false), sleep(20_000).then(() => true)]);
      if (killed) {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
  await waitReady(child, url, () => stderr);
  return node;
}

async function waitReady(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  const rpc = new JsonRpcHttp(url, 1);
  const deadline = Date.now() + 60_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`node exited during start-up:\n${stderr()}`);
      try {
        const status = await rpc.call<{ sync_info: { latest_block_height: string } }>("status", {}, 2000);
        if (Number(status.sync_info.latest_block_height) >= 1) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`node at ${url} not ready after 60 s:\n${stderr()}`);
  } finally {
    rpc.close();
  }
}

/** utime + stime from /proc/PID/stat, in seconds (clock ticks of 1/100 s on Linux). */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
