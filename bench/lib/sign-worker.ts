import { parentPort, workerData } from "node:worker_threads";
import { type SignedRaw, type SignJob, signJob } from "./signing.js";

const jobs = workerData as SignJob[];
try {
  const signed: SignedRaw[][] = [];
  for (const job of jobs) signed.push(await signJob(job));
  parentPort?.postMessage({ ok: true, signed });
} catch (error) {
  parentPort?.postMessage({ ok: false, error: (error as Error).stack ?? String(error) });
}
