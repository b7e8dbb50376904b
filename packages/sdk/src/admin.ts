import type { Call } from "./accounts.js";
import type { Answer, CallOptions } from "./transport.js";
import type {
  AuditEntry,
  CertificationTier,
  IssuedPlatformKey,
  NewPlatform,
  Page,
  PageQuery,
  Platform,
  PlatformKey,
  PlatformScope,
} from "./types.js";

const data = <T>(answer: Answer<T>): T => {
  const { success: _success, ...rest } = answer.body as T & { success?: boolean };
  return rest as T;
};

export interface PlatformChanges {
  name?: string;
  contact_email?: string;
  certification_tier?: CertificationTier;
  /** Overrides of the tier's quotas; null returns to the tier's. */
  rate_limits?: { hourly?: number | null; daily?: number | null };
  public_key?: string | null;
  require_signature?: boolean;
}

/** Administrators (api.md §6): platforms to approve or suspend, and the audit log. The client must be signed in as an admin. */
export class AdminApi {
  constructor(private readonly call: Call) {}

  async platforms(query: PageQuery & { status?: Platform["certification_status"] } = {}, options?: CallOptions): Promise<Page<Platform>> {
    return data(
      await this.call<Page<Platform>>({ method: "GET", path: "/api/v1/admin/platforms", query: { ...query }, idempotent: true }, options),
    );
  }

  /** Registers a platform (pending) with its first key, shown this once. */
  async createPlatform(
    platform: NewPlatform,
    options?: CallOptions,
  ): Promise<{ broker: Platform; api_key: string; key: PlatformKey; warning: string }> {
    return data(await this.call({ method: "POST", path: "/api/v1/admin/platforms", json: platform }, options));
  }

  async platform(id: string, options?: CallOptions): Promise<{ broker: Platform; api_keys: PlatformKey[] }> {
    return data(await this.call({ method: "GET", path: this.#path(id), idempotent: true }, options));
  }

  async updatePlatform(id: string, changes: PlatformChanges, options?: CallOptions): Promise<Platform> {
    return data(await this.call<{ broker: Platform }>({ method: "PATCH", path: this.#path(id), json: changes }, options)).broker;
  }

  async approve(id: string, options?: CallOptions): Promise<Platform> {
    return data(await this.call<{ broker: Platform }>({ method: "POST", path: `${this.#path(id)}/approve` }, options)).broker;
  }

  /** Suspends a platform: its keys get PLATFORM_NOT_ACTIVE and its webhooks wait. */
  async suspend(id: string, reason: string, options?: CallOptions): Promise<Platform> {
    return data(await this.call<{ broker: Platform }>({ method: "POST", path: `${this.#path(id)}/suspend`, json: { reason } }, options))
      .broker;
  }

  async unsuspend(id: string, options?: CallOptions): Promise<Platform> {
    return data(await this.call<{ broker: Platform }>({ method: "POST", path: `${this.#path(id)}/unsuspend` }, options)).broker;
  }

  async issueKey(
    id: string,
    key: { name?: string; scopes?: PlatformScope[]; expires_in_days?: number } = {},
    options?: CallOptions,
  ): Promise<IssuedPlatformKey> {
    return data(await this.call<IssuedPlatformKey>({ method: "POST", path: `${this.#path(id)}/keys`, json: key }, options));
  }

  async revokeKey(id: string, keyId: string, options?: CallOptions): Promise<PlatformKey> {
    const path = `${this.#path(id)}/keys/${encodeURIComponent(keyId)}`;
    return data(await this.call<{ key: PlatformKey }>({ method: "DELETE", path }, options)).key;
  }

  async auditLog(
    query: PageQuery & { action?: string; target_id?: string; since?: string } = {},
    options?: CallOptions,
  ): Promise<Page<AuditEntry>> {
    return data(
      await this.call<Page<AuditEntry>>({ method: "GET", path: "/api/v1/admin/audit-log", query: { ...query }, idempotent: true }, options),
    );
  }

  #path(id: string): string {
    return `/api/v1/admin/platforms/${encodeURIComponent(id)}`;
  }
}
