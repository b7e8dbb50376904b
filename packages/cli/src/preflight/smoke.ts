import { randomBytes } from "node:crypto";
import { QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse } from "@daon/core";
import { type Check, fail, type PreflightContext, pass, warn } from "./context.js";

const CONFIRM_MS = 60_000;

/** A short-lived smoke key from `/internal/ops/loadtest-key`, so protections stay on and the registration is tagged `smoke`. */
async function smokeKey(context: PreflightContext, url: string): Promise<string | undefined> {
  for (const token of context.opsTokens) {
    const answer = await context
      .http(`${url}/internal/ops/loadtest-key`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ purpose: "smoke", durationSeconds: 120 }),
      })
      .catch(() => undefined);
    const key = (answer?.body as { key?: string } | undefined)?.key;
    if (answer?.status === 201 && key) return key;
  }
  return undefined;
}

async function rpc(context: PreflightContext, method: string, params: Record<string, unknown>) {
  const answer = await context.http(context.rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return answer.body as { result?: Record<string, unknown>; error?: { data?: string } };
}

export const smokeCheck: Check = {
  number: 26,
  id: "smoke",
  timeoutSeconds: 90,
  async run(context) {
    if (!context.options.smoke) return warn("not run (add --smoke: registers one tagged test work)");
    const url = context.apiUrls[0];
    const key = await smokeKey(context, url);
    const content = `[daon-preflight-smoke ${new Date().toISOString()} ${randomBytes(6).toString("hex")}] pre-launch smoke test`;
    const protect = await context
      .http(`${url}/api/v1/protect?wait=false`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ content, metadata: { title: "Preflight smoke test", type: "test" } }),
      })
      .catch((error: Error) => error);
    if (protect instanceof Error) return fail(`POST /api/v1/protect failed: ${protect.message.slice(0, 100)}`);
    const registration = protect.body as { contentHash?: string; ledgerContentHash?: string; error?: { code: string } };
    if (protect.status >= 300 || !registration.contentHash)
      return fail(`POST /api/v1/protect answered ${protect.status} ${registration.error?.code ?? ""}`.trim());

    const started = Date.now();
    let confirmed: { txHash: string; blockHeight: number } | undefined;
    while (!confirmed && Date.now() - started < CONFIRM_MS) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const verify = await context.http(`${url}/api/v1/verify/${registration.contentHash}`).catch(() => undefined);
      const body = verify?.body as { status?: string; txHash?: string; blockHeight?: number } | undefined;
      if (body?.status === "confirmed" && body.txHash) confirmed = { txHash: body.txHash, blockHeight: Number(body.blockHeight) };
    }
    if (!confirmed) return fail(`${registration.contentHash.slice(0, 12)}… not confirmed within ${CONFIRM_MS / 1000} s`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);

    const search = await rpc(context, "tx_search", { query: `tx.hash='${confirmed.txHash.toUpperCase()}'` }).catch(() => undefined);
    const found = Number((search?.result as { total_count?: string } | undefined)?.total_count ?? 0);
    if (found < 1) return fail(`confirmed by the API in ${seconds} s, but tx_search does not find tx ${confirmed.txHash}`);
    const query = await rpc(context, "abci_query", {
      path: QUERY_VERIFY_CONTENT,
      data: Buffer.from(QueryVerifyContentRequest.encode({ contentHash: registration.ledgerContentHash ?? "" }).finish()).toString("hex"),
    }).catch(() => undefined);
    const response = (query?.result as { response?: { code?: number; value?: string } } | undefined)?.response;
    const record =
      response?.code === 0 && response.value ? QueryVerifyContentResponse.decode(Buffer.from(response.value, "base64")) : undefined;
    if (!record?.verified)
      return fail(`confirmed in ${seconds} s, but abci_query does not return the record for ${registration.ledgerContentHash}`);

    const portal = await context.http(`${url}/`).catch(() => undefined);
    if (!portal?.text.includes("DAON"))
      return fail(`registration verified (block ${confirmed.blockHeight}), but the portal at ${url}/ lacks "DAON"`);
    return pass(
      `tagged registration confirmed in ${seconds} s at block ${confirmed.blockHeight}; verified by the API, abci_query and tx_search; portal OK${key ? "" : " (no smoke key: untagged)"}`,
    );
  },
};
