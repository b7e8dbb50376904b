import { existsSync, readdirSync, readFileSync } from "node:fs";
import { appendFile, copyFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { type GeneratedType, DirectSecp256k1HdWallet, Registry } from "@cosmjs/proto-signing";
import { defaultRegistryTypes, SigningStargateClient } from "@cosmjs/stargate";
import { CONFIG_NAMES, describeSettings, fingerprint, isSecretSetting, urlPassword } from "@daon/api";
import { writeFileAtomic } from "@daon/chain";
import { MsgNameSuccessor, registryTypes } from "@daon/core";
import pg from "pg";
import { generateSecret } from "../commands/init.js";
import { type Deployment, privateDir, readEnv, UsageError } from "../deployment.js";
import { liveInstances } from "../preflight/context.js";
import { updateSettingsFile } from "./env-file.js";
import { opsCall, opsTokensOf, runningApis, signalReload, waitForFingerprints } from "./instances.js";
import { takeOpsLock } from "./ops-lock.js";
import { scramVerifier } from "./scram.js";

export const ROTATION_KINDS = ["secrets", "database", "wallet", "totp-key"] as const;
export type RotationKind = (typeof ROTATION_KINDS)[number];

export interface RotateOptions {
  dryRun?: boolean;
  /** `secrets`: drop the `*_PREVIOUS` kept for the overlap. */
  finish?: boolean;
  /** `wallet`: carry on with the rotation a crash interrupted. */
  resume?: boolean;
  /** `secrets --finish` before the 24 h overlap has passed. */
  force?: boolean;
  /** How long every instance has to report the new fingerprints (ops.md §8: 30 s). */
  reloadTimeoutMs?: number;
  /** `totp-key`: how long re-sealing may take before the command gives up (it resumes on the next run). */
  resealTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface RotationResult {
  kind: RotationKind;
  chainId: string;
  dryRun: boolean;
  plan: string[];
  /** Fingerprints before and after, by setting name (never values). */
  fingerprints: { before: Record<string, string | null>; after: Record<string, string | null> };
  addresses?: { old: string; new: string };
  txHash?: string;
  reloaded: string;
  instances: string[];
  recordFile?: string;
  vault: string[];
  github: string[];
  notes: string[];
}

/** A refused or failed rotation after changes were made and undone: exit 1, nothing left changed. */
export class RotationFailed extends Error {}

const OVERLAP_MS = 24 * 3600 * 1000;

function stamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
}

function fingerprintsOf(env: Record<string, string | undefined>, names: string[]): Record<string, string | null> {
  return Object.fromEntries(names.map((name) => [name, env[name] ? fingerprint(env[name] as string) : null]));
}

/** The fingerprints an API reports for these settings (`/internal/ops/config`); null = must be absent. */
function reportedFingerprints(env: Record<string, string | undefined>, names: string[]): Record<string, string | null> {
  const expected: Record<string, string | null> = {};
  for (const name of names) {
    if (!CONFIG_NAMES.includes(name)) continue;
    const described = describeSettings({ [name]: env[name] }).fingerprints;
    if (isSecretSetting(name)) expected[name] = described[name] ?? null;
    else if (name.endsWith("_URL")) expected[`${name}#password`] = described[`${name}#password`] ?? null;
  }
  return expected;
}

/** What each kind changes in `.env`, before anything is written. */
export function rotationPlan(kind: RotationKind, env: Record<string, string>, options: RotateOptions): string[] {
  const chain = env.CHAIN_ID;
  switch (kind) {
    case "secrets":
      return options.finish
        ? [
            "drop JWT_SECRET_PREVIOUS and API_KEY_SECRET_PREVIOUS from .env",
            "SIGHUP every API instance; tokens and keys of the old secrets stop working",
          ]
        : [
            "new JWT_SECRET and API_KEY_SECRET; the old ones kept as *_PREVIOUS for 24 h",
            `write .env and secrets/secrets-${chain}.env; SIGHUP every API instance; each must report the new fingerprints in 30 s`,
            "after 24 h: daon rotate-keys secrets --finish",
          ];
    case "totp-key":
      return [
        "new ENCRYPTION_KEY; the old one kept as ENCRYPTION_KEY_PREVIOUS",
        "SIGHUP; the API re-seals TOTP and webhook secrets in batches until none uses the old key id",
        "then ENCRYPTION_KEY_PREVIOUS is removed and the API reloads again",
      ];
    case "database":
      return [
        "new POSTGRES_PASSWORD; ALTER ROLE with a SCRAM verifier computed here (the password never reaches the server)",
        "DATABASE_URL switched; SIGHUP: new connections use it",
      ];
    case "wallet":
      return [
        `new 24-word wallet saved first to secrets/api-wallet-${chain}.next.txt`,
        "batchers paused once their submitted txs are committed",
        "the old wallet signs MsgNameSuccessor naming the new one",
        `.env API_MNEMONIC switched; the old wallet file kept as api-wallet-${chain}.retired-<ts>.txt`,
        "SIGHUP; batchers resume; the next batch must commit under the new address",
      ];
  }
}

/**
 * `daon rotate-keys <kind>` (ops.md §8): save `.env`, write the new secrets, SIGHUP every
 * instance and require the new fingerprints in 30 s — else restore, reload, exit 1. No downtime.
 */
export async function rotateKeys(deployment: Deployment, kind: RotationKind, options: RotateOptions = {}): Promise<RotationResult> {
  const progress = options.progress ?? (() => {});
  if (!existsSync(deployment.envFile)) throw new UsageError(`cannot read ${deployment.envFile}: no such file`);
  const env = readEnv(deployment.envFile);
  const chainId = env.CHAIN_ID;
  if (!chainId) throw new UsageError(`${deployment.envFile} has no CHAIN_ID`);
  const plan = rotationPlan(kind, env, options);
  const result: RotationResult = {
    kind,
    chainId,
    dryRun: Boolean(options.dryRun),
    plan,
    fingerprints: { before: {}, after: {} },
    reloaded: "",
    instances: [],
    vault: [],
    github: [],
    notes: [],
  };
  if (kind === "database" && !env.DATABASE_URL)
    throw new UsageError("rotate-keys database: this deployment uses the embedded PGlite database, which has no role password");
  if (kind === "database" && !urlPassword(env.DATABASE_URL))
    throw new UsageError("rotate-keys database: DATABASE_URL carries no password to rotate");
  if (kind === "secrets" && !options.finish && (env.JWT_SECRET_PREVIOUS || env.API_KEY_SECRET_PREVIOUS))
    throw new UsageError(
      "rotate-keys secrets: *_PREVIOUS is still set from the last rotation; run rotate-keys secrets --finish first (after its 24 h overlap)",
    );
  const secretsFile = join(deployment.secretsDir, `secrets-${chainId}.env`);
  const walletFile = join(deployment.secretsDir, `api-wallet-${chainId}.txt`);
  const nextWalletFile = join(deployment.secretsDir, `api-wallet-${chainId}.next.txt`);
  if (kind === "wallet" && existsSync(nextWalletFile) && !options.resume)
    throw new UsageError(`a wallet rotation was interrupted (${nextWalletFile} exists): run rotate-keys wallet --resume`);
  if (kind === "wallet" && options.resume && !existsSync(nextWalletFile))
    throw new UsageError(`nothing to resume: ${nextWalletFile} does not exist`);
  if (options.dryRun) return result;

  const unlock = await takeOpsLock(deployment.stateDir, `rotate-keys ${kind}`);
  const startedAt = new Date();
  const ts = stamp(startedAt);
  const rotationsDir = join(deployment.secretsDir, "rotations");
  const saved = join(rotationsDir, `${ts}-${kind}`);
  const recordFile = join(rotationsDir, `${ts}-${kind}.json`);
  let outcome: "ok" | "failed" = "failed";
  let failure: string | undefined;
  try {
    await privateDir(rotationsDir);
    await privateDir(saved);
    await copyFile(deployment.envFile, join(saved, "env.before"));
    if (existsSync(secretsFile)) await copyFile(secretsFile, join(saved, "secrets.before"));
    const urls = await runningApis(deployment, env);
    result.instances = urls;
    const tokens = () => opsTokensOf(env, readEnv(deployment.envFile));

    /** Writes changes, reloads every instance and waits for `expected`; on lagging instances restores `.env` and throws. */
    const apply = async (
      changes: Record<string, string | undefined>,
      vaultChanges: Record<string, string | undefined>,
      undo?: () => Promise<void>,
    ) => {
      const names = Object.keys(changes);
      result.fingerprints.before = { ...fingerprintsOf(readEnv(deployment.envFile), names), ...result.fingerprints.before };
      await updateSettingsFile(deployment.envFile, changes);
      if (existsSync(secretsFile) && Object.keys(vaultChanges).length > 0) await updateSettingsFile(secretsFile, vaultChanges);
      const written = readEnv(deployment.envFile);
      Object.assign(result.fingerprints.after, fingerprintsOf(written, names));
      const expected = reportedFingerprints(written, names);
      result.reloaded = await signalReload(deployment, env);
      progress(`reload: ${result.reloaded}; waiting for ${urls.length} instance(s) to report ${Object.keys(expected).join(", ")}`);
      const lagging = urls.length > 0 ? await waitForFingerprints(urls, tokens(), expected, options.reloadTimeoutMs ?? 30_000) : [];
      if (lagging.length === 0) return;
      progress(`not reloaded in time: ${lagging.join(", ")}; restoring the previous settings`);
      await copyFile(join(saved, "env.before"), deployment.envFile);
      if (existsSync(join(saved, "secrets.before"))) await copyFile(join(saved, "secrets.before"), secretsFile);
      await undo?.();
      await signalReload(deployment, env).catch(() => {});
      throw new RotationFailed(
        `instances did not report the new fingerprints within ${Math.round((options.reloadTimeoutMs ?? 30_000) / 1000)} s: ${lagging.join(", ")}; .env restored and reloaded, nothing changed`,
      );
    };

    if (kind === "secrets") {
      if (options.finish) {
        const since = lastRotationOf(rotationsDir, "secrets");
        if (!options.force && since && Date.now() - since.getTime() < OVERLAP_MS)
          throw new UsageError(
            `the overlap runs until ${new Date(since.getTime() + OVERLAP_MS).toISOString()}: tokens signed before the rotation are still valid; --force to finish now`,
          );
        await apply({ JWT_SECRET_PREVIOUS: undefined, API_KEY_SECRET_PREVIOUS: undefined }, {});
      } else {
        const jwt = generateSecret("base64url");
        const apiKey = generateSecret("base64url");
        await apply(
          { JWT_SECRET: jwt, JWT_SECRET_PREVIOUS: env.JWT_SECRET, API_KEY_SECRET: apiKey, API_KEY_SECRET_PREVIOUS: env.API_KEY_SECRET },
          { JWT_SECRET: jwt, API_KEY_SECRET: apiKey },
        );
        result.vault.push(`cat ${secretsFile}`);
        result.github.push("API_KEY_SECRET (from the secrets file)");
        result.notes.push("after 24 h: daon rotate-keys secrets --finish");
      }
    } else if (kind === "totp-key") {
      if (urls.length === 0)
        throw new UsageError("rotate-keys totp-key: no API instance is running to re-seal the stored secrets; start it first");
      if (!env.ENCRYPTION_KEY_PREVIOUS) {
        const key = generateSecret("hex");
        await apply({ ENCRYPTION_KEY: key, ENCRYPTION_KEY_PREVIOUS: env.ENCRYPTION_KEY }, { ENCRYPTION_KEY: key });
      } else {
        result.notes.push("resumed: ENCRYPTION_KEY_PREVIOUS was still set, so re-sealing continues under the current key");
      }
      await waitForResealing(urls, tokens(), options.resealTimeoutMs ?? 600_000, progress);
      await apply({ ENCRYPTION_KEY_PREVIOUS: undefined }, {});
      result.vault.push(`cat ${secretsFile}`);
    } else if (kind === "database") {
      const user = decodeURIComponent(new URL(env.DATABASE_URL).username);
      const oldPassword = urlPassword(env.DATABASE_URL) as string;
      const password = generateSecret("alphanumeric");
      const url = new URL(env.DATABASE_URL);
      url.password = password;
      await alterRolePassword(env.DATABASE_URL, user, password);
      await apply({ POSTGRES_PASSWORD: password, DATABASE_URL: url.toString() }, { POSTGRES_PASSWORD: password }, () =>
        alterRolePassword(url.toString(), user, oldPassword),
      );
      result.vault.push(`cat ${secretsFile}`);
      result.github.push("POSTGRES_PASSWORD (from the secrets file)");
    } else {
      const rotated = await rotateWallet(deployment, env, { walletFile, nextWalletFile, ts, urls, tokens, progress });
      result.addresses = rotated.addresses;
      result.txHash = rotated.txHash;
      result.fingerprints = rotated.fingerprints;
      result.reloaded = rotated.reloaded;
      result.notes.push(...rotated.notes);
      result.vault.push(`cat ${walletFile}`);
      result.github.push("API_MNEMONIC (from the wallet file)");
    }
    outcome = "ok";
    return result;
  } catch (error) {
    failure = (error as Error).message;
    throw error;
  } finally {
    result.recordFile = recordFile;
    const record = {
      kind,
      chainId,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      operator: process.env.SUDO_USER ?? process.env.USER ?? null,
      options: { finish: Boolean(options.finish), resume: Boolean(options.resume) },
      names: Object.keys(result.fingerprints.after),
      fingerprints: result.fingerprints,
      addresses: result.addresses ?? null,
      txHash: result.txHash ?? null,
      instances: result.instances,
      result: outcome,
      error: failure ?? null,
    };
    await writeFileAtomic(recordFile, `${JSON.stringify(record, null, 2)}\n`).catch(() => {});
    await privateDir(join(deployment.stateDir, "logs")).catch(() => {});
    await appendFile(
      join(deployment.stateDir, "logs", "ops-audit.log"),
      `${JSON.stringify({ time: record.finishedAt, command: `rotate-keys ${kind}`, chainId, result: outcome, fingerprints: record.fingerprints.after, error: failure ?? null })}\n`,
      { mode: 0o600 },
    ).catch(() => {});
    await unlock();
  }
}

function lastRotationOf(dir: string, kind: RotationKind): Date | undefined {
  if (!existsSync(dir)) return undefined;
  let newest: Date | undefined;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(`-${kind}.json`)) continue;
    try {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as {
        finishedAt: string;
        result: string;
        options?: { finish?: boolean };
      };
      const at = new Date(record.finishedAt);
      if (record.result === "ok" && !record.options?.finish && (!newest || at > newest)) newest = at;
    } catch {
      // unreadable record: ignored
    }
  }
  return newest;
}

