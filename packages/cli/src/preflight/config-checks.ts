import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_NAMES, describeSettings, loadConfig, productionSecretProblems } from "@daon/api";
import { homePaths } from "@daon/chain";
import { DEPLOYMENT_SETTINGS, GENERATED_SECRETS } from "../commands/init.js";
import { type Check, fail, pass, warn } from "./context.js";

/** Names older deployments used for what now has another name. */
const LEGACY: Record<string, string> = {
  BLOCKCHAIN_CHAIN_ID: "CHAIN_ID",
  BLOCKCHAIN_RPC: "CHAIN_RPC",
  CORS_ORIGIN: "ALLOWED_ORIGINS",
  CORS_ORIGINS: "ALLOWED_ORIGINS",
  JWT_EXPIRES_IN: "ACCESS_TOKEN_LIFETIME",
  DB_HOST: "DATABASE_URL",
  DB_PASSWORD: "POSTGRES_PASSWORD",
  MNEMONIC: "API_MNEMONIC",
  REDIS_HOST: "REDIS_URL",
};

const REQUIRED_EMBEDDED = ["CHAIN_ID", "API_MNEMONIC"];
const REQUIRED_PRODUCTION = [
  ...REQUIRED_EMBEDDED,
  "NODE_ENV",
  "DATABASE_URL",
  "REDIS_URL",
  "PUBLIC_HOST",
  "ALLOWED_ORIGINS",
  "JWT_SECRET",
  "API_KEY_SECRET",
  "ENCRYPTION_KEY",
  "BACKUP_KEY",
];

/** The secrets whose strength matters: all of them in production, the API's own and the backup key embedded. */
const EMBEDDED_SECRETS = ["JWT_SECRET", "API_KEY_SECRET", "ENCRYPTION_KEY", "BACKUP_KEY"];
const OVERLAP_MS = 24 * 3600 * 1000;

const mode = (path: string) => statSync(path).mode & 0o777;

