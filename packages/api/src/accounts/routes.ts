import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Kysely } from "kysely";
import { Type } from "typebox";
import { requireUser } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import { validationError } from "../http/errors.js";
import type { Confirmations } from "../ledger/confirmations.js";
import type { Indexer } from "../ledger/indexer.js";
import { contentHashOf } from "../registrations/protect-input.js";
import { registrationObject } from "../registrations/registration.js";
import { waitMs } from "../registrations/routes.js";
import type { Accounts } from "./accounts.js";
import { awaitTransfer, requestTransfer, transferObject } from "./transfers.js";
import { worksOf } from "./works.js";

export interface AccountRoutesOptions {
  accounts: Accounts;
  db: Kysely<Database>;
  confirmations: Confirmations;
  indexer: Indexer;
  chainId: string;
  verificationBaseUrl: string;
  protectWaitMs: number;
}

const FIFTEEN_MINUTES = 15 * 60_000;
const OWNER_ID = /^o_[a-z2-7]{26}$/;

// Request bodies: bounded strings; the domain checks their form.
const Secret = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });
const SessionId = Secret("from auth/verify or 2fa/reset");
const Code = Type.String({ minLength: 1, maxLength: 32, description: "a 6-digit TOTP code, or a backup code XXXX-XXXX" });
const BackupCode = Type.String({ minLength: 1, maxLength: 32, description: "a backup code XXXX-XXXX" });

