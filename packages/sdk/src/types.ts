/** The answers of the API (api.md), as the SDK returns them. Content answers are camelCase, account/platform objects snake_case. */

export type Licence =
  | "liberation_v1"
  | "cc0"
  | "cc-by"
  | "cc-by-sa"
  | "cc-by-nc"
  | "cc-by-nc-sa"
  | "cc-by-nd"
  | "all-rights-reserved"
  | "copyright"
  | "public-domain"
  | (string & {});
export type AiTrainingPolicy = "prohibited" | "contact_required" | "open";

export interface WorkMetadata {
  title?: string;
  description?: string;
  author?: string;
  type?: string;
  /** Public: it goes on the ledger. */
  fingerprint?: string;
  [extra: string]: unknown;
}

/** Terms a registration carries; all optional (api.md §2.2 defaults apply). */
export interface ProtectFields {
  metadata?: WorkMetadata;
  license?: Licence | null;
  ai_training_policy?: AiTrainingPolicy;
  licensing_email?: string | null;
  licensing_uri?: string | null;
}

/** `wait`: true (the server's default wait), false (answer at once, pending), or seconds up to 30. */
export type Wait = boolean | number;

/** The registration object (api.md §2.2). */
export interface Registration {
  contentHash: string;
  ledgerContentHash: string;
  verificationUrl: string;
  protectionId: string;
  timestamp: string;
  license: string;
  ai_training_policy: AiTrainingPolicy;
  licensing_email: string | null;
  licensing_uri: string | null;
  metadata: WorkMetadata;
  owner: string | null;
  ownerIdentity?: string;
  status: "confirmed" | "pending";
  blockHeight: number | null;
  txHash: string | null;
  blockTime: string | null;
  chainId: string;
  existing: boolean;
  blockchain: { enabled: true; verified: boolean; source: "blockchain" | "database"; height: number | null; txHash: string | null };
}

/** What protect answers: the registration, and whether this call created it (201/202) or found it (200). */
export interface ProtectResult extends Registration {
  /** HTTP status: 201 confirmed, 202 pending, 200 already registered. */
  httpStatus: 200 | 201 | 202;
}

export type Verification =
  | (Registration & { isValid: true; matchedBy?: "canonical" | "raw" | "file" })
  | { isValid: false; contentHash: string };

export interface BulkItem extends ProtectFields {
  content?: string;
  contentHash?: string;
  username?: string;
}

export interface BulkResult {
  total: number;
  created: number;
  existing: number;
  failed: number;
  protected: number;
  results: (
    | ({ index: number; success: true } & Registration)
    | { index: number; success: false; error: { code: string; message: string; details?: Record<string, unknown> } }
  )[];
}

export interface HistoryEvent {
  type: "registered" | "transferred";
  owner?: string | null;
  from?: string | null;
  to?: string | null;
  status: string;
  blockHeight: number | null;
  txHash: string | null;
  blockTime: string | null;
}

export interface History {
  contentHash: string;
  currentOwner: string | null;
  registeredAt: string;
  events: HistoryEvent[];
}

export interface Stats {
  timestamp: string;
  stats: {
    totalProtected: number;
    confirmed: number;
    pending: number;
    last24h: number;
    byLicense: Record<string, number>;
    byAiTrainingPolicy: Record<string, number>;
    chainId: string;
    latestHeight: number | null;
    latestBlockTime: string | null;
    indexedHeight: number;
    outboxPending: number;
    recentProtections: {
      contentHash: string;
      status: string;
      license: string;
      ai_training_policy: string;
      timestamp: string;
      blockHeight: number | null;
    }[];
  };
}

export type CheckStatus = "up" | "down" | "degraded" | "not_configured";

export interface Health {
  status: "healthy" | "degraded" | "unhealthy" | "draining";
  version: string;
  commit: string;
  instance: string;
  uptime: number;
  timestamp: string;
  chainId: string;
  height: number | null;
  maintenance: boolean;
  checks: Record<string, { status: CheckStatus; [field: string]: unknown }>;
}

export interface ServiceInfo {
  name: string;
  version: string;
  build: { commit: string; builtAt: string };
  chainId: string;
  docs: string;
  openapi: string;
}

