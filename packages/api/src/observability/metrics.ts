import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The API's Prometheus series (DESIGN.md); labels never hold hashes, ids, IPs or users. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "Time to answer HTTP requests",
      labelNames: ["method", "route", "status"],
      // 2 s and 5 s are the alert thresholds (ops.md §12): histogram_quantile is exact at a bucket bound.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    registrations: new Counter({
      name: "daon_registrations_total",
      help: "Registrations by outcome",
      labelNames: ["status"],
      registers: [registry],
    }),
    httpInFlight: new Gauge({ name: "http_requests_in_flight", help: "HTTP requests being answered", registers: [registry] }),
    outboxPending: new Gauge({ name: "daon_outbox_pending", help: "Registrations not yet on the ledger", registers: [registry] }),
    outboxOldestSeconds: new Gauge({
      name: "daon_outbox_oldest_pending_seconds",
      help: "Age of the oldest outbox entry not yet on the ledger (0 when empty)",
      registers: [registry],
    }),
    dbPoolConnections: new Gauge({
      name: "daon_db_pool_connections",
      help: "Database pool: connections in use and idle, clients waiting for one, and the pool's maximum",
      labelNames: ["state"],
      registers: [registry],
    }),
    buildInfo: new Gauge({
      name: "daon_build_info",
      help: "Always 1; labels name the running build",
      labelNames: ["version", "commit", "chain_id"],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "daon_webhook_deliveries_total",
      help: "Webhook delivery attempts by result: success, failure (a retry follows) or dead",
      labelNames: ["result"],
      registers: [registry],
    }),
    webhookBacklog: new Gauge({ name: "daon_webhook_backlog", help: "Webhook deliveries pending or retrying", registers: [registry] }),
    ledgerHeight: new Gauge({ name: "daon_ledger_height", help: "Latest ledger height seen", registers: [registry] }),
    indexerHeight: new Gauge({ name: "daon_indexer_height", help: "Ledger height indexed into the read model", registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** True iff `ip` is inside one of the CIDR ranges (IPv4 and IPv6, IPv4-mapped IPv6 included). */
export function ipAllowed(ip: string, cidrs: string[]): boolean {
  const address = ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
  return cidrs.some((cidr) => {
    const [range, bitsText] = cidr.trim().split("/");
    const a = toBigInt(address);
    const r = toBigInt(range);
    if (!a || !r || a.bits !== r.bits) return false;
    const bits = bitsText === undefined ? a.bits : Number(bitsText);
    const shift = BigInt(a.bits - bits);
    return a.value >> shift === r.value >> shift;
  });
}

function toBigInt(ip: string): { value: bigint; bits: number } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip))
    return { value: ip.split(".").reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n), bits: 32 };
  if (!ip.includes(":")) return undefined;
  const [head, tail = ""] = ip.split("::");
  const headParts = head ? head.split(":") : [];
  const tailParts = ip.includes("::") ? (tail ? tail.split(":") : []) : [];
  const groups = [...headParts, ...Array(8 - headParts.length - tailParts.length).fill("0"), ...tailParts];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return { value: groups.reduce((acc, g) => (acc << 16n) + BigInt(Number.parseInt(g, 16)), 0n), bits: 128 };
}
