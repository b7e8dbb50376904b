export { AuthApi, MeApi, type SecondFactor } from "./accounts.js";
export { AdminApi, type PlatformChanges } from "./admin.js";
export { DaonClient, type DaonClientOptions, type FileFields, type HashWork, type ProtectOptions, type TextWork } from "./client.js";
export {
  bytesOf,
  canonicaliseText,
  ContentError,
  type ContentErrorCode,
  type FileInput,
  hashBytes,
  hashFile,
  hashRawText,
  hashText,
  parseContentHash,
  toLedgerHash,
} from "./content.js";
export {
  type ApiErrorCode,
  DaonAbortError,
  DaonApiError,
  DaonError,
  DaonNetworkError,
  DaonTimeoutError,
  WebhookSignatureError,
} from "./errors.js";
export { ed25519Signer, PlatformApi, type PlatformWork, type RequestSigner, WebhooksApi } from "./platforms.js";
export {
  type GenesisLike,
  type ProofBundle,
  ProofError,
  type TrustedValidator,
  trustedValidator,
  type VerifiedBundle,
  verifyProof,
  verifyProofBundle,
} from "./proofs.js";
export { type CallOptions, parseRetryAfter, type RetryPolicy } from "./transport.js";
export type * from "./types.js";
export { type HeadersLike, type VerifiedWebhook, verifyWebhook, type WebhookPayload, webhookSignature } from "./webhook-signatures.js";
