import { execFile } from "node:child_process";
import { lookup } from "node:dns/promises";
import { existsSync, readdirSync, readFileSync, statSync, statfsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import { promisify } from "node:util";
import { isSecretSetting, urlPassword } from "@daon/api";
import { newestBackup } from "./backup-checks.js";
import { type Check, fail, formatBytes, type PreflightContext, pass, warn } from "./context.js";

const run = promisify(execFile);
const DAY_MS = 24 * 3600 * 1000;
const ALLOWED_PORTS = new Set([22, 80, 443]);

/** The certificate `host:443` presents for its own name, and whether the chain and name verify. */
function peerCertificate(host: string): Promise<{ cert: PeerCertificate; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port: 443, servername: host, rejectUnauthorized: false, timeout: 5000 }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ cert, authorized: socket.authorized, error: socket.authorizationError?.toString() });
      socket.end();
    });
    socket.on("timeout", () => {
      socket.destroy();
      reject(new Error("timed out"));
    });
    socket.on("error", reject);
  });
}

/** Listening TCP sockets from /proc/net/tcp{,6}: address and port, state 0A (LISTEN). */
function listeningSockets(): { address: string; port: number }[] {
  const sockets: { address: string; port: number }[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== "0A") continue;
      const [hexAddress, hexPort] = fields[1].split(":");
      sockets.push({ address: decodeAddress(hexAddress), port: Number.parseInt(hexPort, 16) });
    }
  }
  return sockets;
}

function decodeAddress(hex: string): string {
  if (hex.length === 8)
    return (hex.match(/../g) ?? [])
      .reverse()
      .map((b) => Number.parseInt(b, 16))
      .join(".");
  // IPv6 in /proc: four little-endian 32-bit words.
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse());
  if (bytes.slice(0, 10).every((b) => b === "00") && bytes[10] === "FF" && bytes[11] === "FF")
    return bytes
      .slice(12)
      .map((b) => Number.parseInt(b, 16))
      .join(".");
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(Number.parseInt(bytes[i] + bytes[i + 1], 16).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

const isLoopback = (address: string) => address.startsWith("127.") || address === "::1" || address === "0:0:0:0:0:0:0:1";

/** Log lines that hold something secret: patterns, plus the deployment's own secret values in three encodings. */
function secretMatchers(env: Record<string, string>): { name: string; test: (line: string) => string | undefined }[] {
  const values = Object.entries(env)
    .filter(([name, value]) => value && value.length >= 12 && isSecretSetting(name))
    .map(([name, value]) => ({ name, value }));
  for (const url of ["DATABASE_URL", "REDIS_URL", "SMTP_URL"]) {
    const password = urlPassword(env[url]);
    if (password && password.length >= 8) values.push({ name: `${url} password`, value: password });
  }
  const encoded = values.flatMap(({ name, value }) => [
    { name, needle: value },
    { name: `${name} (base64)`, needle: Buffer.from(value).toString("base64").replace(/=+$/, "") },
    { name: `${name} (URL-encoded)`, needle: encodeURIComponent(value) },
  ]);
  const patterns: [string, RegExp][] = [
    ["bearer token", /Bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/-]{20,}/],
    ["platform key", /DAON_BR_[A-Za-z0-9_-]{16,}/],
    ["PEM private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    ["URL password", /[a-z][a-z0-9+.-]*:\/\/[^\s:/@"']+:(?!\*\*\*\*@)[^\s@/"']{3,}@/i],
    ["mnemonic", /mnemonic["'\s:=]+(?:[a-z]+\s+){11,}[a-z]+/i],
  ];
  return [
    ...encoded.map(({ name, needle }) => ({ name, test: (line: string) => (line.includes(needle) ? name : undefined) })),
    ...patterns.map(([name, pattern]) => ({ name, test: (line: string) => (pattern.test(line) ? name : undefined) })),
  ];
}

function logFiles(dir: string, since: number, depth = 3): string[] {
  if (depth < 0 || !existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...logFiles(path, since, depth - 1));
    else if (entry.isFile() && statSync(path).mtimeMs >= since && !/\.(gz|enc|tar)$/.test(entry.name)) files.push(path);
  }
  return files;
}

