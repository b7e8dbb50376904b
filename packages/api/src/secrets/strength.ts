import { createHash } from "node:crypto";

/** How a secret is shown anywhere outside the vault (ops.md §0): 12 hex of SHA-256("daon-fp-v1:" + value). */
export function fingerprint(value: string): string {
  return createHash("sha256").update(`daon-fp-v1:${value}`).digest("hex").slice(0, 12);
}

const WEAK_WORDS = ["changeme", "example", "default", "password", "secret"];
const KNOWN_DEFAULTS = new Set(["dev", "development", "test", "admin", "letmein", "your-secret-here", "supersecret"]);

/**
 * Estimated entropy: length × log2 of the alphabet the value draws from, the alphabet being no
 * larger than the characters it really uses (so "aaaa…" or "abab…" counts as weak).
 */
function entropyBits(value: string): number {
  let alphabet = 0;
  if (/[a-z]/.test(value)) alphabet += 26;
  if (/[A-Z]/.test(value)) alphabet += 26;
  if (/[0-9]/.test(value)) alphabet += 10;
  if (/[^A-Za-z0-9]/.test(value)) alphabet += 32;
  if (/^[0-9a-f]+$/i.test(value)) alphabet = 16;
  const used = new Set(value).size;
  return value.length * Math.log2(Math.max(Math.min(alphabet, used), 1));
}

/** Why a secret is not fit for production (ops.md §3 secrets.strength), or undefined if it is. */
export function secretWeakness(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return "missing";
  if (value.length < 32) return `shorter than 32 characters (${value.length})`;
  const lower = value.toLowerCase();
  if (KNOWN_DEFAULTS.has(lower)) return "a known default";
  const word = WEAK_WORDS.find((w) => lower.includes(w));
  if (word) return `contains "${word}"`;
  const bits = entropyBits(value);
  if (bits < 128) return `under 128 bits of entropy (${Math.floor(bits)})`;
  return undefined;
}

/** The secrets the API needs in production. */
export const PRODUCTION_SECRETS = ["JWT_SECRET", "API_KEY_SECRET", "ENCRYPTION_KEY"] as const;

/** Every problem with the production secrets of a settings object: weak ones, and two that are equal. */
export function productionSecretProblems(
  settings: Partial<Record<string, string | undefined>>,
  names: readonly string[] = PRODUCTION_SECRETS,
): string[] {
  const problems = names.flatMap((name) => {
    const weakness = secretWeakness(settings[name]);
    return weakness ? [`${name} is ${weakness}`] : [];
  });
  const seen = new Map<string, string>();
  for (const name of names) {
    const value = settings[name];
    if (!value) continue;
    const twin = seen.get(value);
    if (twin) problems.push(`${name} equals ${twin}`);
    seen.set(value, name);
  }
  return problems;
}
