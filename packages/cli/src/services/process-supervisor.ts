import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "@daon/chain";
import { type Deployment, privateDir } from "../deployment.js";
import { liveInstances } from "../preflight/context.js";
import type { ServiceController, ServiceState } from "./controller.js";

const DAON_BIN = fileURLToPath(new URL("../../../../bin/daon.mjs", import.meta.url));
/** Above the API's own shutdown budget (5 s draining + 25 s requests + batcher's last block). */
const STOP_TIMEOUT_MS = 90_000;

interface Part {
  name: string;
  args: string[];
}

/**
 * `DAON_SUPERVISOR=process`: the services as detached `daon` processes of this machine, with a
 * pid file under `<state>/run/` and their output in `<state>/logs/<name>.log`. Single topology
 * is one `daon up`; split is `daon node` plus `API_REPLICAS` × `daon api` on PORT, PORT+1, ….
 */
export class ProcessSupervisor implements ServiceController {
  readonly kind = "process";
  readonly #parts: Part[];

  constructor(
    private readonly deployment: Deployment,
    options: { topology: "single" | "split"; replicas: number; port: number },
  ) {
    const settings = ["--env-file", deployment.envFile];
    this.#parts =
      options.topology === "single"
        ? [{ name: "daon-up", args: [...settings, "up"] }]
        : [
            { name: "daon-node", args: [...settings, "node", "--home", deployment.nodeHome] },
            ...Array.from({ length: options.replicas }, (_, i) => ({
              name: `daon-api-${i + 1}`,
              args: [...settings, "api", "--port", String(options.port + i)],
            })),
          ];
  }

  get names(): string[] {
    return this.#parts.map((part) => part.name);
  }

  #pidFile(name: string): string {
    return join(this.deployment.stateDir, "run", `${name}.pid`);
  }

  #logFile(name: string): string {
    return join(this.deployment.stateDir, "logs", `${name}.log`);
  }

  #pidOf(name: string): number | undefined {
    const path = this.#pidFile(name);
    if (!existsSync(path)) return undefined;
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && isDaonProcess(pid) ? pid : undefined;
  }

  async start(): Promise<void> {
    await privateDir(join(this.deployment.stateDir, "run"));
    await privateDir(join(this.deployment.stateDir, "logs"));
    for (const part of this.#parts) {
      if (this.#pidOf(part.name) !== undefined) continue;
      const log = openSync(this.#logFile(part.name), "a", 0o600);
      try {
        const child = spawn(process.execPath, [DAON_BIN, ...part.args], {
          cwd: dirname(this.deployment.envFile),
          detached: true,
          stdio: ["ignore", log, log],
          env: process.env,
        });
        if (child.pid === undefined) throw new Error(`could not start ${part.name}`);
        await writeFileAtomic(this.#pidFile(part.name), `${child.pid}\n`);
        child.unref();
      } finally {
        closeSync(log);
      }
    }
  }

  /** SIGTERM to every part (APIs first, the node last) and to any other live instance of this deployment; waits for each to exit. */
  async stop(): Promise<void> {
    const stuck: string[] = [];
    const targets = new Map<number, string>();
    for (const part of [...this.#parts].reverse()) {
      const pid = this.#pidOf(part.name);
      if (pid !== undefined) targets.set(pid, part.name);
    }
    // Started by hand (`npm start`, `daon up`) rather than by this supervisor: stopped all the same.
    const order = { api: 0, up: 1, node: 2 };
    for (const instance of liveInstances(this.deployment.stateDir).sort((a, b) => order[a.kind] - order[b.kind])) {
      if (!targets.has(instance.pid) && isDaonProcess(instance.pid)) targets.set(instance.pid, `daon ${instance.kind}`);
    }
    for (const [pid, name] of targets) {
      if (!(await terminate(pid))) stuck.push(`${name} (pid ${pid})`);
    }
    for (const part of this.#parts) await rm(this.#pidFile(part.name), { force: true });
    if (stuck.length > 0) throw new Error(`did not stop within ${STOP_TIMEOUT_MS / 1000} s and was killed: ${stuck.join(", ")}`);
  }

  async status(): Promise<ServiceState[]> {
    return this.#parts.map((part) => {
      const pid = this.#pidOf(part.name);
      return { name: part.name, running: pid !== undefined, pid };
    });
  }

  async logTail(lines = 20): Promise<string> {
    const tails: string[] = [];
    for (const part of this.#parts) {
      const text = await readFile(this.#logFile(part.name), "utf8").catch(() => "");
      const last = text.trimEnd().split("\n").slice(-lines).join("\n");
      if (last) tails.push(`--- ${this.#logFile(part.name)} (last lines)\n${last}`);
    }
    return tails.join("\n");
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A live `daon` process (a recycled pid of something else is never signalled). */
function isDaonProcess(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("daon");
  } catch {
    return true; // no /proc: the pid file is all there is to go on
  }
}

/** SIGTERM, then waits for the exit; SIGKILL after the timeout. False when it had to be killed. */
async function terminate(pid: number): Promise<boolean> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return true;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}
