/**
 * Offline signing of registration txs with CosmJS (`SigningStargateClient.offline(...).sign`),
 * spread over worker threads so pre-signing thousands of txs before a timed window stays short.
 */
import { createHash } from "node:crypto";
import { cpus } from "node:os";
import { Worker } from "node:worker_threads";
import { DirectSecp256k1Wallet } from "@cosmjs/proto-signing";
import { SigningStargateClient } from "@cosmjs/stargate";
import { MsgRegisterContent } from "@daon/core";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { contentHash, daonRegistry } from "../../packages/chain/test/test-chain.js";

export interface SignJob {
  privkeyHex: string;
  accountNumber: number;
  chainId: string;
  fromSequence: number;
  count: number;
  messagesPerTx: number;
  /** Makes content hashes unique per bench run and chain. */
  labelPrefix: string;
}

export interface SignedRaw {
  txBase64: string;
  /** CometBFT tx hash: upper-case hex SHA-256 of the raw tx. */
  hash: string;
}

/** Gas the node's schedule needs (10k per tx, 10 per byte, 2k per message) with headroom. */
export const feeFor = (messages: number) => ({ amount: [], gas: String(50_000 + 6_000 * messages) });

export async function signJob(job: SignJob): Promise<SignedRaw[]> {
  const signer = await DirectSecp256k1Wallet.fromKey(Buffer.from(job.privkeyHex, "hex"), "daon");
  const [{ address }] = await signer.getAccounts();
  const client = await SigningStargateClient.offline(signer, { registry: daonRegistry() });
  const out: SignedRaw[] = [];
  for (let i = 0; i < job.count; i++) {
    const sequence = job.fromSequence + i;
    const messages = Array.from({ length: job.messagesPerTx }, (_, m) => ({
      typeUrl: MsgRegisterContent.typeUrl,
      value: MsgRegisterContent.fromPartial({
        creator: address,
        contentHash: contentHash(`${job.labelPrefix}/${address}/${sequence}/${m}`),
        license: m % 3 === 0 ? "cc_by" : "liberation_v1",
        aiTrainingPolicy: "prohibited",
        platform: "api",
        owner: `o_bench${(m % 1000).toString().padStart(4, "0")}`,
        fingerprint: `fp-${sequence}-${m}`,
      }),
    }));
    const signed = await client.sign(address, messages, feeFor(job.messagesPerTx), "", {
      accountNumber: BigInt(job.accountNumber),
      sequence,
      chainId: job.chainId,
    });
    const raw = TxRaw.encode(signed).finish();
    out.push({ txBase64: Buffer.from(raw).toString("base64"), hash: createHash("sha256").update(raw).digest("hex").toUpperCase() });
  }
  return out;
}

/** Runs the jobs on up to `threads` worker threads (default: one per core); falls back to this thread if workers cannot start. */
export async function signInWorkers(jobs: SignJob[], threads = cpus().length): Promise<SignedRaw[][]> {
  const count = Math.max(1, Math.min(threads, jobs.length));
  const shares: number[][] = Array.from({ length: count }, () => []);
  for (let index = 0; index < jobs.length; index++) shares[index % count].push(index);
  const results: SignedRaw[][] = new Array(jobs.length);
  try {
    await Promise.all(
      shares.map(async (indexes) => {
        const signed = await runWorker(indexes.map((i) => jobs[i]));
        indexes.forEach((jobIndex, k) => {
          results[jobIndex] = signed[k];
        });
      }),
    );
    return results;
  } catch (error) {
    process.stderr.write(`signing workers failed (${(error as Error).message}); signing on the main thread\n`);
    const out: SignedRaw[][] = [];
    for (const job of jobs) out.push(await signJob(job));
    return out;
  }
}

function runWorker(jobs: SignJob[]): Promise<SignedRaw[][]> {
  // Workers do not inherit tsx's loader on Node 20: register it, then load the TypeScript worker.
  const api = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./sign-worker.ts", import.meta.url).href;
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(entry)});`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: jobs });
  return new Promise((resolve, reject) => {
    worker.once("message", (message: { ok: true; signed: SignedRaw[][] } | { ok: false; error: string }) => {
      void worker.terminate();
      if (message.ok) resolve(message.signed);
      else reject(new Error(message.error));
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`signing worker exited with ${code}`));
    });
  });
}
