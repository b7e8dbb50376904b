import { EventEmitter } from "node:events";
import { type SealingKey, Sealer, sealingKey } from "./sealing.js";
import { fingerprint } from "./strength.js";

/** The rotatable secrets (ops.md §8), as named in `.env`. */
export interface KeyringSettings {
  JWT_SECRET?: string;
  JWT_SECRET_PREVIOUS?: string;
  API_KEY_SECRET?: string;
  API_KEY_SECRET_PREVIOUS?: string;
  ENCRYPTION_KEY?: string;
  ENCRYPTION_KEY_PREVIOUS?: string;
}

/** A secret and, while a rotation overlaps, the one it replaced (still accepted, never used for new values). */
export interface RotatingSecret {
  current: string | undefined;
  previous: string | undefined;
}

export const KEYRING_NAMES = [
  "JWT_SECRET",
  "JWT_SECRET_PREVIOUS",
  "API_KEY_SECRET",
  "API_KEY_SECRET_PREVIOUS",
  "ENCRYPTION_KEY",
  "ENCRYPTION_KEY_PREVIOUS",
] as const;

/**
 * The one place the running API reads its rotatable secrets from. Code that signs tokens,
 * hashes platform keys or seals secrets keeps a reference to the keyring and asks it at
 * use time (never copies a value), so SIGHUP's `reload` takes effect on the next request
 * without a restart.
 */
export class Keyring {
  readonly #events = new EventEmitter();
  #settings: KeyringSettings = {};
  #sealer: Sealer | undefined;

  constructor(settings: KeyringSettings) {
    this.reload(settings);
  }

  /** Signs and verifies user access tokens (JWT). */
  get jwt(): RotatingSecret {
    return { current: this.#settings.JWT_SECRET, previous: this.#settings.JWT_SECRET_PREVIOUS };
  }

  /** Hashes platform keys and derives the ops token. */
  get apiKey(): RotatingSecret {
    return { current: this.#settings.API_KEY_SECRET, previous: this.#settings.API_KEY_SECRET_PREVIOUS };
  }

  /** ENCRYPTION_KEY and its predecessor, as configured. */
  get encryption(): RotatingSecret {
    return { current: this.#settings.ENCRYPTION_KEY, previous: this.#settings.ENCRYPTION_KEY_PREVIOUS };
  }

  /** Seals under ENCRYPTION_KEY, opens under it or its predecessor; undefined when no ENCRYPTION_KEY is set. */
  get sealer(): Sealer | undefined {
    return this.#sealer;
  }

  /** Key id of the predecessor encryption key while one is configured: values sealed under it are still to be re-sealed. */
  get previousSealingKey(): SealingKey | undefined {
    return this.#settings.ENCRYPTION_KEY_PREVIOUS ? sealingKey(this.#settings.ENCRYPTION_KEY_PREVIOUS) : undefined;
  }

  /**
   * Replaces every secret at once (SIGHUP); listeners hear about it after the swap. A
   * `*_PREVIOUS` left out is dropped (the overlap ended); a current secret left out keeps its
   * value, so a reload never leaves the service without one.
   */
  reload(settings: KeyringSettings): void {
    const next: KeyringSettings = {};
    for (const name of KEYRING_NAMES) {
      const value = settings[name] || (name.endsWith("_PREVIOUS") ? undefined : this.#settings[name]);
      if (value) next[name] = value;
    }
    this.#settings = next;
    this.#sealer = next.ENCRYPTION_KEY
      ? new Sealer(sealingKey(next.ENCRYPTION_KEY), next.ENCRYPTION_KEY_PREVIOUS ? sealingKey(next.ENCRYPTION_KEY_PREVIOUS) : undefined)
      : undefined;
    this.#events.emit("reload", this);
  }

  onReload(listener: (keyring: Keyring) => void): () => void {
    this.#events.on("reload", listener);
    return () => this.#events.off("reload", listener);
  }

  /** Fingerprints of what is loaded (ops.md §0), null for what is not set: what `/internal/ops/config` reports. */
  fingerprints(): Record<(typeof KEYRING_NAMES)[number], string | null> {
    return Object.fromEntries(
      KEYRING_NAMES.map((name) => [name, this.#settings[name] ? fingerprint(this.#settings[name]) : null]),
    ) as Record<(typeof KEYRING_NAMES)[number], string | null>;
  }
}

/** Settings whose values are secrets: shown only as fingerprints. URLs are shown with their password masked. */
const SECRET_NAME = /SECRET|_KEY$|_KEY_|PASSWORD|MNEMONIC|_TOKEN$/;
const URL_SETTINGS = new Set(["DATABASE_URL", "REDIS_URL", "SMTP_URL"]);

export function isSecretSetting(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** The password inside a URL setting (`postgres://user:pw@host/db`), if any. */
export function urlPassword(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const password = new URL(value).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How settings look outside the vault (ops.md §0, §3 config.effective): secrets as
 * fingerprints (URL passwords under `<NAME>#password`), everything else as is, URLs masked.
 * The CLI computes the same from `.env` and compares with what each API reports.
 */
export function describeSettings(settings: Record<string, unknown>): {
  fingerprints: Record<string, string>;
  settings: Record<string, string | number | boolean>;
} {
  const fingerprints: Record<string, string> = {};
  const shown: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") continue;
    if (isSecretSetting(name)) {
      fingerprints[name] = fingerprint(String(value));
      continue;
    }
    if (URL_SETTINGS.has(name) && typeof value === "string") {
      const password = urlPassword(value);
      if (password) {
        fingerprints[`${name}#password`] = fingerprint(password);
        const url = new URL(value);
        url.password = "****";
        shown[name] = url.toString();
        continue;
      }
    }
    shown[name] = value;
  }
  return { fingerprints, settings: shown };
}
