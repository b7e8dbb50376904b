import { existsSync, readFileSync, statfsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import pg from "pg";
import { type Deployment, deploymentPaths, readEnv, UsageError } from "../deployment.js";
import { newestBackup } from "../preflight/backup-checks.js";
import { formatBytes, PreflightContext } from "../preflight/context.js";

const STALE_BACKUP_MS = 26 * 3600 * 1000;

interface ServiceLine {
  name: string;
  url: string;
  up: boolean;
  status: string;
  version: string | null;
  uptimeSeconds: number | null;
}

export interface StatusReport {
  ok: boolean;
  exitCode: number;
  problems: string[];
  services: ServiceLine[];
  chain: {
    chainId: string | null;
    height: number | null;
    lastBlockAgeSeconds: number | null;
    meanBlockSeconds: number | null;
    mempool: number | null;
    stalled: boolean;
  };
  outbox: { pending: number | null; oldestSeconds: number | null };
  webhooks: { backlog: number | null };
  database: { engine: string; connections: number | null; maxConnections: number | null; poolMax: number };
  redis: string;
  backup: { name: string; ageHours: number; verified: boolean | null; offsite: boolean | null } | null;
  disk: { freeBytes: number; freePercent: number };
}

interface Health {
  status: string;
  version?: string;
  uptime?: number;
  checks?: {
    database?: { engine?: string };
    redis?: { status: string };
    outbox?: { pending: number | null; oldestPendingSeconds: number | null };
    webhooks?: { backlog?: number };
  };
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** One look at the whole deployment (ops.md §10). */
export async function collectStatus(deployment: Deployment): Promise<StatusReport> {
  if (!existsSync(deployment.envFile)) throw new UsageError(`cannot read ${deployment.envFile}: no such file`);
  const env = readEnv(deployment.envFile);
  const context = new PreflightContext(deployment, env, {});
  const problems: string[] = [];

  const services: ServiceLine[] = [];
  let firstHealth: Health | undefined;
  for (const url of context.apiUrls) {
    const answer = await context.health(url);
    if (answer instanceof Error) {
      services.push({
        name: "api",
        url,
        up: false,
        status: `unreachable (${answer.message.slice(0, 40)})`,
        version: null,
        uptimeSeconds: null,
      });
      continue;
    }
    const health = answer.body as Health;
    firstHealth ??= health;
    const up = answer.status === 200;
    services.push({
      name: "api",
      url,
      up,
      status: health?.status ?? String(answer.status),
      version: health?.version ?? null,
      uptimeSeconds: health?.uptime ?? null,
    });
  }
  for (const line of services.filter((s) => !s.up)) problems.push(`API ${line.url} ${line.status}`);

  const status = await context.nodeStatus();
  const interval = context.emptyBlockIntervalMs() / 1000;
  const chain: StatusReport["chain"] = {
    chainId: null,
    height: null,
    lastBlockAgeSeconds: null,
    meanBlockSeconds: null,
    mempool: null,
    stalled: false,
  };
  const nodeRecord = context.instances.find((i) => i.kind === "node" || i.kind === "up");
  if (status instanceof Error) {
    services.push({ name: "node", url: context.rpcUrl, up: false, status: "unreachable", version: null, uptimeSeconds: null });
    problems.push(`ledger node ${context.rpcUrl} unreachable`);
  } else {
    chain.chainId = status.node_info.network;
    chain.height = Number(status.sync_info.latest_block_height);
    chain.lastBlockAgeSeconds = Math.round((Date.now() - new Date(status.sync_info.latest_block_time).getTime()) / 1000);
    chain.stalled = chain.lastBlockAgeSeconds > interval + 5;
    if (chain.stalled) problems.push(`blocks stalled: last block ${chain.lastBlockAgeSeconds} s ago (interval ${interval} s)`);
    services.push({
      name: "node",
      url: context.rpcUrl,
      up: !status.sync_info.catching_up,
      status: status.sync_info.catching_up ? "catching up" : "running",
      version: status.node_info.version ?? null,
      uptimeSeconds: nodeRecord ? Math.round((Date.now() - Date.parse(nodeRecord.startedAt)) / 1000) : null,
    });
    const min = Math.max(1, chain.height - 19);
    const blocks = await context.http(`${context.rpcUrl}/blockchain?minHeight=${min}&maxHeight=${chain.height}`).catch(() => undefined);
    const times = ((blocks?.body as { result?: { block_metas?: { header: { time: string } }[] } })?.result?.block_metas ?? [])
      .map((m) => Date.parse(m.header.time))
      .sort((a, b) => a - b);
    if (times.length > 1) chain.meanBlockSeconds = Math.round(((times[times.length - 1] - times[0]) / (times.length - 1) / 1000) * 10) / 10;
    const mempool = await context.http(`${context.rpcUrl}/num_unconfirmed_txs`).catch(() => undefined);
    const count = (mempool?.body as { result?: { n_txs?: string } })?.result?.n_txs;
    chain.mempool = count === undefined ? null : Number(count);
  }
  if (env.CHAIN_ID && chain.chainId && env.CHAIN_ID !== chain.chainId)
    problems.push(`.env says ${env.CHAIN_ID}, the node ${chain.chainId}`);

  const database: StatusReport["database"] = {
    engine: firstHealth?.checks?.database?.engine ?? (env.DATABASE_URL ? "postgresql" : "pglite"),
    connections: null,
    maxConnections: null,
    poolMax: Number(env.DB_POOL_MAX ?? 20),
  };
  if (env.DATABASE_URL) {
    const client = new pg.Client({ connectionString: env.DATABASE_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      database.connections = Number((await client.query("select count(*) as count from pg_stat_activity")).rows[0].count);
      database.maxConnections = Number((await client.query("show max_connections")).rows[0].max_connections);
    } catch {
      problems.push("database unreachable");
    } finally {
      await client.end().catch(() => {});
    }
  }
  const redis = env.REDIS_URL ? (firstHealth?.checks?.redis?.status ?? "unknown") : "not used (embedded)";
  if (env.REDIS_URL && redis !== "up") problems.push(`redis ${redis}`);

  const newest = newestBackup(deployment.stateDir);
  let backup: StatusReport["backup"] = null;
  if (newest) {
    const verify = readJson(join(newest.dir, "verify.json"));
    const offsite = readJson(join(newest.dir, "offsite.json"));
    const good = (r: Record<string, unknown> | undefined) =>
      r ? r.ok === true || ["ok", "pass", "passed"].includes(String(r.result ?? r.status)) : null;
    backup = {
      name: newest.name,
      ageHours: Math.round(((Date.now() - newest.time.getTime()) / 3_600_000) * 10) / 10,
      verified: good(verify),
      offsite: good(offsite),
    };
    if (Date.now() - newest.time.getTime() > STALE_BACKUP_MS) problems.push(`newest backup ${backup.ageHours} h old`);
  } else problems.push("no backup yet");

  const fs = statfsSync(existsSync(deployment.stateDir) ? deployment.stateDir : context.projectDir);
  const disk = { freeBytes: fs.bavail * fs.bsize, freePercent: Math.round((fs.bavail / fs.blocks) * 100) };
  return {
    ok: problems.length === 0,
    exitCode: problems.length === 0 ? 0 : 1,
    problems,
    services,
    chain,
    outbox: {
      pending: firstHealth?.checks?.outbox?.pending ?? null,
      oldestSeconds: firstHealth?.checks?.outbox?.oldestPendingSeconds ?? null,
    },
    webhooks: { backlog: firstHealth?.checks?.webhooks?.backlog ?? null },
    database,
    redis,
    backup,
    disk,
  };
}

const show = (value: unknown, unit = "") => (value === null || value === undefined ? "n/a" : `${value}${unit}`);

export function formatStatus(report: StatusReport): string {
  const lines = [
    "SERVICES",
    ...report.services.map(
      (s) =>
        `  ${s.up ? "up  " : "DOWN"} ${s.name.padEnd(5)} ${s.url.padEnd(28)} ${s.status}${s.version ? `, v${s.version}` : ""}${s.uptimeSeconds !== null ? `, up ${s.uptimeSeconds} s` : ""}`,
    ),
    "LEDGER",
    `  chain ${show(report.chain.chainId)}, height ${show(report.chain.height)}, last block ${show(report.chain.lastBlockAgeSeconds, " s")} ago${report.chain.stalled ? " (STALLED)" : ""}, mean block time ${show(report.chain.meanBlockSeconds, " s")}, mempool ${show(report.chain.mempool)}`,
    "WORK",
    `  outbox ${show(report.outbox.pending)} pending, oldest ${show(report.outbox.oldestSeconds, " s")}; webhook backlog ${show(report.webhooks.backlog)}`,
    "STORES",
    `  database ${report.database.engine}: ${report.database.connections === null ? "connections n/a" : `${report.database.connections}/${report.database.maxConnections} connections`}, pool max ${report.database.poolMax}; redis ${report.redis}`,
    "BACKUP AND DISK",
    `  ${report.backup ? `last backup ${report.backup.name}, ${report.backup.ageHours} h ago, verified ${show(report.backup.verified)}, off-site ${show(report.backup.offsite)}` : "no backup"}; disk ${formatBytes(report.disk.freeBytes)} free (${report.disk.freePercent} %)`,
    report.ok ? "OK" : `PROBLEMS: ${report.problems.join("; ")}`,
  ];
  return lines.join("\n");
}

/** Registers `daon status` (ops.md §10). */
export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("one screen: services, ledger, outbox, stores, backup, disk; exit 1 if anything is down, stalled or stale")
    .option("--watch [seconds]", "refresh every few seconds (default 5) until interrupted")
    .action(async (options) => {
      const globals = program.opts();
      const deployment = deploymentPaths({ envFile: globals.envFile });
      const once = async () => {
        const report = await collectStatus(deployment);
        const text = globals.json ? JSON.stringify({ command: "status", at: new Date().toISOString(), ...report }) : formatStatus(report);
        // On a terminal each refresh replaces the screen; elsewhere one block per refresh, no escape codes.
        if (options.watch && process.stdout.isTTY && !globals.json) process.stdout.write("\x1b[2J\x1b[H");
        process.stdout.write(`${text}\n`);
        return report.exitCode;
      };
      if (!options.watch) {
        process.exitCode = await once();
        return;
      }
      const seconds = Number(options.watch === true ? 5 : options.watch);
      if (!(seconds > 0)) throw new UsageError(`--watch takes seconds > 0, got ${options.watch}`);
      let stop = false;
      process.once("SIGINT", () => {
        stop = true;
      });
      process.once("SIGTERM", () => {
        stop = true;
      });
      while (!stop) {
        process.exitCode = await once();
        for (let waited = 0; waited < seconds * 10 && !stop; waited++) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
}
