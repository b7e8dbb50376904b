import type { Redis } from "ioredis";

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

interface Window {
  current: number;
  startedAt: number;
}

/**
 * A @fastify/rate-limit store that counts in Redis, shared by every API instance, and in
 * this process's memory whenever Redis does not answer, so an outage never turns into 5xx.
 */
export function rateLimitStore(redis: Redis | undefined, onFallback: (error: Error) => void, keyPrefix = "daon:rl:") {
  const local = new Map<string, Window>();

  function countLocally(key: string, timeWindow: number): { current: number; ttl: number } {
    const now = Date.now();
    let window = local.get(key);
    if (!window || window.startedAt + timeWindow <= now) {
      window = { current: 0, startedAt: now };
      if (local.size > 50_000) local.clear();
      local.set(key, window);
    }
    window.current += 1;
    return { current: window.current, ttl: window.startedAt + timeWindow - now };
  }

  return class FallbackStore {
    constructor(
      _options?: unknown,
      private readonly prefix = keyPrefix,
    ) {}

    incr(key: string, callback: Callback, timeWindow: number): void {
      const id = this.prefix + key;
      if (!redis || redis.status !== "ready") {
        callback(null, countLocally(id, timeWindow));
        return;
      }
      redis
        .multi()
        .incr(id)
        .pexpire(id, timeWindow, "NX")
        .pttl(id)
        .exec()
        .then((replies) => {
          const current = Number(replies?.[0]?.[1]);
          const ttl = Number(replies?.[2]?.[1]);
          if (!Number.isFinite(current)) throw new Error("unexpected Redis reply");
          callback(null, { current, ttl: ttl > 0 ? ttl : timeWindow });
        })
        .catch((error: Error) => {
          onFallback(error);
          callback(null, countLocally(id, timeWindow));
        });
    }

    read(key: string, callback: Callback): void {
      const window = local.get(this.prefix + key);
      callback(null, { current: window?.current ?? 0, ttl: 0 });
    }

    /** A route with its own limit counts apart from the global one. */
    child(routeOptions: { path?: string; routeInfo?: { method?: unknown; url?: string } }) {
      return new FallbackStore(
        undefined,
        `${this.prefix}${String(routeOptions.routeInfo?.method)}${routeOptions.routeInfo?.url ?? routeOptions.path}:`,
      );
    }
  };
}
