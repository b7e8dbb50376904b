import type { Answer, CallOptions, Request } from "./transport.js";
import type { Page, PageQuery, Registration, SignInSession, Tokens, TotpEnrolment, Transfer, User, Wait } from "./types.js";

export type Call = <T>(request: Request, options?: CallOptions) => Promise<Answer<T>>;

/** A second factor: a 6-digit TOTP code or a backup code. */
export type SecondFactor = { code: string } | { backup_code: string };

const data = <T>(answer: Answer<T>): T => {
  const { success: _success, ...rest } = answer.body as T & { success?: boolean };
  return rest as T;
};

const post = (path: string, json: unknown, anonymous = true): Request => ({ method: "POST", path, json, anonymous });

/**
 * Passwordless sign-in (api.md §3): an e-mailed link, then a TOTP code (or enrolment on first use).
 * The calls that end in tokens hand them to the client, which then acts as the account.
 */
export class AuthApi {
  constructor(
    private readonly call: Call,
    private readonly tokens: { set(tokens: Tokens | undefined): void; refreshToken(): string | undefined },
  ) {}

  /** Mails a sign-in link to `<portal>/auth/verify#token=…`; the same answer for unknown addresses. */
  async requestMagicLink(email: string, options?: CallOptions): Promise<{ message: string }> {
    return data(await this.call(post("/api/v1/auth/magic-link", { email }), options));
  }

  /** Spends the link's token: a sign-in session whose `stage` says whether to enrol TOTP (`setup`) or enter a code (`verify`). */
  async verifyMagicLink(token: string, options?: CallOptions): Promise<SignInSession> {
    return data(await this.call(post("/api/v1/auth/verify", { token }), options));
  }

  /** Starts TOTP enrolment: the secret, its otpauth URL and a QR code to scan. */
  async setupTotp(sessionId: string, options?: CallOptions): Promise<TotpEnrolment> {
    return data(await this.call(post("/api/v1/auth/2fa/setup", { session_id: sessionId }), options));
  }

  /** Finishes enrolment with a first code: signed in, with 10 backup codes shown this once. */
  async confirmTotp(sessionId: string, code: string, options?: CallOptions): Promise<Tokens & { backup_codes: string[] }> {
    const tokens = data(
      await this.call<Tokens & { backup_codes: string[] }>(post("/api/v1/auth/2fa/verify-setup", { session_id: sessionId, code }), options),
    );
    this.tokens.set(tokens);
    return tokens;
  }

  /** Signs in with a TOTP or backup code. */
  async completeSignIn(sessionId: string, factor: SecondFactor, options?: CallOptions): Promise<Tokens> {
    const tokens = data(await this.call<Tokens>(post("/api/v1/auth/2fa/complete", { session_id: sessionId, ...factor }), options));
    this.tokens.set(tokens);
    return tokens;
  }

  /** New tokens for the client's refresh token (spent by this call). The client also does this by itself when a token expires. */
  async refresh(options?: CallOptions): Promise<Tokens> {
    const tokens = data(await this.call<Tokens>(post("/api/v1/auth/refresh", { refresh_token: this.#refreshToken() }), options));
    this.tokens.set(tokens);
    return tokens;
  }

  /** Ends this session; the client forgets its tokens. */
  async logout(options?: CallOptions): Promise<void> {
    const refreshToken = this.tokens.refreshToken();
    try {
      if (refreshToken) await this.call(post("/api/v1/auth/logout", { refresh_token: refreshToken }), options);
    } finally {
      this.tokens.set(undefined);
    }
  }

  /** Ends every session of the account (a fresh second factor proves it is the owner); the client forgets its tokens. */
  async logoutEverywhere(factor: SecondFactor, options?: CallOptions): Promise<void> {
    await this.call(post("/api/v1/auth/logout-all", factor, false), options);
    this.tokens.set(undefined);
  }

  /** Ten new backup codes, shown once; the old ones stop working. */
  async regenerateBackupCodes(factor: SecondFactor, options?: CallOptions): Promise<string[]> {
    return data(await this.call<{ backup_codes: string[] }>(post("/api/v1/auth/2fa/backup-codes/regenerate", factor, false), options))
      .backup_codes;
  }

  /** A new TOTP enrolment (finish it with `confirmTotp(session_id, code)`); the old secret works until then. */
  async resetTotp(factor: SecondFactor, options?: CallOptions): Promise<TotpEnrolment & { session_id: string }> {
    return data(await this.call(post("/api/v1/auth/2fa/reset", factor, false), options));
  }

  #refreshToken(): string {
    const token = this.tokens.refreshToken();
    if (!token) throw new TypeError("the client has no refresh token: sign in first");
    return token;
  }
}

/** The signed-in account (api.md §3). */
export class MeApi {
  constructor(private readonly call: Call) {}

  /** The account: id, e-mail, role, owner id. */
  async get(options?: CallOptions): Promise<User> {
    return data(await this.call<{ user: User }>({ method: "GET", path: "/api/v1/me", idempotent: true }, options)).user;
  }

  /** A page of the works the account owns, newest first. */
  async works(page: PageQuery = {}, options?: CallOptions): Promise<Page<Registration>> {
    return data(
      await this.call<Page<Registration>>({ method: "GET", path: "/api/v1/me/works", query: { ...page }, idempotent: true }, options),
    );
  }

  /** Every owned work, page after page. */
  async *allWorks(options?: CallOptions & { pageSize?: number }): AsyncGenerator<Registration> {
    let cursor: string | undefined;
    do {
      const page = await this.works({ limit: options?.pageSize ?? 100, cursor }, options);
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** Transfers a work to another account's owner id, confirmed with a fresh TOTP code. */
  async transfer(hash: string, to: { ownerId: string; code: string }, options: CallOptions & { wait?: Wait } = {}): Promise<Transfer> {
    const answer = await this.call<{ transfer: Transfer }>(
      {
        method: "POST",
        path: `/api/v1/me/works/${encodeURIComponent(hash)}/transfer`,
        query: { wait: options.wait === undefined ? undefined : String(options.wait) },
        json: { to: to.ownerId, code: to.code },
      },
      { ...options, timeoutMs: options.timeoutMs ?? 60_000 },
    );
    return data(answer).transfer;
  }
}
