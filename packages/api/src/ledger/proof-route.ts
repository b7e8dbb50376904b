import { ContentRecord, headerFromJson, MsgRegisterContent, type ProofBundle, toLedgerHash, verifyRegistrationProof } from "@daon/core";
import { CommitmentProof } from "cosmjs-types/cosmos/ics23/v1/proofs";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { TxBody, TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { Type } from "typebox";
import { ApiError, unavailable } from "../http/errors.js";
import { contentHashOf } from "../registrations/protect-input.js";
import type { RegistrationStore } from "../registrations/registration-store.js";
import type { LedgerClient } from "./ledger-client.js";

interface CommitResult {
  signed_header: { header: ProofBundle["stateHeader"]; commit: ProofBundle["stateCommit"] };
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const NEXT_BLOCK_WAIT_MS = 8000;

/** `GET /api/v1/proof/:hash`: a bundle `core.verifyProofBundle` checks offline (DESIGN decision 6). */
export const proofRoutes: FastifyPluginAsyncTypebox<{ store: RegistrationStore; ledger: LedgerClient; chainId: string }> = async (
  app,
  { store, ledger, chainId },
) => {
  app.get(
    "/api/v1/proof/:hash",
    {
      schema: {
        summary: "Proof bundle of a registration, or with ?absent=true of its absence, for offline verification",
        tags: ["content"],
        params: Type.Object({ hash: Type.String({ maxLength: 200 }) }),
        querystring: Type.Object({ absent: Type.Optional(Type.Boolean()) }),
      },
    },
    async (request) => {
      const contentHash = contentHashOf({ kind: "hash", contentHash: request.params.hash });
      const row = await store.find(contentHash);
      if (!row && !request.query.absent) throw new ApiError(404, "NOT_FOUND", `no registration for ${contentHash}`);
      if (row && row.status !== "confirmed")
        throw new ApiError(409, "NOT_CONFIRMED", "the registration is not on the ledger yet", undefined, { "Retry-After": "2" });
      try {
        return await buildBundle(ledger, chainId, contentHash, row?.tx_hash ?? undefined);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        request.log.warn({ err: error }, "proof bundle: ledger unavailable");
        throw unavailable("ledger");
      }
    },
  );
};

async function buildBundle(
  ledger: LedgerClient,
  chainId: string,
  contentHash: string,
  txHash: string | undefined,
): Promise<ProofBundle & { success: true }> {
  const ledgerHash = toLedgerHash(contentHash);
  const state = await ledger.verifyContent(ledgerHash, true);
  const op = state.proof?.ops[0];
  if (!op) throw new Error("the ledger returned no proof");
  const { stateHeight, stateCommit } = await headerCommittingTo(ledger, state.height, ledgerHash, op);
  const validators = (await ledger.rpcJson<{ validators: ProofBundle["validators"] }>("validators", { height: String(stateHeight + 1) }))
    .validators;
  const base = {
    success: true as const,
    version: "daon-proof-v1" as const,
    chainId,
    contentHash,
    validators,
    stateProof: { height: stateHeight, key: b64(op.key), value: "", proofOps: [{ type: op.type, key: b64(op.key), data: b64(op.data) }] },
    stateHeader: stateCommit.signed_header.header,
    stateCommit: stateCommit.signed_header.commit,
  };
  if (!state.response.verified) {
    if (txHash) throw new Error("the read model says confirmed but the ledger has no record");
    return { ...base, present: false };
  }
  const recordBytes = CommitmentProof.decode(op.data).exist?.value ?? new Uint8Array();
  const record = ContentRecord.decode(recordBytes);
  const tx = await ledger.rpcJson<{
    hash: string;
    height: string;
    index: number;
    tx: string;
    proof: { root_hash: string; proof: { total: string; index: string; leaf_hash: string; aunts: string[] } };
  }>("tx", {
    hash: Buffer.from(record.txHash, "hex").toString("base64"),
    prove: true,
  });
  const body = TxBody.decode(TxRaw.decode(Buffer.from(tx.tx, "base64")).bodyBytes);
  const msgIndex = body.messages.findIndex(
    (m) => m.typeUrl === MsgRegisterContent.typeUrl && MsgRegisterContent.decode(m.value).contentHash === ledgerHash,
  );
  const block = await commitAt(ledger, Number(tx.height));
  return {
    ...base,
    present: true,
    record: { ...record, timestamp: String(record.timestamp), height: String(record.height) },
    tx: { hash: tx.hash, height: Number(tx.height), index: tx.index, msgIndex, raw: tx.tx },
    txProof: {
      rootHash: tx.proof.root_hash,
      total: Number(tx.proof.proof.total),
      index: Number(tx.proof.proof.index),
      leafHash: tx.proof.proof.leaf_hash,
      aunts: tx.proof.proof.aunts,
    },
    header: block.signed_header.header,
    commit: block.signed_header.commit,
    stateProof: { ...base.stateProof, value: b64(recordBytes) },
  };
}

/**
 * The signed header whose app hash the proof (queried at `height`) verifies against: header
 * `height` itself when the block at `height` changed no state, else header `height + 1`.
 */
async function headerCommittingTo(
  ledger: LedgerClient,
  height: number,
  ledgerHash: string,
  op: { type: string; key: Uint8Array; data: Uint8Array },
) {
  const latest = await commitAt(ledger, height);
  try {
    verifyRegistrationProof(headerFromJson(latest.signed_header.header).appHash, ledgerHash, op);
    return { stateHeight: height - 1, stateCommit: latest };
  } catch {
    return { stateHeight: height, stateCommit: await commitAt(ledger, height + 1) };
  }
}

/** The signed header of `height`, waiting briefly for it when it is the block after the latest. */
async function commitAt(ledger: LedgerClient, height: number): Promise<CommitResult> {
  const deadline = Date.now() + NEXT_BLOCK_WAIT_MS;
  for (;;) {
    try {
      return await ledger.rpcJson<CommitResult>("commit", { height: String(height) });
    } catch (error) {
      if (Date.now() > deadline || !/less than or equal to the current blockchain height/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
