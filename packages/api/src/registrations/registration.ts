import { randomBytes } from "node:crypto";
import { licenceFromLedger, toLedgerHash } from "@daon/core";
import type { Selectable } from "kysely";
import type { RegistrationsTable } from "../db/schema.js";

export type RegistrationRow = Selectable<RegistrationsTable>;

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Opaque ids: a prefix and 26 base32 characters (130 random bits). */
export function opaqueId(prefix: string): string {
  const bytes = randomBytes(26);
  return `${prefix}_${Array.from(bytes, (b) => BASE32[b & 31]).join("")}`;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** The registration object of api.md §2.2, as protect, verify and lists answer it. */
export function registrationObject(row: RegistrationRow, context: { chainId: string; verificationBaseUrl: string; existing: boolean }) {
  const confirmed = row.status === "confirmed";
  const height = row.block_height === null ? null : Number(row.block_height);
  return {
    contentHash: row.content_hash,
    ledgerContentHash: toLedgerHash(row.content_hash),
    verificationUrl: `${context.verificationBaseUrl}/verify/sha256:${row.content_hash}`,
    protectionId: row.protection_id,
    timestamp: iso(row.created_at),
    license: row.license,
    ai_training_policy: row.ai_training_policy,
    licensing_email: row.licensing_email,
    licensing_uri: row.licensing_uri,
    metadata: row.metadata,
    owner: row.owner_id,
    status: row.status,
    blockHeight: height,
    txHash: row.tx_hash,
    blockTime: iso(row.block_time),
    chainId: context.chainId,
    existing: context.existing,
    blockchain: { enabled: true, verified: confirmed, source: confirmed ? "blockchain" : "database", height, txHash: row.tx_hash },
  };
}

export type Registration = ReturnType<typeof registrationObject>;

export { licenceFromLedger };