// Answers (snake_case, as account objects were before).
const User = Type.Object({ id: Type.String(), email: Type.String(), role: Type.String(), owner_id: Type.String() });
const Success = Type.Object({ success: Type.Boolean() });
const SignIn = Type.Object({
  success: Type.Boolean(),
  requires_2fa: Type.Boolean(),
  stage: Type.String({ description: "setup (enrol a TOTP app) or verify (enter a code)" }),
  session_id: Type.String(),
  expires_in: Type.Integer(),
  user: User,
});
const Enrolment = Type.Object({
  success: Type.Boolean(),
  secret: Type.String(),
  otpauth_url: Type.String(),
  qr_code: Type.String({ description: "PNG data URL of the otpauth URL" }),
  manual_entry_key: Type.String(),
  expires_in: Type.Integer(),
  session_id: Type.Optional(Type.String()),
});
const Tokens = Type.Object({
  success: Type.Boolean(),
  requires_2fa: Type.Boolean(),
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.String(),
  expires_in: Type.Integer(),
  user: User,
  backup_codes: Type.Optional(Type.Array(Type.String(), { description: "shown once, after enrolment" })),
});
const BackupCodes = Type.Object({ success: Type.Boolean(), backup_codes: Type.Array(Type.String()) });
const Me = Type.Object({
  success: Type.Boolean(),
  user: Type.Object({ ...User.properties, created_at: Type.String() }),
});
const Registration = Type.Object({}, { additionalProperties: true, description: "The registration object (api.md §2.2)" });
const Works = Type.Object({
  success: Type.Boolean(),
  items: Type.Array(Registration),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
const Nullable = <T extends ReturnType<typeof Type.String>>(type: T) => Type.Union([type, Type.Null()]);
const Transfer = Type.Object({
  success: Type.Boolean(),
  transfer: Type.Object({
    id: Type.String(),
    contentHash: Type.String(),
    previousOwner: Nullable(Type.String()),
    newOwner: Type.String(),
    status: Type.String(),
    blockHeight: Type.Union([Type.Integer(), Type.Null()]),
    txHash: Nullable(Type.String()),
    timestamp: Type.String(),
  }),
});

/** Accounts (api.md §3): sign-in under /api/v1/auth, the signed-in creator under /api/v1/me. */
export const accountRoutes: FastifyPluginAsyncTypebox<AccountRoutesOptions> = async (app, options) => {
  const { accounts } = options;
  // Credentials and personal data: no cache keeps them (api.md §7).
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("Cache-Control", "no-store");
    return payload;
  });
  const auth = (summary: string) => ({ summary, tags: ["accounts"] });
  const signedIn = (summary: string) => ({ ...auth(summary), description: "Requires `Authorization: Bearer <access token>`." });

  app.post(
    "/api/v1/auth/magic-link",
    {
      config: { rateLimit: { max: 5, timeWindow: FIFTEEN_MINUTES } },
      schema: {
        ...auth("Mail a single-use sign-in link (the same answer for unknown addresses)"),
        body: Type.Object({ email: Type.String({ maxLength: 320 }) }),
        response: { 202: Type.Object({ success: Type.Boolean(), message: Type.String() }) },
      },
    },
    async (request, reply) => {
      await accounts.requestMagicLink(request.body.email);
      return reply.code(202).send({ success: true, message: "if the address can sign in, a link is on its way" });
    },
  );

  app.post(
    "/api/v1/auth/verify",
    {
      config: { rateLimit: { max: 20, timeWindow: FIFTEEN_MINUTES } },
      schema: {
        ...auth("Use a magic link's token: opens the second factor's stage"),
        body: Type.Object({ token: Secret("the token from the link's fragment") }),
        response: { 200: SignIn },
      },
    },
    (request) => accounts.verifyMagicLink(request.body.token),
  );

  app.post(
    "/api/v1/auth/2fa/setup",
    {
      schema: {
        ...auth("Start TOTP enrolment: the secret, its otpauth URL and QR code"),
        body: Type.Object({ session_id: SessionId }),
        response: { 200: Enrolment },
      },
    },
    (request) => accounts.setupTwoFactor(request.body.session_id),
  );

  app.post(
    "/api/v1/auth/2fa/verify-setup",
    {
      schema: {
        ...auth("Finish enrolment with a code: tokens and 10 backup codes (shown once)"),
        body: Type.Object({ session_id: SessionId, code: Code }),
        response: { 200: Tokens },
      },
    },
    (request) => accounts.verifySetup(request.body.session_id, request.body.code),
  );

  app.post(
    "/api/v1/auth/2fa/complete",
    {
      schema: {
        ...auth("Sign in with a TOTP or backup code: tokens"),
        body: Type.Object({ session_id: SessionId, code: Type.Optional(Code), backup_code: Type.Optional(BackupCode) }),
        response: { 200: Tokens },
      },
    },
    (request) => {
      const { session_id, code, backup_code } = request.body;
      if (!code && !backup_code) throw validationError([{ field: "code", message: "send code or backup_code" }]);
      return accounts.completeSignIn(session_id, { code, backup_code });
    },
  );

  app.post(
    "/api/v1/auth/refresh",
    {
      schema: {
        ...auth("New tokens for a refresh token, which is spent"),
        body: Type.Object({ refresh_token: Secret("the refresh token") }),
        response: { 200: Tokens },
      },
    },
    (request) => accounts.refresh(request.body.refresh_token),
  );

  app.post(
    "/api/v1/auth/logout",
    {
      schema: {
        ...auth("End the session a refresh token belongs to"),
        body: Type.Object({ refresh_token: Secret("the refresh token") }),
        response: { 200: Success },
      },
    },
    async (request) => {
      await accounts.logout(request.body.refresh_token);
      return { success: true };
    },
  );

  const factorBody = Type.Object({ code: Type.Optional(Code), backup_code: Type.Optional(BackupCode) });

  app.post(
    "/api/v1/auth/logout-all",
    {
      schema: {
        ...signedIn("End every session of the account"),
        body: factorBody,
        response: { 200: Success },
      },
    },
    async (request) => {
      await accounts.logoutAll(requireUser(request), request.body);
      return { success: true };
    },
  );

  app.post(
    "/api/v1/auth/2fa/backup-codes/regenerate",
    {
      schema: {
        ...signedIn("New backup codes (shown once); the old ones are void"),
        body: factorBody,
        response: { 200: BackupCodes },
      },
    },
    async (request) => ({ success: true, backup_codes: await accounts.regenerateBackupCodes(requireUser(request), request.body) }),
  );

  app.post(
    "/api/v1/auth/2fa/reset",
    {
      schema: {
        ...signedIn("A new TOTP enrolment; the old secret works until 2fa/verify-setup finishes it"),
        body: factorBody,
        response: { 200: Enrolment },
      },
    },
    (request) => accounts.resetTwoFactor(requireUser(request), request.body),
  );

  app.get(
    "/api/v1/me",
    {
      schema: {
        ...signedIn("The signed-in account"),
        response: { 200: Me },
      },
    },
    async (request) => ({ success: true, user: await accounts.me(requireUser(request)) }),
  );

  app.get(
    "/api/v1/me/works",
    {
      schema: {
        ...signedIn("The works the account owns, newest first"),
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: Works },
      },
    },
    async (request) => {
      const user = requireUser(request);
      const page = await worksOf(options.db, user.ownerId, request.query);
      return {
        success: true,
        items: page.items.map((row) =>
          registrationObject(row, { chainId: options.chainId, verificationBaseUrl: options.verificationBaseUrl, existing: true }),
        ),
        nextCursor: page.nextCursor,
      };
    },
  );

  app.post(
    "/api/v1/me/works/:hash/transfer",
    {
      schema: {
        ...signedIn("Transfer a work to another owner id, with a fresh TOTP code"),
        params: Type.Object({ hash: Type.String({ maxLength: 200 }) }),
        querystring: Type.Object({ wait: Type.Optional(Type.String({ maxLength: 8 })) }),
        body: Type.Object({
          to: Type.String({ maxLength: 200, description: "the recipient's owner_id" }),
          code: Type.String({ maxLength: 32, description: "a fresh 6-digit TOTP code" }),
        }),
        response: { 201: Transfer, 202: Transfer },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const contentHash = contentHashOf({ kind: "hash", contentHash: request.params.hash });
      const { to, code } = request.body;
      if (!OWNER_ID.test(to)) throw validationError([{ field: "to", message: "must be an owner id (o_ and 26 base32 characters)" }]);
      if (to === user.ownerId) throw validationError([{ field: "to", message: "is already the owner" }]);
      const wait = waitMs(request.query.wait, options.protectWaitMs);
      // Checked before the code is spent, so a refusal does not cost the creator a TOTP step.
      const registration = await options.db
        .selectFrom("registrations")
        .select(["owner_id", "status"])
        .where("content_hash", "=", contentHash)
        .executeTakeFirst();
      if (registration?.owner_id === user.ownerId && registration.status === "confirmed") {
        const inFlight = await options.db
          .selectFrom("transfers")
          .select("id")
          .where("content_hash", "=", contentHash)
          .where("status", "in", ["pending", "submitted"])
          .executeTakeFirst();
        if (!inFlight) await accounts.requireFreshTotp(user, code);
      }
      // Refuses NOT_OWNER, NOT_CONFIRMED or TRANSFER_PENDING (the code was not asked for then).
      const transfer = await requestTransfer(options.db, { contentHash, previousOwner: user.ownerId, newOwner: to });
      const latest = await awaitTransfer(
        { db: options.db, confirmations: options.confirmations, ledgerDown: Boolean(options.indexer.lastError) },
        transfer,
        wait,
      );
      return reply.code(latest.status === "confirmed" ? 201 : 202).send({ success: true, transfer: transferObject(latest) });
    },
  );
};
