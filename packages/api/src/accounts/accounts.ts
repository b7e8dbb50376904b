import { timingSafeEqual } from "node:crypto";
import type { Kysely, Selectable, Transaction } from "kysely";
import type { Logger } from "pino";
import type { UserCaller } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { ApiError, unavailable, validationError } from "../http/errors.js";
import { type Mailer, MailUnavailable } from "../mail/mailer.js";
import { opaqueId } from "../registrations/registration.js";
import type { Keyring } from "../secrets/keyring.js";
import type { Sealer } from "../secrets/sealing.js";
import { AccessTokens } from "./access-tokens.js";
import {
  enrolment,
  hashBackupCode,
  newBackupCodes,
  newSalt,
  newTotpSecret,
  normalizeBackupCode,
  randomToken,
  tokenHash,
  totpStep,
} from "./codes.js";
import type { AccountsTable } from "./tables.js";

type AccountRow = Selectable<AccountsTable>;

export interface AccountSettings {
  /** Seconds. */
  magicLinkLifetime: number;
  accessTokenLifetime: number;
  refreshTokenLifetime: number;
  /** Comma-separated exact addresses that sign in as administrators. */
  adminEmails: string;
  /** Where the portal serves `/auth/verify`. */
  verificationBaseUrl: string;
}

/** What a signer-in proves with: a TOTP code, or a backup code (in `code` or `backup_code`). */
export interface SecondFactor {
  code?: string;
  backup_code?: string;
}

// api.md §3 and §7.
const SETUP_SESSION_SECONDS = 30 * 60;
const VERIFY_SESSION_SECONDS = 5 * 60;
const WRONG_CODES_PER_SESSION = 5;
const CODE_WINDOW_MS = 15 * 60_000;
const WRONG_CODES_PER_ACCOUNT = 10;
const MAGIC_LINKS_PER_ADDRESS = 3;
const EMAIL = /^[^\s@\p{Cc}]{1,64}@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;

const invalidToken = (message: string) => new ApiError(401, "INVALID_TOKEN", message);
const invalidCode = () => new ApiError(401, "INVALID_CODE", "the code is wrong, expired or already used");
const rateLimited = (message: string, retryAfterMs: number) =>
  new ApiError(429, "RATE_LIMITED", message, undefined, { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });

const publicUser = (account: AccountRow) => ({ id: account.id, email: account.email, role: account.role, owner_id: account.owner_id });

export function normalizeEmail(input: string): string {
  const email = input.trim().toLowerCase();
  if (email.length > 254 || !EMAIL.test(email)) throw validationError([{ field: "email", message: "must be an e-mail address" }]);
  return email;
}

/** Logs see an address only masked: its first character and its domain. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  return `${email.slice(0, 1)}***@${email.slice(at + 1)}`;
}

/**
 * Creators' accounts (api.md §3): passwordless sign-in by magic link, always with a second
 * factor (TOTP, or a single-use backup code), then short access tokens and rotated
 * refresh tokens bound to a revocable session. Bearer secrets are stored only as hashes,
 * TOTP secrets sealed under ENCRYPTION_KEY.
 */
export class Accounts {
  readonly #tokens: AccessTokens;
  readonly #admins: Set<string>;