/** `ALTER ROLE … PASSWORD '<SCRAM verifier>'` over the role's own connection (a role may change its own password). */
async function alterRolePassword(databaseUrl: string, user: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const role = `"${user.replace(/"/g, '""')}"`;
    await client.query(`ALTER ROLE ${role} PASSWORD '${scramVerifier(password)}'`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Polls every instance's `/internal/ops/config` sealing status until nothing is left under an old key. */
async function waitForResealing(urls: string[], tokens: string[], timeoutMs: number, progress: (line: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastSaid = 0;
  for (;;) {
    let remaining = 0;
    for (const url of urls) {
      const answer = await opsCall(url, "config", tokens);
      const sealing = answer.body.sealing as { remaining?: Record<string, number> } | undefined;
      if (answer.status !== 200 || !sealing) throw new RotationFailed(`${url} does not report its re-sealing (HTTP ${answer.status})`);
      remaining = Math.max(
        remaining,
        Object.values(sealing.remaining ?? {}).reduce((a, b) => a + b, 0),
      );
    }
    if (remaining === 0) return;
    if (Date.now() - lastSaid > 10_000) {
      progress(`re-sealing: ${remaining} value(s) still under the old key`);
      lastSaid = Date.now();
    }
    if (Date.now() > deadline)
      throw new RotationFailed(
        `re-sealing did not finish in ${Math.round(timeoutMs / 1000)} s (${remaining} left); both keys stay configured: run rotate-keys totp-key again to resume`,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const registry = new Registry([...defaultRegistryTypes, ...registryTypes.map((type): [string, GeneratedType] => [type.typeUrl, type])]);

async function walletOf(mnemonic: string) {
  const wallet = await DirectSecp256k1HdWallet.fromMnemonic(mnemonic.trim(), { prefix: "daon" });
  return { wallet, address: (await wallet.getAccounts())[0].address };
}

/**
 * ops.md §8 `wallet`: the new mnemonic is on disk before anything else happens; batchers pause
 * with nothing in flight; the old wallet names the new one its successor on the ledger; then
 * `.env` switches and the batchers resume under the new address. Past the successor tx there
 * is no way back (the old wallet can no longer sign), so a failure there says `--resume`.
 */
async function rotateWallet(
  deployment: Deployment,
  env: Record<string, string>,
  paths: {
    walletFile: string;
    nextWalletFile: string;
    ts: string;
    urls: string[];
    tokens: () => string[];
    progress: (line: string) => void;
  },
) {
  const { walletFile, nextWalletFile, urls, tokens, progress } = paths;
  const notes: string[] = [];
  const old = await walletOf(env.API_MNEMONIC);
  let nextMnemonic: string;
  if (existsSync(nextWalletFile)) {
    nextMnemonic = /mnemonic: (.+)/.exec(readFileSync(nextWalletFile, "utf8"))?.[1]?.trim() ?? "";
    notes.push(`resumed with the wallet saved in ${nextWalletFile}`);
  } else {
    const generated = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
    nextMnemonic = generated.mnemonic;
    const [{ address }] = await generated.getAccounts();
    await writeFileAtomic(nextWalletFile, `address: ${address}\nmnemonic: ${nextMnemonic}\n`);
  }
  const next = await walletOf(nextMnemonic);
  const alreadySwitched = old.address === next.address;
  const rpcUrl = (liveInstances(deployment.stateDir).find((i) => i.rpcUrl)?.rpcUrl ?? env.CHAIN_RPC ?? "http://127.0.0.1:26657").replace(
    /\/$/,
    "",
  );

  for (const url of urls) {
    progress(`pausing the batcher of ${url} (waits for its submitted txs)`);
    const answer = await opsCall(url, "batcher", tokens(), { method: "POST", body: { action: "pause" }, timeoutMs: 40_000 });
    if (answer.status !== 200) {
      await resumeAll(urls, tokens);
      throw new RotationFailed(
        `the batcher of ${url} did not pause (HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}); nothing changed`,
      );
    }
  }

  let txHash: string | undefined;
  if (!alreadySwitched) {
    const client = await SigningStargateClient.connectWithSigner(rpcUrl, old.wallet, { registry });
    try {
      progress(`${old.address} names ${next.address} its successor`);
      const outcome = await client.signAndBroadcast(
        old.address,
        [{ typeUrl: MsgNameSuccessor.typeUrl, value: MsgNameSuccessor.fromPartial({ creator: old.address, successor: next.address }) }],
        { amount: [], gas: "200000" },
      );
      if (outcome.code !== 0) throw new Error(`code ${outcome.code}: ${outcome.rawLog ?? ""}`);
      txHash = outcome.transactionHash;
    } catch (error) {
      const message = (error as Error).message;
      if (!/retired/.test(message)) {
        await resumeAll(urls, tokens);
        throw new RotationFailed(
          `the successor tx failed: ${message.slice(0, 200)}; the old wallet still signs, nothing changed (the new wallet stays in ${nextWalletFile}: --resume)`,
        );
      }
      notes.push("the successor was already named on the ledger (resumed after it)");
    } finally {
      client.disconnect();
    }
  }

  const before = { API_MNEMONIC: fingerprint(env.API_MNEMONIC) };
  const after = { API_MNEMONIC: fingerprint(nextMnemonic) };
  await updateSettingsFile(deployment.envFile, { API_MNEMONIC: nextMnemonic });
  if (existsSync(walletFile) && !alreadySwitched) await rename(walletFile, walletFile.replace(/\.txt$/, `.retired-${paths.ts}.txt`));
  await rename(nextWalletFile, walletFile);
  const reloaded = await signalReload(deployment, env);
  const lagging = urls.length > 0 ? await waitForFingerprints(urls, tokens(), after, 30_000) : [];
  if (lagging.length > 0)
    throw new RotationFailed(
      `the ledger names ${next.address} the successor, but ${lagging.join(", ")} did not reload in 30 s: SIGHUP them again or restart them`,
    );
  await resumeAll(urls, tokens);
  await waitForNewSigner(urls, tokens, next.address, progress);
  return { addresses: { old: old.address, new: next.address }, txHash, fingerprints: { before, after }, reloaded, notes };
}

async function resumeAll(urls: string[], tokens: () => string[]): Promise<void> {
  for (const url of urls) await opsCall(url, "batcher", tokens(), { method: "POST", body: { action: "resume" } }).catch(() => {});
}

/** Every batcher signs as the new address, and whatever was pending commits under it (≤ 60 s). */
async function waitForNewSigner(urls: string[], tokens: () => string[], address: string, progress: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const url of urls) {
    for (;;) {
      const answer = await opsCall(url, "batcher", tokens());
      const state = answer.body as { address?: string; unconfirmedTxs?: string[]; lastCommitted?: { address: string } | null };
      const signsAsNew = state.address === address;
      const settled = (state.unconfirmedTxs ?? []).length === 0 || state.lastCommitted?.address === address;
      if (signsAsNew && settled) break;
      if (Date.now() > deadline)
        throw new RotationFailed(`${url}: the batcher does not commit as ${address} within 60 s (signs as ${state.address})`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    progress(`${url} signs as ${address}`);
  }
}
