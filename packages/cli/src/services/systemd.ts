import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { ServiceController, ServiceState } from "./controller.js";

const run = promisify(execFile);

/**
 * `DAON_SUPERVISOR=systemd`: the units of `deploy/systemd/` through `systemctl` (single:
 * `daon.service`; split: `daon-node.service` and `daon-api@N.service`). The units own stop
 * timeouts and restarts; this only asks.
 */
export class SystemdServices implements ServiceController {
  readonly kind = "systemd";
  readonly names: string[];

  constructor(topology: "single" | "split", replicas: number) {
    this.names =
      topology === "single"
        ? ["daon.service"]
        : ["daon-node.service", ...Array.from({ length: replicas }, (_, i) => `daon-api@${i + 1}.service`)];
  }

  async start(): Promise<void> {
    await run("systemctl", ["start", ...this.names], { timeout: 120_000 });
  }

  async stop(): Promise<void> {
    // APIs first: the node stops last, after their batchers' last block.
    for (const unit of [...this.names].reverse()) await run("systemctl", ["stop", unit], { timeout: 120_000 });
  }

  async status(): Promise<ServiceState[]> {
    const states: ServiceState[] = [];
    for (const name of this.names) {
      const active = await run("systemctl", ["is-active", name]).then(
        ({ stdout }) => stdout.trim() === "active",
        () => false,
      );
      states.push({ name, running: active });
    }
    return states;
  }

  async logTail(lines = 20): Promise<string> {
    const args = ["--no-pager", "-n", String(lines), ...this.names.flatMap((name) => ["-u", name])];
    return run("journalctl", args).then(
      ({ stdout }) => stdout,
      () => "",
    );
  }
}
