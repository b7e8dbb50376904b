import type { Kysely } from "kysely";
import { AuditLog } from "../admin/audit-log.js";
import type { CredentialResolver } from "../auth/caller.js";
import type { Database } from "../db/schema.js";
import type { HttpApp } from "../http/app.js";
import { type ApiKeySecrets, PlatformKeys } from "./platform-keys.js";
import { platformProtectOwner } from "./platform-protect.js";
import { type PlatformRequestServices, platformRequests, platformResolver } from "./platform-requests.js";
import { PlatformStore } from "./platform-store.js";
import { PlatformUsers } from "./platform-users.js";
import { Quotas } from "./quotas.js";
import { Signatures } from "./signatures.js";
import { UsageLog } from "./usage.js";

/** Platforms (api.md §4) as the API service wires them: stores, the key resolver, the per-request hooks. */
export class Platforms {
  readonly keys: PlatformKeys;
  readonly audit: AuditLog;
  readonly store: PlatformStore;
  readonly users: PlatformUsers;
  readonly usage: UsageLog;
  /** For `authenticate()`: `DAON_BR_…` keys. */
  readonly resolver: CredentialResolver;
  /** For protect: the platform and owner a platform-key registration is made for. */
  readonly protectOwner: ReturnType<typeof platformProtectOwner>;
  readonly #requests: PlatformRequestServices;

  /** `secrets` is asked at each use, so a reloaded API_KEY_SECRET applies to the next request. */
  constructor(db: Kysely<Database>, secrets: () => ApiKeySecrets) {
    this.keys = new PlatformKeys(db, secrets);
    this.audit = new AuditLog(db);
    this.store = new PlatformStore(db, this.keys, this.audit);
    this.users = new PlatformUsers(db);
    this.usage = new UsageLog(db);
    this.#requests = { keys: this.keys, platforms: this.store, quotas: new Quotas(db), usage: this.usage, signatures: new Signatures(db) };
    this.resolver = platformResolver(this.#requests);
    this.protectOwner = platformProtectOwner(this.users);
  }

  /** Signatures, quotas, usage and headers for every platform-key request (root hooks, so every route gets them). */
  installRequestHooks(app: HttpApp): void {
    platformRequests(app, this.#requests);
  }
}
