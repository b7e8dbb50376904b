import type { ColumnType, Generated } from "kysely";
import type { Timestamp } from "../db/schema.js";

type NullableTimestamp = ColumnType<Date | null, Date | string | null, Date | string | null>;
type Height = ColumnType<string | null, number | null, number | null>;

/** A creator's account: made on the first verified magic link, never listed. */
export interface AccountsTable {
  id: string;
  /** Lower-cased; shown only in the account's own /me. */
  email: string;
  role: "user" | "admin";
  /** The opaque owner id on the ledger (`o_` + 26 base32). */
  owner_id: string;
  created_at: Timestamp;
  /** TOTP secret sealed under ENCRYPTION_KEY; null until enrolment is verified. */
  totp_secret: string | null;
  /** The last accepted TOTP time step: codes at or before it are replays. */
  totp_last_step: ColumnType<string | null, number | null, number | null>;
}

/** Magic links by the SHA-256 of their token; the token itself exists only in the mail. */
export interface MagicLinksTable {
  token_hash: string;
  email: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  /** Set when consumed, or when a newer link voids it. */
  used_at: NullableTimestamp;
}

/** Between a verified magic link and the tokens: the second factor's stage (api.md §3). */
export interface SignInSessionsTable {
  id_hash: string;
  account_id: string;
  stage: "setup" | "verify";
  /** `sign_in` after a magic link; `reset` for a new enrolment of a signed-in account (2fa/reset). */
  purpose: "sign_in" | "reset";
  /** During enrolment: the secret being set up, sealed. */
  pending_secret: string | null;
  failed_codes: number;
  created_at: Timestamp;
  expires_at: Timestamp;
  /** Set once it has issued tokens (single use). */
  completed_at: NullableTimestamp;
}

/** A signed-in device: what access tokens (claim `sid`) and refresh tokens belong to. */
export interface SessionsTable {
  id: string;
  account_id: string;
  created_at: Timestamp;
  revoked_at: NullableTimestamp;
}

/** Refresh tokens by their SHA-256; each is spent by one refresh. */
export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  spent_at: NullableTimestamp;
}

/** Backup codes, scrypt-hashed with a salt shared by one generation. */
export interface BackupCodesTable {
  id: Generated<string>;
  account_id: string;
  salt: string;
  code_hash: string;
  used_at: NullableTimestamp;
}

/** Wrong TOTP or backup codes per account, for the 10 per 15 minutes limit. */
export interface CodeFailuresTable {
  id: Generated<string>;
  account_id: string;
  failed_at: Timestamp;
}

/** Ownership transfers: the outbox of MsgTransferOwnership and, once committed, their history. */
export interface TransfersTable {
  id: string;
  content_hash: string;
  previous_owner: string | null;
  new_owner: string;
  reason: string | null;
  /** pending → submitted (in a broadcast tx) → confirmed; failed if the ledger refuses it. */
  status: "pending" | "submitted" | "confirmed" | "failed";
  tx_hash: string | null;
  block_height: Height;
  block_time: NullableTimestamp;
  created_at: Timestamp;
}

/** This concept's tables, merged into db/schema.ts's Database. */
export interface AccountTables {
  accounts: AccountsTable;
  magic_links: MagicLinksTable;
  sign_in_sessions: SignInSessionsTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  backup_codes: BackupCodesTable;
  code_failures: CodeFailuresTable;
  transfers: TransfersTable;
}
