import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { opsToken } from "@daon/api";
import { homePaths, parseDuration } from "@daon/chain";
import type { Deployment } from "../deployment.js";
import { type InstanceRecord, instancesDir } from "../commands/serve.js";

export type Status = "PASS" | "WARN" | "FAIL";

export interface CheckResult {
  status: Status;
  /** What was measured and why it is judged so; never a secret value. */
  reason: string;
  details?: Record<string, unknown>;
}

export interface PreflightOptions {
  strict?: boolean;
  quick?: boolean;
  smoke?: boolean;
  only?: string;
  skip?: string;
  expectChain?: string;
  publicHost?: string;
}

export interface Check {
  number: number;
  id: string;
  /** Seconds the check may take before it is judged FAIL for hanging. */
  timeoutSeconds?: number;
  run(context: PreflightContext): Promise<CheckResult>;
}

export const pass = (reason: string, details?: Record<string, unknown>): CheckResult => ({ status: "PASS", reason, details });
export const warn = (reason: string, details?: Record<string, unknown>): CheckResult => ({ status: "WARN", reason, details });
export const fail = (reason: string, details?: Record<string, unknown>): CheckResult => ({ status: "FAIL", reason, details });

export interface HttpAnswer {
  status: number;
  body: unknown;
  text: string;
  ms: number;
  headers: Headers;
}

/** A process with a live record under `<state>/run/instances/`. */
export function liveInstances(stateDir: string): InstanceRecord[] {
  const dir = instancesDir(stateDir);
  if (!existsSync(dir)) return [];
  const records: InstanceRecord[] = [];
  for (const name of readdirSync(dir)) {
    try {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as InstanceRecord;
      process.kill(record.pid, 0);
      records.push(record);
    } catch {
      // a record of a process that is gone (killed -9): not a live instance
    }
  }
  return records;
}

/**
 * What every check reads: the `.env` as written, the deployment's places, and memoised
 * answers from the running services (each asked once per run).
 */
export class PreflightContext {
  readonly #memo = new Map<string, Promise<unknown>>();

  constructor(
    readonly deployment: Deployment,
    readonly env: Record<string, string>,
    readonly options: PreflightOptions,
  ) {}

  /** Production unless the deployment is the embedded one (PGlite, one process, development). */
  get production(): boolean {
    return (
      this.env.NODE_ENV === "production" ||
      this.env.CHAIN_ID === "daon-mainnet-1" ||
      Boolean(this.env.DATABASE_URL) ||
      (this.env.DAON_SUPERVISOR ?? "process") !== "process"
    );
  }

  /** The project directory: where `.env` is, and where compose and npm run. */
  get projectDir(): string {
    return dirname(this.deployment.envFile);
  }

  get supervisor(): "process" | "systemd" | "compose" {
    return (this.env.DAON_SUPERVISOR as "process" | "systemd" | "compose") ?? "process";
  }

  get instances(): InstanceRecord[] {
    return liveInstances(this.deployment.stateDir);
  }

  /** `localhost:PORT` (the runbook's address; Caddy's listener in compose) and each live API instance. */
  get apiUrls(): string[] {
    const urls = this.instances.filter((i) => i.apiUrl).map((i) => i.apiUrl as string);
    const port = this.env.PORT ?? "3000";
    const local = `http://127.0.0.1:${port}`;
    return [...new Set([local, ...urls])];
  }

  get rpcUrl(): string {
    const fromInstance = this.instances.find((i) => i.rpcUrl)?.rpcUrl;
    return (fromInstance ?? this.env.CHAIN_RPC ?? "http://127.0.0.1:26657").replace(/\/$/, "");
  }

  get opsTokens(): string[] {
    return [this.env.API_KEY_SECRET, this.env.API_KEY_SECRET_PREVIOUS].filter((s): s is string => Boolean(s)).map(opsToken);
  }

  genesis(): { chain_id: string; genesis_time: string } | undefined {
    const path = homePaths(this.deployment.nodeHome).genesis;
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch {
      return undefined;
    }
  }

  /** The node's empty-block interval from its config.toml (CometBFT default 30 s). */
  emptyBlockIntervalMs(): number {
    try {
      const text = readFileSync(homePaths(this.deployment.nodeHome).config, "utf8");
      const match = /create_empty_blocks_interval\s*=\s*"([^"]+)"/.exec(text);
      return match ? parseDuration(match[1]) : 30_000;
    } catch {
      return 30_000;
    }
  }

  memo<T>(key: string, work: () => Promise<T>): Promise<T> {
    if (!this.#memo.has(key)) this.#memo.set(key, work());
    return this.#memo.get(key) as Promise<T>;
  }

  async http(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<HttpAnswer> {
    const started = performance.now();
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 5000) });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body, text, ms: Math.round(performance.now() - started), headers: response.headers };
  }

  /** `/health` of one API URL, or the error that kept it from answering. */
  health(url: string): Promise<HttpAnswer | Error> {
    return this.memo(`health ${url}`, () => this.http(`${url}/health`).catch((error: Error) => error));
  }

  /** The node's CometBFT `/status` result. */
  nodeStatus(): Promise<NodeStatus | Error> {
    return this.memo("status", async () => {
      try {
        const answer = await this.http(`${this.rpcUrl}/status`);
        const result = (answer.body as { result?: NodeStatus })?.result;
        if (!result) return new Error(`RPC /status answered ${answer.status}`);
        return result;
      } catch (error) {
        return error as Error;
      }
    });
  }

  /** `/internal/ops/config` of one API URL with the ops token of `.env`'s API_KEY_SECRET (or its predecessor). */
  opsConfig(url: string): Promise<HttpAnswer | Error> {
    return this.memo(`config ${url}`, async () => {
      let last: HttpAnswer | Error = new Error("no API_KEY_SECRET in .env: no ops token");
      for (const token of this.opsTokens) {
        try {
          last = await this.http(`${url}/internal/ops/config`, { headers: { authorization: `Bearer ${token}` } });
          if (last.status === 200) return last;
        } catch (error) {
          return error as Error;
        }
      }
      return last;
    });
  }
}

export interface NodeStatus {
  node_info: { network: string; version?: string };
  sync_info: { latest_block_height: string; latest_block_time: string; catching_up: boolean };
}

export function ageSeconds(iso: string | Date): number {
  return Math.round((Date.now() - new Date(iso).getTime()) / 1000);
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}
