import { DaonClient, type Tokens, type User } from "@daon/sdk";
import { useEffect, useState } from "preact/hooks";

const TOKENS_KEY = "daon.tokens";
const PLATFORM_KEY = "daon.platformKey";

function storedTokens(): Tokens | undefined {
  try {
    const raw = localStorage.getItem(TOKENS_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : undefined;
  } catch {
    return undefined;
  }
}

const listeners = new Set<() => void>();
let current = storedTokens();

/** The portal's client: the signed-in account's tokens when there is one (kept in this browser, renewed by the SDK). */
export const client = new DaonClient({
  accessToken: current?.access_token,
  refreshToken: current?.refresh_token,
  onTokens: (tokens) => {
    current = tokens;
    if (tokens) localStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    else localStorage.removeItem(TOKENS_KEY);
    for (const listener of listeners) listener();
  },
});

/** The signed-in account, or undefined; re-renders on sign-in and sign-out. */
export function useUser(): User | undefined {
  const [user, setUser] = useState(current?.user);
  useEffect(() => {
    const update = () => setUser(current?.user);
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return user;
}

/** A client acting with a platform key, kept for this tab only (sessionStorage). */
export function platformClient(key: string): DaonClient {
  return new DaonClient({ apiKey: key });
}

export const platformKeyStore = {
  get: (): string | undefined => sessionStorage.getItem(PLATFORM_KEY) ?? undefined,
  set: (key: string | undefined) => (key ? sessionStorage.setItem(PLATFORM_KEY, key) : sessionStorage.removeItem(PLATFORM_KEY)),
};
