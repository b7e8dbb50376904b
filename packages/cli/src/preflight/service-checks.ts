import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pendingMigrations } from "@daon/api";
import { Redis } from "ioredis";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { maskUrl } from "../commands/init.js";
import { ageSeconds, type Check, type CheckResult, fail, type PreflightContext, pass, warn } from "./context.js";

const run = promisify(execFile);
const HOUR_MS = 3600 * 1000;

interface HealthBody {
  status: string;
  uptime?: number;
  chainId?: string;
  checks?: {
    database?: { status: string; engine?: string };
    outbox?: { status: string; pending: number | null; oldestPendingSeconds: number | null };
    webhooks?: {
      status: string;
      backlog?: number;
      deadLetters24h?: number;
      oldestDueSeconds?: number;
      failedLastHour?: number;
      attemptsLastHour?: number;
    };
  };
}

/** What the supervisor says about each service: running, and since when. */
async function supervisedServices(context: PreflightContext): Promise<{ name: string; up: boolean; since?: Date; note?: string }[]> {
  const { env } = context;
  if (context.supervisor === "compose") {
    const { stdout } = await run("docker", ["compose", "ps", "--all", "--format", "json"], { timeout: 20_000, cwd: context.projectDir });
    const rows = stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .flatMap((line) => (line.startsWith("[") ? JSON.parse(line) : [JSON.parse(line)])) as {
      Service: string;
      State: string;
      Health?: string;
      Status?: string;
    }[];
    return rows.map((row) => ({
      name: row.Service,
      up: row.State === "running" && row.Health !== "unhealthy",
      note: `${row.State}${row.Health ? `/${row.Health}` : ""}`,
    }));
  }
  if (context.supervisor === "systemd") {
    const units =
      env.DAON_TOPOLOGY === "split"
        ? ["daon-node.service", ...Array.from({ length: Number(env.API_REPLICAS ?? 2) }, (_, i) => `daon-api@${i + 1}.service`)]
        : ["daon.service"];
    const services = [];
    for (const unit of units) {
      const { stdout } = await run("systemctl", ["show", unit, "--property=ActiveState,ActiveEnterTimestamp"], { timeout: 10_000 }).catch(
        () => ({ stdout: "" }),
      );
      const state = /ActiveState=(\w+)/.exec(stdout)?.[1] ?? "unknown";
      const since = /ActiveEnterTimestamp=(.+)/.exec(stdout)?.[1];
      services.push({ name: unit, up: state === "active", since: since ? new Date(since) : undefined, note: state });
    }
    return services;
  }
  const instances = context.instances;
  const wanted =
    env.DAON_TOPOLOGY === "split"
      ? [
          { kind: "node", count: 1 },
          { kind: "api", count: Number(env.API_REPLICAS ?? 2) },
        ]
      : [{ kind: "up", count: 1 }];
  const services = [];
  for (const { kind, count } of wanted) {
    const running = instances.filter((i) => i.kind === kind);
    for (const instance of running) services.push({ name: `${kind} pid ${instance.pid}`, up: true, since: new Date(instance.startedAt) });
    for (let missing = running.length; missing < count; missing++)
      services.push({ name: `daon ${kind} #${missing + 1}`, up: false, note: "not running" });
  }
  return services;
}

