import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { writeFileAtomic } from "@daon/chain";

/** A deployment's places on disk (ops.md §0): the project's `.env` and the state directory. */
export interface Deployment {
  envFile: string;
  stateDir: string;
  nodeHome: string;
  secretsDir: string;
}

export function deploymentPaths(options: { envFile?: string; stateDir?: string }): Deployment {
  const envFile = resolve(options.envFile ?? ".env");
  const env = existsSync(envFile) ? readEnv(envFile) : {};
  const stateDir = resolve(options.stateDir ?? env.DAON_STATE_DIR ?? process.env.DAON_STATE_DIR ?? "data");
  return { envFile, stateDir, nodeHome: join(stateDir, "node"), secretsDir: join(stateDir, "secrets") };
}

export function readEnv(path: string): Record<string, string> {
  return parseEnv(readFileSync(path, "utf8")) as Record<string, string>;
}

export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}

export async function writeEnv(path: string, values: Record<string, string>): Promise<void> {
  const lines = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  await writeFileAtomic(path, `# DAON deployment settings, written by daon init\n${lines.join("\n")}\n`);
}

/** A refusal the operator can fix: printed without a stack, exit status 2 (ops.md §0). */
export class UsageError extends Error {
  readonly exitCode = 2;
}