export const configChecks: Check[] = [
  {
    number: 1,
    id: "config.schema",
    async run({ env, production }) {
      const problems: string[] = [];
      try {
        loadConfig(env);
      } catch (error) {
        problems.push((error as Error).message);
      }
      const missing = (production ? REQUIRED_PRODUCTION : REQUIRED_EMBEDDED).filter((name) => !env[name]);
      if (missing.length > 0) problems.push(`missing ${missing.join(", ")}`);
      if (problems.length > 0) return fail(problems.join("; "));
      const known = new Set<string>([...CONFIG_NAMES, ...DEPLOYMENT_SETTINGS]);
      const legacy = Object.keys(env).filter((name) => LEGACY[name]);
      const unknown = Object.keys(env).filter((name) => !known.has(name) && !LEGACY[name]);
      const notes = [
        ...legacy.map((name) => `legacy ${name} (now ${LEGACY[name]})`),
        ...(unknown.length > 0 ? [`unknown ${unknown.join(", ")}`] : []),
      ];
      const count = Object.keys(env).length;
      return notes.length > 0 ? warn(`${count} settings valid; ${notes.join("; ")}`) : pass(`${count} settings valid, none unknown`);
    },
  },
  {
    number: 5,
    id: "chain.id",
    async run(context) {
      const seen: Record<string, string | undefined> = { ".env": context.env.CHAIN_ID };
      seen.genesis = context.genesis()?.chain_id;
      const status = await context.nodeStatus();
      seen.node = status instanceof Error ? undefined : status.node_info.network;
      for (const url of context.apiUrls) {
        const health = await context.health(url);
        if (!(health instanceof Error)) seen[`API ${url}`] = (health.body as { chainId?: string })?.chainId;
      }
      if (context.options.expectChain) seen["--expect-chain"] = context.options.expectChain;
      const values = new Set(Object.values(seen).filter(Boolean));
      const listing = Object.entries(seen)
        .map(([where, id]) => `${where}=${id ?? "unknown"}`)
        .join(", ");
      if (values.size > 1) return fail(`chain IDs differ: ${listing}`);
      if (!seen[".env"]) return fail("no CHAIN_ID in .env");
      const unknown = Object.entries(seen).filter(([, id]) => !id);
      return unknown.length > 0
        ? pass(`${seen[".env"]} (${listing}; the rest could not be read, see node.status/api.health)`)
        : pass(`${seen[".env"]} everywhere (${Object.keys(seen).join(", ")})`);
    },
  },
  {
    number: 6,
    id: "config.node_env",
    async run({ env, production }) {
      const nodeEnv = env.NODE_ENV ?? "development";
      if (env.CHAIN_ID === "daon-mainnet-1" && nodeEnv !== "production") return fail(`NODE_ENV=${nodeEnv} on daon-mainnet-1`);
      if (production && nodeEnv !== "production") return warn(`NODE_ENV=${nodeEnv} on a production deployment`);
      return pass(`NODE_ENV=${nodeEnv}${production ? "" : " (embedded profile)"}`);
    },
  },
  {
    number: 7,
    id: "config.effective",
    async run(context) {
      const expected = describeSettings(context.env).fingerprints;
      const apiNames = new Set(CONFIG_NAMES);
      const compared = (name: string) => apiNames.has(name.split("#")[0]);
      const mismatches: string[] = [];
      const unreachable: string[] = [];
      let checked = 0;
      for (const url of context.apiUrls) {
        const answer = await context.opsConfig(url);
        if (answer instanceof Error) {
          unreachable.push(`${url} (${answer.message.slice(0, 60)})`);
          continue;
        }
        if (answer.status === 404 && context.opsTokens.length > 0) {
          const health = await context.health(url);
          if (!(health instanceof Error)) {
            mismatches.push(`${url}: refuses the ops token of .env's API_KEY_SECRET (the API runs with another one)`);
            continue;
          }
        }
        if (answer.status !== 200) {
          unreachable.push(`${url} (HTTP ${answer.status})`);
          continue;
        }
        checked++;
        const running = (answer.body as { fingerprints: Record<string, string> }).fingerprints;
        const names = new Set([...Object.keys(expected), ...Object.keys(running)].filter(compared));
        for (const name of [...names].sort()) {
          if (expected[name] === running[name]) continue;
          const what = !running[name] ? "not loaded" : !expected[name] ? "set outside .env" : `${running[name]} ≠ .env ${expected[name]}`;
          mismatches.push(`${url}: ${name} ${what}`);
        }
      }
      if (mismatches.length > 0) return fail(`running settings differ from .env (reload or restart): ${mismatches.join("; ")}`);
      if (checked === 0) return warn(`no API answered /internal/ops/config: ${unreachable.join(", ")}`);
      return unreachable.length > 0
        ? warn(`${checked} instance(s) match .env; unreachable: ${unreachable.join(", ")}`)
        : pass(`${checked} instance(s) run with .env's secrets (${Object.keys(expected).filter(compared).length} fingerprints compared)`);
    },
  },
  {
    number: 8,
    id: "secrets.strength",
    async run(context) {
      const { env, production } = context;
      const names = production ? Object.keys(GENERATED_SECRETS) : EMBEDDED_SECRETS;
      const problems = productionSecretProblems(env, names);
      // A predecessor equal to any secret is no rotation at all.
      for (const name of ["JWT_SECRET_PREVIOUS", "API_KEY_SECRET_PREVIOUS", "ENCRYPTION_KEY_PREVIOUS"]) {
        const value = env[name];
        const twin = value && names.find((other) => env[other] === value);
        if (twin) problems.push(`${name} equals ${twin}`);
      }
      if (problems.length > 0) return fail(problems.join("; "));
      const previous = ["JWT_SECRET_PREVIOUS", "API_KEY_SECRET_PREVIOUS", "ENCRYPTION_KEY_PREVIOUS"].filter((name) => env[name]);
      if (previous.length > 0) {
        const since = lastRotation(context.deployment.secretsDir);
        if (!since || Date.now() - since.getTime() > OVERLAP_MS)
          return warn(
            `${names.length} secrets strong; ${previous.join(", ")} kept ${since ? `since ${since.toISOString()}` : "with no rotation record"}, past the 24 h overlap: run daon rotate-keys secrets --finish`,
          );
      }
      return pass(`${names.length} secrets strong and distinct (≥32 characters, ≥128 bits, no default words)`);
    },
  },
  {
    number: 9,
    id: "files.perms",
    async run({ deployment }) {
      const problems: string[] = [];
      const checked: string[] = [];
      const want = (path: string, modes: number[]) => {
        if (!existsSync(path)) return;
        checked.push(path);
        const actual = mode(path);
        if (!modes.includes(actual))
          problems.push(
            `${path} is ${actual.toString(8).padStart(4, "0")}, want ${modes.map((m) => m.toString(8).padStart(4, "0")).join(" or ")}`,
          );
      };
      if (!existsSync(deployment.envFile)) problems.push(`${deployment.envFile} missing`);
      want(deployment.envFile, [0o600, 0o400]);
      for (const dir of [deployment.secretsDir, join(deployment.stateDir, "backups")]) {
        want(dir, [0o700]);
        for (const file of filesUnder(dir, dir.endsWith("backups") ? 2 : 3)) {
          if (dir.endsWith("secrets") || /env-backup|\.enc$|\.key$/.test(file)) want(file, [0o600, 0o400]);
        }
      }
      const home = homePaths(deployment.nodeHome);
      want(deployment.nodeHome, [0o700]);
      want(home.validatorKey, [0o600, 0o400]);
      want(home.nodeKey, [0o600, 0o400]);
      if (problems.length > 0) return fail(problems.join("; "));
      return pass(`${checked.length} paths private (.env 0600, secrets/ and backups/ 0700, key files 0600)`);
    },
  },
  {
    number: 12,
    id: "security.cors",
    async run({ env, production }) {
      const origins = (env.ALLOWED_ORIGINS ?? "")
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean);
      if (origins.length === 0)
        return fail("ALLOWED_ORIGINS is unset: browsers of any site would be refused or, worse, allowed by a default");
      if (origins.some((o) => o.includes("*"))) return fail(`ALLOWED_ORIGINS allows every origin (${origins.join(",")})`);
      const plain = origins.filter((o) => o.startsWith("http://"));
      if (production && plain.length > 0) return fail(`ALLOWED_ORIGINS has plain http origins in production: ${plain.join(", ")}`);
      return pass(`ALLOWED_ORIGINS=${origins.join(",")}`);
    },
  },
  {
    number: 13,
    id: "security.limits",
    async run(context) {
      const { env, production } = context;
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig(env);
      } catch {
        return fail("rate limits unknown: .env is invalid (see config.schema)");
      }
      const limits = { RATE_LIMIT_MAX: config.RATE_LIMIT_MAX, PROTECT_RATE_LIMIT_MAX: config.PROTECT_RATE_LIMIT_MAX };
      const off = Object.entries(limits).filter(([, value]) => !(value > 0));
      if (off.length > 0) return fail(`rate limits off: ${off.map(([name]) => name).join(", ")}`);
      const notes: string[] = [];
      const replicas = config.DAON_TOPOLOGY === "split" ? config.API_REPLICAS : 1;
      if (replicas > 1 && !config.REDIS_URL) notes.push(`${replicas} API instances without REDIS_URL: each counts limits alone`);
      if (production && config.LOG_LEVEL === "debug") notes.push("LOG_LEVEL=debug in production");
      const measured = `${config.RATE_LIMIT_MAX}/min per client, protect ${config.PROTECT_RATE_LIMIT_MAX}/min, ${config.REDIS_URL ? "shared in Redis" : "in memory"}`;
      return notes.length > 0 ? warn(`${measured}; ${notes.join("; ")}`) : pass(measured);
    },
  },
];

function filesUnder(dir: string, depth: number): string[] {
  if (depth < 0 || !existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...filesUnder(path, depth - 1));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

/** When the newest `rotate-keys secrets|totp-key` happened, from `secrets/rotations/<ts>-<kind>.json`. */
function lastRotation(secretsDir: string): Date | undefined {
  const dir = join(secretsDir, "rotations");
  if (!existsSync(dir)) return undefined;
  let newest: Date | undefined;
  for (const name of readdirSync(dir)) {
    if (!/-(secrets|totp-key)\.json$/.test(name)) continue;
    try {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as { finishedAt?: string; result?: string };
      const at = record.finishedAt ? new Date(record.finishedAt) : undefined;
      if (record.result === "ok" && at && (!newest || at > newest)) newest = at;
    } catch {
      // an unreadable record says nothing about when
    }
  }
  return newest;
}