  /** Secrets come from the keyring at use time: JWT_SECRET(_PREVIOUS) and ENCRYPTION_KEY(_PREVIOUS). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly mailer: Mailer,
    private readonly settings: AccountSettings,
    private readonly log: Logger,
  ) {
    this.#tokens = new AccessTokens(() => keyring.jwt, settings.accessTokenLifetime);
    this.#admins = new Set(
      settings.adminEmails
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    );
  }

  get #sealer(): Sealer {
    const sealer = this.keyring.sealer;
    if (!sealer) throw new Error("ENCRYPTION_KEY is not set");
    return sealer;
  }

  /** Mails a single-use sign-in link; the same answer whether or not the address has an account. */
  async requestMagicLink(address: string, now = new Date()): Promise<void> {
    const email = normalizeEmail(address);
    const windowStart = new Date(now.getTime() - CODE_WINDOW_MS);
    const recent = await this.db
      .selectFrom("magic_links")
      .select("created_at")
      .where("email", "=", email)
      .where("created_at", ">", windowStart)
      .orderBy("created_at")
      .execute();
    if (recent.length >= MAGIC_LINKS_PER_ADDRESS) {
      const retryAfter = new Date(recent[0].created_at).getTime() + CODE_WINDOW_MS - now.getTime();
      throw rateLimited("too many sign-in links for this address; try again later", retryAfter);
    }
    const token = randomToken();
    const hash = tokenHash(token);
    await this.db.transaction().execute(async (trx) => {
      // A new link voids the older ones; links long expired are dropped.
      await trx.updateTable("magic_links").set({ used_at: now }).where("email", "=", email).where("used_at", "is", null).execute();
      await trx
        .deleteFrom("magic_links")
        .where("email", "=", email)
        .where("expires_at", "<", new Date(now.getTime() - 86_400_000))
        .execute();
      await trx
        .insertInto("magic_links")
        .values({
          token_hash: hash,
          email,
          created_at: now,
          expires_at: new Date(now.getTime() + this.settings.magicLinkLifetime * 1000),
          used_at: null,
        })
        .execute();
    });
    // The token rides in the fragment: browsers send it neither to servers nor in Referer.
    const link = `${this.settings.verificationBaseUrl}/auth/verify#token=${token}`;
    const minutes = Math.round(this.settings.magicLinkLifetime / 60);
    try {
      await this.mailer.send({
        to: email,
        subject: "Your DAON sign-in link",
        text: `Sign in to DAON with this link:\n\n${link}\n\nIt works once, for ${minutes} minutes. If you did not ask to sign in, ignore this mail.\n`,
      });
    } catch (error) {
      await this.db.deleteFrom("magic_links").where("token_hash", "=", hash).execute();
      if (error instanceof MailUnavailable) throw unavailable("email", 30);
      throw error;
    }
    this.log.info({ recipient: maskEmail(email) }, "sign-in link sent");
  }

  /** Consumes a magic link (once), makes the account on first use, and opens the second factor's stage. */
  async verifyMagicLink(token: string, now = new Date()) {
    return this.db.transaction().execute(async (trx) => {
      const link = await trx
        .updateTable("magic_links")
        .set({ used_at: now })
        .where("token_hash", "=", tokenHash(token))
        .where("used_at", "is", null)
        .where("expires_at", ">", now)
        .returning("email")
        .executeTakeFirst();
      if (!link) throw invalidToken("this sign-in link is unknown, used or expired");
      // The role follows ADMIN_EMAILS at each sign-in: given there only, and taken back there.
      const role = this.#admins.has(link.email) ? "admin" : "user";
      const account = await trx
        .insertInto("accounts")
        .values({
          id: opaqueId("u"),
          email: link.email,
          role,
          owner_id: opaqueId("o"),
          created_at: now,
          totp_secret: null,
          totp_last_step: null,
        })
        .onConflict((c) => c.column("email").doUpdateSet({ role }))
        .returningAll()
        .executeTakeFirstOrThrow();
      const stage = account.totp_secret ? "verify" : "setup";
      const { sessionId, expiresIn } = await this.#openSignInSession(trx, account.id, stage, "sign_in", null, now);
      return { success: true, requires_2fa: true, stage, session_id: sessionId, expires_in: expiresIn, user: publicUser(account) };
    });
  }

