import { Type, type Static } from "typebox";
import { Value } from "typebox/value";

const Integer = (defaultValue: number, minimum = 0) => Type.Integer({ default: defaultValue, minimum });

/** Every setting the API reads, with defaults for the embedded profile; read once at start. */
const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal("development"), Type.Literal("production"), Type.Literal("test")], { default: "development" }),
  HOST: Type.String({ default: "127.0.0.1" }),
  PORT: Integer(3000),
  CHAIN_ID: Type.String({ minLength: 1 }),
  CHAIN_RPC: Type.String({ default: "http://127.0.0.1:26657" }),
  API_MNEMONIC: Type.String({ minLength: 1 }),
  DAON_STATE_DIR: Type.String({ default: "data" }),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  DB_POOL_MAX: Integer(20, 1),
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  PUBLIC_HOST: Type.Optional(Type.String({ minLength: 1 })),
  VERIFICATION_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  ALLOWED_ORIGINS: Type.String({ default: "" }),
  TRUST_PROXY: Type.String({ default: "127.0.0.1,::1" }),
  RATE_LIMIT_MAX: Integer(300, 1),
  RATE_LIMIT_WINDOW_MS: Integer(60_000, 1000),
  PROTECT_RATE_LIMIT_MAX: Integer(30, 1),
  PROTECT_WAIT_MS: Integer(10_000),
  BODY_LIMIT_JSON: Integer(10 * 1024 * 1024, 1024),
  BODY_LIMIT_FILE: Integer(25 * 1024 * 1024, 1024),
  METRICS_ALLOW: Type.String({ default: "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7" }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  // Accounts (api.md §3). Secrets are optional in development; production refuses to start without strong ones.
  JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  JWT_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 1 })),
  ENCRYPTION_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  MAGIC_LINK_LIFETIME: Integer(900, 60),
  ACCESS_TOKEN_LIFETIME: Integer(900, 60),
  REFRESH_TOKEN_LIFETIME: Integer(30 * 24 * 3600, 60),
  ADMIN_EMAILS: Type.String({ default: "" }),
  PROTECT_REQUIRE_AUTH: Type.Boolean({ default: false }),
  SMTP_URL: Type.Optional(Type.String({ minLength: 1 })),
  MAIL_FROM: Type.String({ default: "DAON <no-reply@localhost>" }),
  // Platforms (api.md §4).
  API_KEY_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  API_KEY_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 1 })),
  // Webhooks (api.md §5).
  WEBHOOK_ALLOW_HTTP: Type.Boolean({ default: false }),
  WEBHOOK_ALLOWED_CIDRS: Type.String({ default: "" }),
  WEBHOOK_TIMEOUT_MS: Integer(10_000, 100),
  // Operations (ops.md §0): read by the CLI from the same .env.
  BACKUP_KEY: Type.Optional(Type.String({ minLength: 1 })),
  DAON_SUPERVISOR: Type.Union([Type.Literal("process"), Type.Literal("systemd"), Type.Literal("compose")], { default: "process" }),
  DAON_TOPOLOGY: Type.Union([Type.Literal("single"), Type.Literal("split")], { default: "single" }),
  API_REPLICAS: Integer(2, 1),
  LOG_LEVEL: Type.Union(
    [
      Type.Literal("fatal"),
      Type.Literal("error"),
      Type.Literal("warn"),
      Type.Literal("info"),
      Type.Literal("debug"),
      Type.Literal("silent"),
    ],
    {
      default: "info",
    },
  ),
});

export type ApiConfig = Static<typeof ConfigSchema> & { verificationBaseUrl: string };

/** Every setting name the API knows (preflight calls other names in `.env` unknown). */
export const CONFIG_NAMES: readonly string[] = Object.keys(ConfigSchema.properties);

export class ConfigError extends Error {}

const NUMERIC = new Set([
  "PORT",
  "DB_POOL_MAX",
  "RATE_LIMIT_MAX",
  "RATE_LIMIT_WINDOW_MS",
  "PROTECT_RATE_LIMIT_MAX",
  "PROTECT_WAIT_MS",
  "BODY_LIMIT_JSON",
  "BODY_LIMIT_FILE",
  "MAGIC_LINK_LIFETIME",
  "ACCESS_TOKEN_LIFETIME",
  "REFRESH_TOKEN_LIFETIME",
  "WEBHOOK_TIMEOUT_MS",
  "API_REPLICAS",
]);
const BOOLEAN = new Set(["PROTECT_REQUIRE_AUTH", "WEBHOOK_ALLOW_HTTP"]);

/** Validates settings from `.env` and the environment into a typed config; throws ConfigError naming each problem. */
export function loadConfig(env: Record<string, string | undefined>): ApiConfig {
  const known = Object.keys(ConfigSchema.properties);
  const input: Record<string, unknown> = {};
  for (const name of known) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    input[name] =
      NUMERIC.has(name) && /^\d+$/.test(value)
        ? Number(value)
        : BOOLEAN.has(name) && /^(true|false)$/.test(value)
          ? value === "true"
          : value;
  }
  const withDefaults = Value.Default(ConfigSchema, input);
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    const problems = errors.map((e) => `${e.instancePath.slice(1) || "config"} ${e.message}`);
    throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join("; ")}`);
  }
  const config = withDefaults as Static<typeof ConfigSchema>;
  const verificationBaseUrl = (
    config.VERIFICATION_BASE_URL ?? (config.PUBLIC_HOST ? `https://${config.PUBLIC_HOST}` : `http://localhost:${config.PORT}`)
  ).replace(/\/$/, "");
  return { ...config, verificationBaseUrl };
}
