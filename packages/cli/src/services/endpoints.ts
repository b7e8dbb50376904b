import { existsSync, readFileSync } from "node:fs";
import { opsToken, TABLE_ROWS_HEADER } from "@daon/api";
import { homePaths, parseListen } from "@daon/chain";
import type { Deployment } from "../deployment.js";
import { liveInstances } from "../preflight/context.js";

export interface ApiHealth {
  status: string;
  chainId: string;
  height: number | null;
  maintenance?: boolean;
  checks?: { outbox?: { pending: number | null } };
}

export interface NodeStatus {
  chainId: string;
  height: number;
  appHash: string;
}

export interface MaintenanceAnswer {
  maintenance: boolean;
  outboxPending: number;
  indexedHeight: number;
  ledgerHeight: number;
}

/** An answer that says why a service could not be asked. */
export class ServiceUnreachable extends Error {}

const TIMEOUT_MS = 5000;

/**
 * The running services of a deployment as the CLI reaches them: the API (its `/health` and the
 * ops endpoints with the token derived from `.env`'s API_KEY_SECRET) and the node's RPC.
 */
export class ServiceEndpoints {
  constructor(
    private readonly deployment: Deployment,
    private readonly env: Record<string, string>,
  ) {}

  /** A live instance's own address, else `127.0.0.1:PORT` (the runbook's localhost:3000). */
  get apiUrl(): string {
    const instance = liveInstances(this.deployment.stateDir).find((i) => i.apiUrl);
    return (instance?.apiUrl ?? `http://127.0.0.1:${this.env.PORT ?? "3000"}`).replace(/\/$/, "");
  }

  /** A live instance's RPC, else the single topology's config.toml `rpc.laddr`, else CHAIN_RPC. */
  get rpcUrl(): string {
    const instance = liveInstances(this.deployment.stateDir).find((i) => i.rpcUrl);
    if (instance?.rpcUrl) return instance.rpcUrl.replace(/\/$/, "");
    const config = homePaths(this.deployment.nodeHome).config;
    if (this.env.DAON_TOPOLOGY !== "split" && existsSync(config)) {
      const laddr = /^\s*laddr\s*=\s*"([^"]+)"/m.exec(readFileSync(config, "utf8"))?.[1];
      if (laddr) {
        const { host, port } = parseListen(laddr);
        const reachable = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
        return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
      }
    }
    return (this.env.CHAIN_RPC ?? "http://127.0.0.1:26657").replace(/\/$/, "");
  }

  get hasOpsToken(): boolean {
    return Boolean(this.env.API_KEY_SECRET);
  }

  #opsHeaders(): Record<string, string> {
    if (!this.env.API_KEY_SECRET) throw new ServiceUnreachable("API_KEY_SECRET is not set in .env: the API's ops endpoints are off");
    return { authorization: `Bearer ${opsToken(this.env.API_KEY_SECRET)}` };
  }

  async #fetch(url: string, init: RequestInit = {}, timeoutMs = TIMEOUT_MS): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new ServiceUnreachable(`${url.replace(/\?.*/, "")} did not answer: ${(error as Error).message}`);
    }
  }

  /** `/health` with its HTTP status; undefined when the API does not answer. */
  async health(): Promise<{ httpStatus: number; body: ApiHealth } | undefined> {
    try {
      const response = await this.#fetch(`${this.apiUrl}/health`);
      return { httpStatus: response.status, body: (await response.json()) as ApiHealth };
    } catch {
      return undefined;
    }
  }

  /** The node's `/status`; undefined when it does not answer. */
  async nodeStatus(): Promise<NodeStatus | undefined> {
    try {
      const response = await this.#fetch(`${this.rpcUrl}/status`);
      const { result } = (await response.json()) as {
        result: { node_info: { network: string }; sync_info: { latest_block_height: string; latest_app_hash: string } };
      };
      return {
        chainId: result.node_info.network,
        height: Number(result.sync_info.latest_block_height),
        appHash: result.sync_info.latest_app_hash,
      };
    } catch {
      return undefined;
    }
  }

  /** The app hash carried by the header of block `height` (the state after `height - 1`). */
  async headerAppHash(height: number): Promise<string | undefined> {
    try {
      const response = await this.#fetch(`${this.rpcUrl}/block?height=${height}`);
      const body = (await response.json()) as { result?: { block: { header: { app_hash: string } } } };
      return body.result?.block.header.app_hash;
    } catch {
      return undefined;
    }
  }

  /** `/api/v1/stats`: what users see of the registrations. */
  async stats(): Promise<{ totalProtected: number; chainId: string } | undefined> {
    try {
      const response = await this.#fetch(`${this.apiUrl}/api/v1/stats`);
      if (response.status !== 200) return undefined;
      const { stats } = (await response.json()) as { stats: { totalProtected: number; chainId: string } };
      return stats;
    } catch {
      return undefined;
    }
  }

  async maintenance(change?: { enabled: boolean; reason?: string }): Promise<MaintenanceAnswer> {
    const response = await this.#fetch(`${this.apiUrl}/internal/ops/maintenance`, {
      method: change ? "POST" : "GET",
      headers: { ...this.#opsHeaders(), ...(change ? { "content-type": "application/json" } : {}) },
      body: change ? JSON.stringify(change) : undefined,
    });
    if (response.status !== 200) {
      throw new ServiceUnreachable(
        `${this.apiUrl}/internal/ops/maintenance answered ${response.status}${response.status === 404 ? " (is API_KEY_SECRET in .env the one the API runs with?)" : ""}`,
      );
    }
    return (await response.json()) as MaintenanceAnswer;
  }

  /** The running API's embedded database (`database.pglite.tar.gz`) with the row counts of the same moment. */
  async embeddedSnapshot(): Promise<{ archive: Buffer; rows: Record<string, number> }> {
    const response = await this.#fetch(`${this.apiUrl}/internal/ops/snapshot`, { headers: this.#opsHeaders() }, 600_000);
    if (response.status !== 200) throw new ServiceUnreachable(`${this.apiUrl}/internal/ops/snapshot answered ${response.status}`);
    const rows = JSON.parse(response.headers.get(TABLE_ROWS_HEADER) ?? "null") as Record<string, number> | null;
    if (!rows) throw new Error(`the snapshot came without its ${TABLE_ROWS_HEADER} header`);
    return { archive: Buffer.from(await response.arrayBuffer()), rows };
  }
}