  /** Starts (or restarts) enrolment: a new TOTP secret, shown only now. */
  async setupTwoFactor(sessionId: string, now = new Date()) {
    const { session, account } = await this.#signInSession(sessionId, "setup", now);
    const secret = newTotpSecret();
    await this.db
      .updateTable("sign_in_sessions")
      .set({ pending_secret: this.#sealer.seal(secret) })
      .where("id_hash", "=", session.id_hash)
      .execute();
    return { success: true, ...(await enrolment(secret, account.email)), expires_in: secondsLeft(session.expires_at, now) };
  }

  /** Finishes enrolment with a code from the new secret: tokens, and 10 backup codes shown once. */
  async verifySetup(sessionId: string, code: string, now = new Date()) {
    const { session, account } = await this.#signInSession(sessionId, "setup", now);
    if (!session.pending_secret) throw validationError([{ field: "session_id", message: "call 2fa/setup for this session first" }]);
    await this.#checkCodeBudget(account.id, now);
    const step = totpStep(this.#sealer.open(session.pending_secret), code.trim(), numberOrNull(account.totp_last_step), now.getTime());
    if (step === undefined) return this.#refuseCode(account.id, session.id_hash, now);
    return this.db.transaction().execute(async (trx) => {
      await this.#finishSignInSession(trx, session.id_hash, now);
      const enrolled = await trx
        .updateTable("accounts")
        .set({ totp_secret: session.pending_secret, totp_last_step: step })
        .where("id", "=", account.id)
        .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", String(step))]))
        .returningAll()
        .executeTakeFirst();
      if (!enrolled) throw invalidCode(); // the same step was accepted concurrently
      const backupCodes = await this.#replaceBackupCodes(trx, account.id);
      return { ...(await this.#issueTokens(trx, enrolled, now)), backup_codes: backupCodes };
    });
  }

  /** Signs in an enrolled account with a TOTP or backup code. */
  async completeSignIn(sessionId: string, factor: SecondFactor, now = new Date()) {
    const { session, account } = await this.#signInSession(sessionId, "verify", now);
    await this.#checkCodeBudget(account.id, now);
    if (!(await this.#acceptFactor(account, factor, { backupCodes: true }, now))) return this.#refuseCode(account.id, session.id_hash, now);
    return this.db.transaction().execute(async (trx) => {
      await this.#finishSignInSession(trx, session.id_hash, now);
      return this.#issueTokens(trx, account, now);
    });
  }

  /** Spends a refresh token for new tokens; replaying a spent one revokes its session (it was stolen, or copied). */
  async refresh(refreshToken: string, now = new Date()) {
    const hash = tokenHash(refreshToken);
    const spent = await this.db
      .updateTable("refresh_tokens")
      .set({ spent_at: now })
      .where("token_hash", "=", hash)
      .where("spent_at", "is", null)
      .returning(["session_id", "expires_at"])
      .executeTakeFirst();
    if (!spent) {
      const known = await this.db.selectFrom("refresh_tokens").select("session_id").where("token_hash", "=", hash).executeTakeFirst();
      if (known) {
        await this.db
          .updateTable("sessions")
          .set({ revoked_at: now })
          .where("id", "=", known.session_id)
          .where("revoked_at", "is", null)
          .execute();
        this.log.warn({ sessionId: known.session_id }, "security: a spent refresh token was replayed; its session is revoked");
      }
      throw invalidToken("this refresh token is unknown, spent or expired");
    }
    if (new Date(spent.expires_at) <= now) throw invalidToken("this refresh token is unknown, spent or expired");
    return this.db.transaction().execute(async (trx) => {
      const account = await trx
        .selectFrom("sessions")
        .innerJoin("accounts", "accounts.id", "sessions.account_id")
        .selectAll("accounts")
        .where("sessions.id", "=", spent.session_id)
        .where("sessions.revoked_at", "is", null)
        .executeTakeFirst();
      if (!account) throw invalidToken("this refresh token's session has ended");
      return this.#tokensFor(trx, account, spent.session_id, now);
    });
  }

  /** Ends the session a refresh token belongs to. */
  async logout(refreshToken: string, now = new Date()): Promise<void> {
    const token = await this.db
      .selectFrom("refresh_tokens")
      .select("session_id")
      .where("token_hash", "=", tokenHash(refreshToken))
      .executeTakeFirst();
    if (!token) throw invalidToken("this refresh token is unknown");
    await this.db
      .updateTable("sessions")
      .set({ revoked_at: now })
      .where("id", "=", token.session_id)
      .where("revoked_at", "is", null)
      .execute();
  }

  /** Ends every session of the account, this one included. */
  async logoutAll(user: UserCaller, factor: SecondFactor, now = new Date()): Promise<void> {
    await this.#requireFactor(user, factor, { backupCodes: true }, now);
    await this.db
      .updateTable("sessions")
      .set({ revoked_at: now })
      .where("account_id", "=", user.accountId)
      .where("revoked_at", "is", null)
      .execute();
  }

  async regenerateBackupCodes(user: UserCaller, factor: SecondFactor, now = new Date()): Promise<string[]> {
    await this.#requireFactor(user, factor, { backupCodes: true }, now);
    return this.db.transaction().execute((trx) => this.#replaceBackupCodes(trx, user.accountId));
  }

  /** A new enrolment for a signed-in account; the old secret stays valid until `2fa/verify-setup` finishes this one. */
  async resetTwoFactor(user: UserCaller, factor: SecondFactor, now = new Date()) {
    const account = await this.#requireFactor(user, factor, { backupCodes: true }, now);
    const secret = newTotpSecret();
    const { sessionId, expiresIn } = await this.#openSignInSession(this.db, account.id, "setup", "reset", this.#sealer.seal(secret), now);
    return { success: true, ...(await enrolment(secret, account.email)), expires_in: expiresIn, session_id: sessionId };
  }

  /** A fresh TOTP code (not a backup code), as a transfer asks. */
  async requireFreshTotp(user: UserCaller, code: string, now = new Date()): Promise<void> {
    await this.#requireFactor(user, { code }, { backupCodes: false }, now);
  }

  async me(user: UserCaller) {
    const account = await this.db.selectFrom("accounts").selectAll().where("id", "=", user.accountId).executeTakeFirstOrThrow();
    return { ...publicUser(account), created_at: new Date(account.created_at).toISOString() };
  }

  /**
   * The `user` credential resolver for `authenticate`: a valid access token of a live
   * session → the caller; anything else → undefined (401); expired → TOKEN_EXPIRED.
   */
  readonly resolveUser = async (credential: string): Promise<UserCaller | undefined> => {
    const claims = await this.#tokens.verify(credential);
    if (!claims) return undefined;
    const account = await this.db
      .selectFrom("sessions")
      .innerJoin("accounts", "accounts.id", "sessions.account_id")
      .select(["accounts.id", "accounts.owner_id", "accounts.role"])
      .where("sessions.id", "=", claims.sessionId)
      .where("sessions.account_id", "=", claims.accountId)
      .where("sessions.revoked_at", "is", null)
      .executeTakeFirst();
    if (!account) return undefined;
    return { kind: "user", accountId: account.id, sessionId: claims.sessionId, ownerId: account.owner_id, role: account.role };
  };

  async #openSignInSession(
    db: Kysely<Database>,
    accountId: string,
    stage: "setup" | "verify",
    purpose: "sign_in" | "reset",
    pendingSecret: string | null,
    now: Date,
  ) {
    const sessionId = randomToken();
    const expiresIn = stage === "setup" ? SETUP_SESSION_SECONDS : VERIFY_SESSION_SECONDS;
    await db
      .insertInto("sign_in_sessions")
      .values({
        id_hash: tokenHash(sessionId),
        account_id: accountId,
        stage,
        purpose,
        pending_secret: pendingSecret,
        failed_codes: 0,
        created_at: now,
        expires_at: new Date(now.getTime() + expiresIn * 1000),
        completed_at: null,
      })
      .execute();
    return { sessionId, expiresIn };
  }

  /** A usable sign-in session at the given stage: unknown, finished, expired, locked or elsewhere → INVALID_TOKEN. */
  async #signInSession(sessionId: string, stage: "setup" | "verify", now: Date) {
    const row = await this.db
      .selectFrom("sign_in_sessions")
      .innerJoin("accounts", "accounts.id", "sign_in_sessions.account_id")
      .selectAll("sign_in_sessions")
      .select(["accounts.totp_secret", "accounts.totp_last_step", "accounts.email"])
      .where("id_hash", "=", tokenHash(sessionId))
      .executeTakeFirst();
    if (!row || row.completed_at || new Date(row.expires_at) <= now || row.failed_codes >= WRONG_CODES_PER_SESSION) {
      throw invalidToken("this sign-in session is unknown, finished, expired or locked");
    }
    // A sign-in may enrol only an account without a second factor; replacing one is 2fa/reset's.
    if (row.stage !== stage || (stage === "setup" && row.purpose === "sign_in" && row.totp_secret)) {
      throw invalidToken(`this sign-in session is not at the ${stage} stage`);
    }
    const account = await this.db.selectFrom("accounts").selectAll().where("id", "=", row.account_id).executeTakeFirstOrThrow();
    return { session: row, account };
  }

  async #finishSignInSession(trx: Transaction<Database>, idHash: string, now: Date): Promise<void> {
    const finished = await trx
      .updateTable("sign_in_sessions")
      .set({ completed_at: now, pending_secret: null })
      .where("id_hash", "=", idHash)
      .where("completed_at", "is", null)
      .executeTakeFirst();
    if (Number(finished.numUpdatedRows) !== 1) throw invalidToken("this sign-in session is unknown, finished, expired or locked");
  }

  /** A signed-in account's second factor, for sensitive actions; wrong → INVALID_CODE, counted. */
  async #requireFactor(user: UserCaller, factor: SecondFactor, options: { backupCodes: boolean }, now: Date): Promise<AccountRow> {
    if (!factor.code && !factor.backup_code) throw validationError([{ field: "code", message: "is required" }]);
    const account = await this.db.selectFrom("accounts").selectAll().where("id", "=", user.accountId).executeTakeFirstOrThrow();
    await this.#checkCodeBudget(account.id, now);
    if (!(await this.#acceptFactor(account, factor, options, now))) return this.#refuseCode(account.id, undefined, now);
    return account;
  }

  /** Checks and spends a code: a TOTP step is kept as the last accepted one, a backup code is used up. */
  async #acceptFactor(account: AccountRow, factor: SecondFactor, options: { backupCodes: boolean }, now: Date): Promise<boolean> {
    const code = factor.code?.trim() ?? "";
    if (/^\d{6}$/.test(code)) {
      if (!account.totp_secret) return false;
      const step = totpStep(this.#sealer.open(account.totp_secret), code, numberOrNull(account.totp_last_step), now.getTime());
      if (step === undefined) return false;
      const accepted = await this.db
        .updateTable("accounts")
        .set({ totp_last_step: step })
        .where("id", "=", account.id)
        .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", String(step))]))
        .executeTakeFirst();
      return Number(accepted.numUpdatedRows) === 1;
    }
    if (!options.backupCodes) return false;
    const backupCode = normalizeBackupCode(factor.backup_code ?? code);
    if (!backupCode) return false;
    const unused = await this.db
      .selectFrom("backup_codes")
      .select(["id", "salt", "code_hash"])
      .where("account_id", "=", account.id)
      .where("used_at", "is", null)
      .execute();
    const hashes = new Map<string, Buffer>();
    for (const salt of new Set(unused.map((row) => row.salt))) hashes.set(salt, Buffer.from(await hashBackupCode(backupCode, salt), "hex"));
    const match = unused.find((row) => timingSafeEqual(Buffer.from(row.code_hash, "hex"), hashes.get(row.salt)!));
    if (!match) return false;
    const used = await this.db
      .updateTable("backup_codes")
      .set({ used_at: now })
      .where("id", "=", match.id)
      .where("used_at", "is", null)
      .executeTakeFirst();
    return Number(used.numUpdatedRows) === 1;
  }

  /** At most 10 wrong codes per account per 15 minutes, across sessions and instances. */
  async #checkCodeBudget(accountId: string, now: Date): Promise<void> {
    const failures = await this.db
      .selectFrom("code_failures")
      .select("failed_at")
      .where("account_id", "=", accountId)
      .where("failed_at", ">", new Date(now.getTime() - CODE_WINDOW_MS))
      .orderBy("failed_at")
      .execute();
    if (failures.length >= WRONG_CODES_PER_ACCOUNT) {
      const retryAfter = new Date(failures[0].failed_at).getTime() + CODE_WINDOW_MS - now.getTime();
      throw rateLimited("too many wrong codes for this account; try again later", retryAfter);
    }
  }

  /** Counts a wrong code against the account and the sign-in session (5 lock it), then refuses. */
  async #refuseCode(accountId: string, signInSessionHash: string | undefined, now: Date): Promise<never> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto("code_failures").values({ account_id: accountId, failed_at: now }).execute();
      await trx
        .deleteFrom("code_failures")
        .where("account_id", "=", accountId)
        .where("failed_at", "<", new Date(now.getTime() - CODE_WINDOW_MS))
        .execute();
      if (signInSessionHash) {
        await trx
          .updateTable("sign_in_sessions")
          .set((eb) => ({ failed_codes: eb("failed_codes", "+", 1) }))
          .where("id_hash", "=", signInSessionHash)
          .execute();
      }
    });
    this.log.info({ accountId }, "security: a wrong second-factor code");
    throw invalidCode();
  }

  async #replaceBackupCodes(trx: Transaction<Database>, accountId: string): Promise<string[]> {
    const codes = newBackupCodes();
    const salt = newSalt();
    await trx.deleteFrom("backup_codes").where("account_id", "=", accountId).execute();
    const hashes = await Promise.all(codes.map((code) => hashBackupCode(normalizeBackupCode(code)!, salt)));
    await trx
      .insertInto("backup_codes")
      .values(hashes.map((code_hash) => ({ account_id: accountId, salt, code_hash, used_at: null })))
      .execute();
    return codes;
  }

  /** A new session with its first tokens. */
  async #issueTokens(trx: Transaction<Database>, account: AccountRow, now: Date) {
    const sessionId = opaqueId("s");
    await trx.insertInto("sessions").values({ id: sessionId, account_id: account.id, created_at: now, revoked_at: null }).execute();
    return this.#tokensFor(trx, account, sessionId, now);
  }

  async #tokensFor(trx: Transaction<Database>, account: AccountRow, sessionId: string, now: Date) {
    const refreshToken = randomToken();
    await trx
      .insertInto("refresh_tokens")
      .values({
        token_hash: tokenHash(refreshToken),
        session_id: sessionId,
        created_at: now,
        expires_at: new Date(now.getTime() + this.settings.refreshTokenLifetime * 1000),
        spent_at: null,
      })
      .execute();
    return {
      success: true,
      requires_2fa: false,
      access_token: await this.#tokens.issue(account.id, sessionId),
      refresh_token: refreshToken,
      token_type: "Bearer",
      expires_in: this.settings.accessTokenLifetime,
      user: publicUser(account),
    };
  }
}

const numberOrNull = (value: string | number | null) => (value === null ? null : Number(value));
const secondsLeft = (expiresAt: Date | string, now: Date) =>
  Math.max(0, Math.floor((new Date(expiresAt).getTime() - now.getTime()) / 1000));