async function withPg<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export const serviceChecks: Check[] = [
  {
    number: 2,
    id: "services.up",
    async run(context) {
      let services: Awaited<ReturnType<typeof supervisedServices>>;
      try {
        services = await supervisedServices(context);
      } catch (error) {
        return fail(`cannot ask the ${context.supervisor} supervisor: ${(error as Error).message.split("\n")[0].slice(0, 120)}`);
      }
      const down = services.filter((s) => !s.up);
      if (services.length === 0) return fail(`no DAON service found under ${context.supervisor}`);
      if (down.length > 0) return fail(`down: ${down.map((s) => `${s.name} (${s.note ?? "down"})`).join(", ")}`);
      const recent = services.filter((s) => s.since && Date.now() - s.since.getTime() < HOUR_MS);
      const listing = services.map((s) => `${s.name}${s.note ? ` ${s.note}` : ""}`).join(", ");
      return recent.length > 0
        ? warn(
            `${services.length} up (${listing}); restarted within 1 h: ${recent.map((s) => `${s.name} ${ageSeconds(s.since as Date)} s ago`).join(", ")}`,
          )
        : pass(`${services.length} up under ${context.supervisor}: ${listing}`);
    },
  },
  {
    number: 3,
    id: "api.health",
    async run(context) {
      const failures: string[] = [];
      const warnings: string[] = [];
      const fine: string[] = [];
      for (const url of context.apiUrls) {
        const answer = await context.health(url);
        if (answer instanceof Error) {
          failures.push(`${url}/health: ${answer.message.slice(0, 80)}`);
          continue;
        }
        const status = (answer.body as HealthBody | undefined)?.status ?? "?";
        const line = `${url} ${answer.status} ${status} in ${answer.ms} ms`;
        if (answer.status !== 200 || answer.ms >= 2000) failures.push(line);
        else if (status !== "healthy" || answer.ms >= 1000) warnings.push(line);
        else fine.push(line);
      }
      if (failures.length > 0) return fail([...failures, ...warnings].join("; "));
      if (warnings.length > 0) return warn([...warnings, ...fine].join("; "));
      return pass(fine.join("; "));
    },
  },
  {
    number: 4,
    id: "node.status",
    async run(context) {
      const status = await context.nodeStatus();
      if (status instanceof Error) return fail(`RPC ${context.rpcUrl}/status failed: ${status.message.slice(0, 100)}`);
      const { latest_block_height: height, catching_up: catchingUp } = status.sync_info;
      if (catchingUp) return fail(`catching_up=true at height ${height}`);
      return pass(`height ${height}, catching_up=false, network ${status.node_info.network}`);
    },
  },
  {
    number: 16,
    id: "db.health",
    async run(context) {
      const { env } = context;
      if (!env.DATABASE_URL) {
        // Embedded: PGlite lives inside the running process, so only the API can say how it is.
        const url = context.apiUrls[0];
        const health = await context.health(url);
        if (health instanceof Error) return fail(`embedded database: the API at ${url} does not answer (${health.message.slice(0, 60)})`);
        const database = (health.body as HealthBody).checks?.database;
        return database?.status === "up"
          ? pass(`embedded PGlite up (via ${url}/health)`)
          : fail(`embedded database ${database?.status ?? "unknown"}`);
      }
      try {
        return await withPg(env.DATABASE_URL, async (client) => {
          const max = Number((await client.query("show max_connections")).rows[0].max_connections);
          const used = Number((await client.query("select count(*) as count from pg_stat_activity")).rows[0].count);
          const db = new Kysely<unknown>({
            dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 }) }),
          });
          const pending = await pendingMigrations(db).finally(() => db.destroy());
          const poolMax = Number(env.DB_POOL_MAX ?? 20);
          const instances = env.DAON_TOPOLOGY === "split" ? Number(env.API_REPLICAS ?? 2) : 1;
          const pools = poolMax * instances;
          const measured = `${used}/${max} connections (${Math.round((used / max) * 100)} %), pools ${instances}×${poolMax}=${pools}`;
          const failures: string[] = [];
          if (pending.length > 0) failures.push(`migrations pending: ${pending.join(", ")}`);
          if (used > 0.9 * max) failures.push(`over 90 % of max_connections in use`);
          if (pools > max) failures.push(`the pools may open ${pools} connections, max_connections is ${max}`);
          if (failures.length > 0) return fail(`${measured}; ${failures.join("; ")}`);
          const warnings: string[] = [];
          if (used > 0.75 * max) warnings.push("over 75 % of max_connections in use");
          if (poolMax < 10) warnings.push(`DB_POOL_MAX=${poolMax} is under 10`);
          return warnings.length > 0
            ? warn(`${measured}; ${warnings.join("; ")}`)
            : pass(`${maskUrl(env.DATABASE_URL)}: ${measured}, no migration pending`);
        });
      } catch (error) {
        return fail(`${maskUrl(env.DATABASE_URL)} unreachable: ${(error as Error).message.slice(0, 100)}`);
      }
    },
  },
  {
    number: 17,
    id: "ledger.blocks",
    async run(context) {
      const status = await context.nodeStatus();
      if (status instanceof Error) return fail(`no block information: RPC failed (${status.message.slice(0, 80)})`);
      const interval = context.emptyBlockIntervalMs() / 1000;
      const height = Number(status.sync_info.latest_block_height);
      const age = (Date.now() - new Date(status.sync_info.latest_block_time).getTime()) / 1000;
      const measured = `height ${height}, last block ${Math.round(age)} s ago (empty-block interval ${interval} s)`;
      if (age > 3 * interval) return fail(`${measured}: older than 3 × the interval`);
      if (age > interval + 5) return fail(`${measured}: the height has not moved for over the interval + 5 s`);
      // Longest recent gap: blocks that came late even though the chain is moving now.
      const gap = await longestGap(context, height);
      if (gap && gap.seconds > interval + 10) return warn(`${measured}; a gap of ${gap.seconds} s before height ${gap.height}`);
      return pass(measured);
    },
  },
  {
    number: 18,
    id: "outbox.backlog",
    async run(context) {
      const before = await outboxOf(context);
      if (before instanceof Error) return fail(before.message);
      const measured = `${before.pending} pending, oldest ${before.oldest} s`;
      if (before.oldest > 300) return fail(`${measured}: older than 5 min`);
      if (before.pending > 0 && before.oldest > 60) {
        // Growing while blocks advance: the batcher is not keeping up (or not submitting at all).
        const heightBefore = await heightNow(context);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const after = await outboxOf(context, true);
        const heightAfter = await heightNow(context);
        if (!(after instanceof Error) && after.pending > before.pending && heightAfter > heightBefore)
          return fail(`${measured}, growing to ${after.pending} while blocks advance (${heightBefore}→${heightAfter})`);
        return warn(`${measured}: older than 60 s`);
      }
      return pass(measured);
    },
  },
  {
    number: 19,
    id: "webhooks.delivery",
    async run(context) {
      const health = await context.health(context.apiUrls[0]);
      if (health instanceof Error) return fail(`the API does not answer: ${health.message.slice(0, 80)}`);
      const webhooks = (health.body as HealthBody).checks?.webhooks;
      if (!webhooks) return warn("the API's /health reports nothing about webhooks");
      if (webhooks.status === "not_configured") return pass("no webhooks configured");
      const measured = `backlog ${webhooks.backlog ?? 0}, oldest due ${webhooks.oldestDueSeconds ?? 0} s, dead letters 24 h ${webhooks.deadLetters24h ?? 0}`;
      if ((webhooks.oldestDueSeconds ?? 0) > 900) return fail(`${measured}: a delivery is overdue by over 15 min`);
      const attempts = webhooks.attemptsLastHour ?? 0;
      const failed = webhooks.failedLastHour ?? 0;
      if (attempts >= 10 && failed / attempts > 0.5) return fail(`${measured}; ${failed}/${attempts} attempts failed in 1 h`);
      if ((webhooks.deadLetters24h ?? 0) > 0) return warn(`${measured}: dead letters in 24 h`);
      return pass(measured);
    },
  },
  {
    number: 25,
    id: "redis",
    async run(context) {
      const url = context.env.REDIS_URL;
      // Embedded: rate limits live in memory by design (DESIGN decision 1); nothing to check.
      if (!url && !context.production) return pass("not used: the embedded profile keeps rate limits in memory");
      if (!url) return fail("REDIS_URL is unset: rate limits are per process and lost on restart");
      const redis = new Redis(url, {
        lazyConnect: true,
        connectTimeout: 3000,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
      });
      redis.on("error", () => {});
      try {
        await redis.connect();
        const started = performance.now();
        await redis.ping();
        const ms = Math.round(performance.now() - started);
        const parsed = new URL(url);
        if (!parsed.password) return fail(`${maskUrl(url)} answers PING in ${ms} ms but REDIS_URL carries no password`);
        const open = await redisAcceptsAnonymous(parsed);
        return open
          ? warn(`${maskUrl(url)} PING ${ms} ms with the password; the server's default user also answers without one`)
          : pass(`${maskUrl(url)} PING ${ms} ms, password required`);
      } catch (error) {
        return fail(`${maskUrl(url)} unreachable: ${(error as Error).message.slice(0, 100)}`);
      } finally {
        redis.disconnect();
      }
    },
  },
];