/** The chain's validators as its genesis names them: the trust anchor for offline proof checks. */
export interface GenesisValidators {
  chainId: string;
  genesisTime: string;
  validators: { address: string; pub_key: { type: string; value: string }; power: string; name: string }[];
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageQuery {
  limit?: number;
  cursor?: string;
}

// Accounts (api.md §3).

export interface User {
  id: string;
  email: string;
  role: "user" | "admin";
  owner_id: string;
  created_at?: string;
}

export interface Tokens {
  requires_2fa: false;
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  expires_in: number;
  user: User;
}

export interface SignInSession {
  requires_2fa: true;
  stage: "setup" | "verify";
  session_id: string;
  expires_in: number;
  user: Pick<User, "id" | "email" | "role" | "owner_id"> & Partial<User>;
}

export interface TotpEnrolment {
  secret: string;
  otpauth_url: string;
  /** A `data:image/png;base64,…` QR code of `otpauth_url`. */
  qr_code: string;
  manual_entry_key: string;
  expires_in: number;
  session_id?: string;
}

export interface Transfer {
  id: string;
  contentHash: string;
  previousOwner: string | null;
  newOwner: string;
  status: "pending" | "confirmed" | (string & {});
  blockHeight: number | null;
  txHash: string | null;
  timestamp: string;
  reason?: string | null;
}

// Platforms (api.md §4).

export type PlatformScope = "broker:register" | "broker:verify" | "broker:transfer" | "broker:webhooks";
export type CertificationTier = "community" | "standard" | "enterprise";

export interface Platform {
  id: string;
  domain: string;
  name: string;
  contact_email?: string;
  certification_tier: CertificationTier;
  certification_status: "pending" | "active" | "suspended";
  require_signature: boolean;
  public_key?: string | null;
  rate_limits: { hourly: number; daily: number; custom?: boolean };
  created_at: string;
  approved_at: string | null;
  suspended_at: string | null;
  suspend_reason: string | null;
}

export interface PlatformKey {
  id: string;
  name: string;
  prefix: string;
  scopes: PlatformScope[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  status: "active" | "revoked" | "expired";
}

/** A key as created: the only time `api_key` (the secret) is shown. */
export interface IssuedPlatformKey {
  api_key: string;
  key: PlatformKey;
  /** On rotation: the caller's key, now expiring after the overlap. */
  previous_key?: PlatformKey;
  warning: string;
}

export interface UsageRow {
  endpoint?: string;
  method?: string;
  hour?: string;
  total_requests: number;
  total_success: number;
  total_errors: number;
  avg_response_time: number;
}

export interface Usage {
  start_date?: string;
  end_date?: string;
  summary: { total_requests: number; total_success: number; total_errors: number; avg_response_time: number };
  usage: UsageRow[];
}

// Webhooks (api.md §5).

export type WebhookEvent = "content.protected" | "content.confirmed" | "content.transferred" | "webhook.test";

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  enabled: boolean;
  description: string | null;
  created_at: string;
  last_triggered_at: string | null;
  max_retries: number;
  retry_delay_seconds: number;
}

export interface NewWebhook {
  url: string;
  events: WebhookEvent[];
  secret?: string;
  description?: string;
  customHeaders?: Record<string, string>;
  maxRetries?: number;
  retryDelaySeconds?: number;
}

export interface WebhookDelivery {
  id: string;
  event: string;
  status: "pending" | "retrying" | "success" | "dead";
  attempts: number;
  created_at: string;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  finished_at: string | null;
  attempt_log: { attempted_at: string; success: boolean; status_code: number | null; error: string | null; duration_ms: number | null }[];
}

export interface WebhookStats {
  deliveries: { total: number; pending: number; retrying: number; success: number; dead: number };
  attempts: { total: number; succeeded: number; failed: number; last_24h: number; failed_last_24h: number };
  success_rate: number | null;
  avg_duration_ms: number | null;
  last_triggered_at: string | null;
  last_success_at: string | null;
  last_failure_at: string | null;
}

/** A webhook as created: `secret` only when the server generated it (shown once). */
export interface CreatedWebhook {
  webhook: Webhook;
  secret?: string;
  warning?: string;
}

/** The platform and key a platform key belongs to, with the quota left. */
export interface PlatformIdentity {
  broker: Platform;
  api_key: { id: string; prefix: string; name: string; scopes: PlatformScope[]; expires_at: string | null };
  rate_limits: Record<string, unknown> | null;
}

export interface WebhookTestResult {
  delivered: boolean;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

// Admin (api.md §6).

export interface NewPlatform {
  domain: string;
  name: string;
  contact_email: string;
  certification_tier: CertificationTier;
  public_key?: string;
  require_signature?: boolean;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown> | null;
  ip: string | null;
  request_id: string | null;
}
