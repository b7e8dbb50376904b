import type { Deployment } from "../deployment.js";
import { ComposeServices } from "./compose.js";
import { ProcessSupervisor } from "./process-supervisor.js";
import { SystemdServices } from "./systemd.js";

export type SupervisorKind = "process" | "systemd" | "compose";

/** One running part of the deployment, as its supervisor sees it. */
export interface ServiceState {
  name: string;
  running: boolean;
  pid?: number;
}

/**
 * Starts and stops the DAON services of a deployment (ops.md §0): one interface, an adapter per
 * `DAON_SUPERVISOR`. `stop` returns once every part has exited (the node last, after its commit).
 */
export interface ServiceController {
  readonly kind: SupervisorKind;
  /** The parts it starts and stops, by name, for plans and messages. */
  readonly names: string[];
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Promise<ServiceState[]>;
  /** The last lines a part logged, to show why it did not come up. */
  logTail(lines?: number): Promise<string>;
}

export function serviceController(deployment: Deployment, env: Record<string, string>): ServiceController {
  const kind = (env.DAON_SUPERVISOR ?? "process") as SupervisorKind;
  const topology = env.DAON_TOPOLOGY === "split" ? "split" : "single";
  const replicas = Math.max(1, Number(env.API_REPLICAS ?? 2) || 1);
  if (kind === "systemd") return new SystemdServices(topology, replicas);
  if (kind === "compose") return new ComposeServices(deployment);
  return new ProcessSupervisor(deployment, { topology, replicas, port: Number(env.PORT ?? 3000) || 3000 });
}

/** True when any part runs. */
export async function anyRunning(controller: ServiceController): Promise<boolean> {
  return (await controller.status()).some((state) => state.running);
}