function memoryInfo(): { total: number; available: number } {
  const text = readFileSync("/proc/meminfo", "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0) * 1024;
  return { total: kb("MemTotal"), available: kb("MemAvailable") };
}

export const hostChecks: Check[] = [
  {
    number: 10,
    id: "tls.cert",
    async run(context) {
      const host = context.options.publicHost ?? context.env.PUBLIC_HOST;
      // Embedded: plain HTTP on loopback by design; certificates belong to the production proxy.
      if (!host && !context.production) return pass("not applicable: the embedded profile serves plain HTTP on loopback");
      if (!host) return warn("no PUBLIC_HOST (production): nothing to check a certificate for");
      let presented: Awaited<ReturnType<typeof peerCertificate>>;
      try {
        presented = await peerCertificate(host);
      } catch (error) {
        return fail(`${host}:443 did not complete a TLS handshake: ${(error as Error).message.slice(0, 100)}`);
      }
      const { cert, authorized, error } = presented;
      const days = Math.floor((new Date(cert.valid_to).getTime() - Date.now()) / DAY_MS);
      const measured = `${host}: issuer ${cert.issuer?.O ?? cert.issuer?.CN ?? "?"}, expires ${cert.valid_to} (${days} days)`;
      if (!authorized) return fail(`${measured}: ${error ?? "chain or name does not verify"}`);
      if (days < 14) return fail(`${measured}: under 14 days left`);
      const dns = await dnsPointsHere(host);
      if (days < 30) return warn(`${measured}: under 30 days left`);
      if (dns) return warn(`${measured}; ${dns}`);
      return pass(measured);
    },
  },
  {
    number: 11,
    id: "net.ports",
    async run(context) {
      const open = new Set<string>();
      let told = false;
      try {
        for (const socket of listeningSockets()) {
          told = true;
          if (!isLoopback(socket.address) && !ALLOWED_PORTS.has(socket.port)) open.add(`${socket.address}:${socket.port}`);
        }
      } catch {
        // unreadable /proc: the other sources may still tell
      }
      if (context.supervisor === "compose") {
        try {
          const { stdout } = await run("docker", ["ps", "--format", "{{.Names}} {{.Ports}}"], { timeout: 10_000 });
          told = true;
          for (const match of stdout.matchAll(/(\d+\.\d+\.\d+\.\d+|\[?::\]?):(\d+)->/g)) {
            if (!isLoopback(match[1]) && !ALLOWED_PORTS.has(Number(match[2]))) open.add(`${match[1]}:${match[2]} (docker)`);
          }
        } catch {
          // no docker here: the socket table above still counts
        }
      }
      let firewall = "ufw not installed";
      try {
        const { stdout } = await run("ufw", ["status"], { timeout: 5000 });
        told = true;
        firewall = /Status: active/.test(stdout) ? "ufw active" : "ufw inactive";
        for (const match of stdout.matchAll(/^(\d+)(?:\/\w+)?\s+ALLOW/gm)) {
          if (!ALLOWED_PORTS.has(Number(match[1]))) open.add(`${match[1]} (ufw allows)`);
        }
      } catch {
        // ufw missing or not permitted: said in the reason
      }
      if (!told) return warn(`cannot tell: no socket table, docker or ufw readable (${firewall})`);
      if (open.size > 0) return fail(`reachable from outside besides 22/80/443: ${[...open].join(", ")} (${firewall})`);
      return pass(`only loopback or 22/80/443 listening (${firewall})`);
    },
  },
  {
    number: 14,
    id: "security.log_scan",
    timeoutSeconds: 60,
    async run(context) {
      const since = Date.now() - 7 * DAY_MS;
      const matchers = secretMatchers(context.env);
      const sources = [join(context.deployment.stateDir, "logs"), "/var/log/caddy", join(context.deployment.stateDir, "caddy")];
      const files = sources.flatMap((dir) => logFiles(dir, since));
      const findings: string[] = [];
      const unreadable: string[] = [];
      let lines = 0;
      for (const file of files) {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch {
          unreadable.push(file);
          continue;
        }
        text.split("\n").forEach((line, index) => {
          lines++;
          for (const matcher of matchers) {
            const found = matcher.test(line);
            if (found) {
              findings.push(`${file}:${index + 1} ${found}`);
              break;
            }
          }
        });
      }
      const services = await serviceLogs(context);
      if (services instanceof Error) unreadable.push(services.message);
      else
        services.split("\n").forEach((line, index) => {
          lines++;
          for (const matcher of matchers) {
            const found = matcher.test(line);
            if (found) {
              findings.push(`${context.supervisor} logs line ${index + 1} ${found}`);
              break;
            }
          }
        });
      if (findings.length > 0)
        return fail(`${findings.length} secret(s) in logs: ${findings.slice(0, 10).join(", ")}${findings.length > 10 ? ", …" : ""}`);
      const measured = `${files.length} file(s), ${lines} line(s) of the last 7 days clean`;
      return unreadable.length > 0 ? warn(`${measured}; unreadable: ${unreadable.join(", ")}`) : pass(measured);
    },
  },
  {
    number: 15,
    id: "deps.audit",
    timeoutSeconds: 120,
    async run(context) {
      if (context.options.quick) return warn("skipped (--quick)");
      try {
        const { stdout } = await run("npm", ["audit", "--omit=dev", "--json"], {
          cwd: context.projectDir,
          timeout: 100_000,
          maxBuffer: 64 << 20,
        }).catch((error: { stdout?: string; message: string }) => {
          if (error.stdout) return { stdout: error.stdout }; // npm exits 1 when it found anything
          throw error;
        });
        const report = JSON.parse(stdout) as { metadata?: { vulnerabilities?: Record<string, number> }; error?: { summary?: string } };
        if (report.error) return warn(`npm audit could not run: ${report.error.summary ?? "error"}`);
        const counts = report.metadata?.vulnerabilities ?? {};
        const serious = (counts.high ?? 0) + (counts.critical ?? 0);
        const measured = Object.entries(counts)
          .filter(([name]) => name !== "total")
          .map(([name, n]) => `${name} ${n}`)
          .join(", ");
        return serious > 0 ? fail(`npm audit --omit=dev: ${measured}`) : pass(`npm audit --omit=dev: ${measured || "nothing found"}`);
      } catch (error) {
        return warn(`npm audit could not run: ${(error as Error).message.split("\n")[0].slice(0, 100)}`);
      }
    },
  },
  {
    number: 23,
    id: "host.resources",
    async run(context) {
      const fs = statfsSync(existsSync(context.deployment.stateDir) ? context.deployment.stateDir : context.projectDir);
      const free = fs.bavail * fs.bsize;
      const total = fs.blocks * fs.bsize;
      const freePercent = (free / total) * 100;
      const memory = memoryInfo();
      const memPercent = (memory.available / memory.total) * 100;
      const backup = newestBackup(context.deployment.stateDir);
      const measured = `disk ${formatBytes(free)} free (${freePercent.toFixed(0)} %), memory ${formatBytes(memory.available)} available (${memPercent.toFixed(0)} %)${backup ? `, newest backup ${formatBytes(backup.bytes)}` : ""}`;
      const GB = 1024 ** 3;
      const failures: string[] = [];
      if (freePercent < 10 || free < 10 * GB) failures.push("disk under 10 % / 10 GB free");
      if (backup && free < 2 * backup.bytes) failures.push("disk under 2 × the newest backup");
      if (memPercent < 10 || memory.available < 1 * GB) failures.push("memory under 10 % / 1 GB");
      if (failures.length > 0) return fail(`${measured}: ${failures.join("; ")}`);
      const warnings: string[] = [];
      if (freePercent < 20 || free < 20 * GB) warnings.push("disk under 20 % / 20 GB free");
      if (memPercent < 20 || memory.available < 2 * GB) warnings.push("memory under 20 % / 2 GB");
      return warnings.length > 0 ? warn(`${measured}: ${warnings.join("; ")}`) : pass(measured);
    },
  },
  {
    number: 24,
    id: "monitoring",
    async run(context) {
      // Embedded: one process on a workstation; Prometheus and Grafana are part of the production stack only.
      if (!context.production) return pass("not applicable: the embedded profile runs without Prometheus/Grafana");
      const missing: string[] = [];
      const prometheus = "http://127.0.0.1:9090";
      const healthy = await context.http(`${prometheus}/-/healthy`).catch(() => undefined);
      if (healthy?.status !== 200) missing.push(`Prometheus (${prometheus}/-/healthy)`);
      else {
        const rules = await context.http(`${prometheus}/api/v1/rules`).catch(() => undefined);
        const groups = (rules?.body as { data?: { groups?: unknown[] } })?.data?.groups ?? [];
        if (groups.length === 0) missing.push("alert rules");
        const targets = await context.http(`${prometheus}/api/v1/targets`).catch(() => undefined);
        const active =
          (targets?.body as { data?: { activeTargets?: { labels: { job: string }; health: string }[] } })?.data?.activeTargets ?? [];
        for (const job of ["daon-api", "daon-node"])
          if (!active.some((t) => t.labels.job === job && t.health === "up")) missing.push(`target ${job} up`);
        const alertmanagers = await context.http(`${prometheus}/api/v1/alertmanagers`).catch(() => undefined);
        const receivers = (alertmanagers?.body as { data?: { activeAlertmanagers?: unknown[] } })?.data?.activeAlertmanagers ?? [];
        if (receivers.length === 0) missing.push("Alertmanager");
      }
      const grafana = await context.http("http://127.0.0.1:3001/api/health").catch(() => undefined);
      if (grafana?.status !== 200) missing.push("Grafana (127.0.0.1:3001/api/health)");
      if (!context.env.ALERT_WEBHOOK_URL) missing.push("alert receiver (ALERT_WEBHOOK_URL)");
      return missing.length > 0
        ? fail(`missing: ${missing.join(", ")}`)
        : pass("Prometheus with rules and api/node targets up, Alertmanager, Grafana, alert receiver");
    },
  },
];

/** Where the host name resolves, if not to this machine (a warning: DNS may point at a load balancer). */
async function dnsPointsHere(host: string): Promise<string | undefined> {
  try {
    const addresses = (await lookup(host, { all: true })).map((a) => a.address);
    const local = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
    return addresses.some((a) => local.has(a)) ? undefined : `DNS points elsewhere (${addresses.join(", ")})`;
  } catch (error) {
    return `DNS lookup failed (${(error as Error).message.slice(0, 60)})`;
  }
}

/** The services' own logs of the last 7 days, where the supervisor keeps them (process: files under logs/). */
async function serviceLogs(context: PreflightContext): Promise<string | Error> {
  try {
    if (context.supervisor === "compose") {
      const { stdout } = await run("docker", ["compose", "logs", "--no-color", "--since", "168h"], {
        cwd: context.projectDir,
        timeout: 30_000,
        maxBuffer: 256 << 20,
      });
      return stdout;
    }
    if (context.supervisor === "systemd") {
      const { stdout } = await run("journalctl", ["-u", "daon*", "--since", "7 days ago", "--no-pager", "-o", "cat"], {
        timeout: 30_000,
        maxBuffer: 256 << 20,
      });
      return stdout;
    }
    return "";
  } catch (error) {
    return new Error(`${context.supervisor} logs (${(error as Error).message.split("\n")[0].slice(0, 60)})`);
  }
}