async function redisAcceptsAnonymous(url: URL): Promise<boolean> {
  const anonymous = new Redis({
    host: url.hostname,
    port: Number(url.port || 6379),
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  anonymous.on("error", () => {});
  try {
    await anonymous.connect();
    await anonymous.ping();
    return true;
  } catch {
    return false;
  } finally {
    anonymous.disconnect();
  }
}

async function heightNow(context: PreflightContext): Promise<number> {
  try {
    const answer = await context.http(`${context.rpcUrl}/status`);
    return Number((answer.body as { result: { sync_info: { latest_block_height: string } } }).result.sync_info.latest_block_height);
  } catch {
    return 0;
  }
}

async function outboxOf(context: PreflightContext, fresh = false): Promise<{ pending: number; oldest: number } | Error> {
  const url = context.apiUrls[0];
  const answer = fresh ? await context.http(`${url}/health`).catch((error: Error) => error) : await context.health(url);
  if (answer instanceof Error) return new Error(`the API at ${url} does not answer: ${answer.message.slice(0, 80)}`);
  const outbox = (answer.body as HealthBody).checks?.outbox;
  if (!outbox || outbox.pending === null) return new Error("the API cannot read its outbox (database down?)");
  return { pending: outbox.pending, oldest: outbox.oldestPendingSeconds ?? 0 };
}

async function longestGap(context: PreflightContext, height: number): Promise<{ seconds: number; height: number } | undefined> {
  try {
    const min = Math.max(1, height - 19);
    const answer = await context.http(`${context.rpcUrl}/blockchain?minHeight=${min}&maxHeight=${height}`);
    const metas = (answer.body as { result: { block_metas: { header: { height: string; time: string } }[] } }).result.block_metas;
    const times = metas
      .map((m) => ({ height: Number(m.header.height), time: new Date(m.header.time).getTime() }))
      .sort((a, b) => a.height - b.height);
    let worst: { seconds: number; height: number } | undefined;
    for (let i = 1; i < times.length; i++) {
      const seconds = Math.round((times[i].time - times[i - 1].time) / 1000);
      if (!worst || seconds > worst.seconds) worst = { seconds, height: times[i].height };
    }
    return worst;
  } catch {
    return undefined;
  }
}

export type { CheckResult };
