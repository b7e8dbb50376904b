import { execFile } from "node:child_process";
import { dirname } from "node:path";
import { promisify } from "node:util";
import type { Deployment } from "../deployment.js";
import type { ServiceController, ServiceState } from "./controller.js";

const run = promisify(execFile);
const SERVICES = ["daon-blockchain", "daon-api"];

/**
 * `DAON_SUPERVISOR=compose`: the DAON services of the compose project in the project directory
 * (`COMPOSE_PROJECT_NAME` and `COMPOSE_FILE` come from `.env`). Only `stop` and `up -d` of
 * DAON's own services: never `down`, never volumes.
 */
export class ComposeServices implements ServiceController {
  readonly kind = "compose";
  readonly names = SERVICES;

  constructor(private readonly deployment: Deployment) {}

  #compose(args: string[], timeout = 180_000) {
    return run("docker", ["compose", ...args], { cwd: dirname(this.deployment.envFile), timeout, maxBuffer: 16 << 20 });
  }

  async start(): Promise<void> {
    await this.#compose(["up", "-d", ...SERVICES]);
  }

  async stop(): Promise<void> {
    await this.#compose(["stop", "daon-api"]);
    await this.#compose(["stop", "daon-blockchain"]);
  }

  async status(): Promise<ServiceState[]> {
    const running = await this.#compose(["ps", "--status", "running", "--services"], 30_000).then(
      ({ stdout }) => new Set(stdout.split("\n").map((line) => line.trim())),
      () => new Set<string>(),
    );
    return SERVICES.map((name) => ({ name, running: running.has(name) }));
  }

  async logTail(lines = 20): Promise<string> {
    return this.#compose(["logs", "--no-color", "--tail", String(lines), ...SERVICES], 30_000).then(
      ({ stdout }) => stdout,
      () => "",
    );
  }
}
