import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { type ApiConfig, ConfigError } from "../config/config.js";
import { PRODUCTION_SECRETS, productionSecretProblems } from "../secrets/strength.js";

/**
 * The secrets the API signs, hashes and seals with (DESIGN decision 8). Production refuses
 * to start with a missing, weak or shared one, naming each problem but never a value;
 * development without them runs on random ones for this process only, never on constants.
 */
export function secretsForStart(config: ApiConfig, logger: Logger): ApiConfig {
  if (config.NODE_ENV === "production") {
    const problems = productionSecretProblems(Object.fromEntries(PRODUCTION_SECRETS.map((name) => [name, config[name]])));
    if (problems.length > 0) throw new ConfigError(`refusing to start in production: ${problems.join("; ")}`);
    return config;
  }
  const missing = PRODUCTION_SECRETS.filter((name) => !config[name]);
  if (missing.length === 0) return config;
  logger.warn(
    { missing },
    "secrets not set: using random ones for this run only (sign-ins, sealed TOTP secrets and platform keys do not survive a restart)",
  );
  return { ...config, ...Object.fromEntries(missing.map((name) => [name, randomBytes(48).toString("base64url")])) };
}
