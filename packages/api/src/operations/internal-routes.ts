import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ApiConfig } from "../config/config.js";
import { ApiError } from "../http/errors.js";
import type { Batcher } from "../ledger/batcher.js";
import { describeSettings, type Keyring } from "../secrets/keyring.js";
import { requireOpsToken } from "./ops-token.js";

/** How far re-sealing under a new ENCRYPTION_KEY has come (ops.md §8 `totp-key`). */
export interface SealingStatus {
  currentKeyId: string | null;
  previousKeyId: string | null;
  /** Values still sealed under a key other than the current one, by table.column. */
  remaining: Record<string, number>;
}

export interface InternalRoutesOptions {
  /** The settings in effect now (SIGHUP replaces the secrets in them). */
  config: () => ApiConfig;
  keyring: Keyring;
  batcher: Batcher;
  instance: string;
  startedAt: Date;
  reloadedAt: () => Date | undefined;
  sealing: () => Promise<SealingStatus>;
}

const hidden = { hide: true, tags: ["operations"] } as const;
const BatcherAction = Type.Object({ action: Type.Union([Type.Literal("pause"), Type.Literal("resume")]) }, { additionalProperties: false });

/**
 * `/internal/ops/config` and `/internal/ops/batcher` (ops.md §13): what the CLI asks a running
 * API (preflight's config.effective, rotate-keys). Reached only with the ops token; Caddy
 * answers 404 for `/internal/*` publicly as well.
 */
export const internalOpsRoutes: FastifyPluginAsyncTypebox<InternalRoutesOptions> = async (app, options) => {
  const { keyring, batcher } = options;
  app.addHook("onRequest", async (request) => requireOpsToken(request, keyring.apiKey));

  function batcherState() {
    return {
      success: true as const,
      instance: options.instance,
      paused: batcher.paused,
      address: batcher.address,
      unconfirmedTxs: batcher.unconfirmedTxs,
      lastCommitted: batcher.lastCommitted ?? null,
      lastError: batcher.lastError ?? null,
    };
  }

  app.get(
    "/internal/ops/config",
    { schema: { ...hidden, summary: "Fingerprints of the secrets and the settings in effect" }, config: { rateLimit: false } },
    async () => {
      const config = options.config();
      const { verificationBaseUrl: _derived, ...settings } = config;
      const described = describeSettings(settings);
      return {
        success: true,
        instance: options.instance,
        pid: process.pid,
        startedAt: options.startedAt.toISOString(),
        reloadedAt: options.reloadedAt()?.toISOString() ?? null,
        chainId: config.CHAIN_ID,
        walletAddress: batcher.address,
        fingerprints: { ...described.fingerprints, ...nonNull(keyring.fingerprints()) },
        settings: described.settings,
        sealing: await options.sealing(),
      };
    },
  );

  app.get(
    "/internal/ops/batcher",
    { schema: { ...hidden, summary: "The batcher's wallet and what it has in flight" }, config: { rateLimit: false } },
    async () => batcherState(),
  );

  app.post(
    "/internal/ops/batcher",
    {
      schema: { ...hidden, summary: "Pause (waits until its txs are committed) or resume the batcher", body: BatcherAction },
      config: { rateLimit: false },
    },
    async (request) => {
      if (request.body.action === "resume") batcher.resume();
      else
        await batcher.pause().catch((error: Error) => {
          throw new ApiError(503, "BATCHER_BUSY", error.message, { unconfirmedTxs: batcher.unconfirmedTxs });
        });
      return batcherState();
    },
  );
};

function nonNull(values: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== null));
}
