import { createPublicKey } from "node:crypto";
import type { Selectable } from "kysely";
import type { CertificationTier, PlatformsTable } from "./tables.js";

export type PlatformRow = Selectable<PlatformsTable>;

/** Quotas per certification tier (api.md §4); admins may override either. */
export const TIER_LIMITS: Record<CertificationTier, { hourly: number; daily: number }> = {
  community: { hourly: 100, daily: 1_000 },
  standard: { hourly: 1_000, daily: 10_000 },
  enterprise: { hourly: 10_000, daily: 100_000 },
};

export const TIERS = Object.keys(TIER_LIMITS) as CertificationTier[];

export function quotaLimits(platform: Pick<PlatformRow, "certification_tier" | "hourly_limit" | "daily_limit">) {
  const tier = TIER_LIMITS[platform.certification_tier];
  return { hourly: platform.hourly_limit ?? tier.hourly, daily: platform.daily_limit ?? tier.daily };
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** The platform object of api.md §6, as administrators see it. */
export function platformObject(row: PlatformRow) {
  return {
    id: row.id,
    domain: row.domain,
    name: row.name,
    contact_email: row.contact_email,
    certification_tier: row.certification_tier,
    certification_status: row.certification_status,
    require_signature: row.require_signature,
    public_key: row.public_key,
    rate_limits: { ...quotaLimits(row), custom: row.hourly_limit !== null || row.daily_limit !== null },
    created_at: iso(row.created_at),
    approved_at: iso(row.approved_at),
    suspended_at: iso(row.suspended_at),
    suspend_reason: row.suspend_reason,
  };
}

/** The platform object as the platform itself sees it: contact addresses are for administrators only (api.md §7). */
export function ownPlatformObject(row: PlatformRow) {
  const { contact_email: _contact, ...visible } = platformObject(row);
  return visible;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A platform's domain, lowercased: a DNS name with at least two labels. Undefined if it is none. */
export function normaliseDomain(domain: string): string | undefined {
  const lower = domain.trim().toLowerCase().replace(/\.$/, "");
  const labels = lower.split(".");
  if (lower.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)) return undefined;
  return lower;
}

/** Whether a string is an Ed25519 public key as base64 SPKI DER (what signatures are checked against). */
export function isEd25519PublicKey(value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  try {
    return createPublicKey({ key: Buffer.from(value, "base64"), format: "der", type: "spki" }).asymmetricKeyType === "ed25519";
  } catch {
    return false;
  }
}

/** A platform user: `[A-Za-z0-9_-]{1,255}`. */
export const USERNAME = /^[A-Za-z0-9_-]{1,255}$/;
