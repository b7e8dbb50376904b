import type { Redis } from "ioredis";

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

interface Taken {
  allowed: boolean;
  current: number;
  ttl: number;
}

/** All or nothing: the units are taken only if they all fit under the limit. */
const TAKE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, current, redis.call('PTTL', KEYS[1])} end
current = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3], 'NX')
return {1, current, redis.call('PTTL', KEYS[1])}`;

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

  function countLocally(key: string, timeWindow: number, units = 1, max = Number.POSITIVE_INFINITY): Taken {
    const now = Date.now();
    let window = local.get(key);
    if (!window || window.startedAt + timeWindow <= now) {
      window = { current: 0, startedAt: now };
      if (local.size > 50_000) local.clear();
      local.set(key, window);
    }
    const allowed = window.current + units <= max;
    if (allowed) window.current += units;
    return { allowed, current: window.current, ttl: window.startedAt + timeWindow - now };
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

    /**
     * Takes `units` at once from `key`'s counter (a bulk request's works: @fastify/rate-limit
     * counts requests); when fewer are left under `max`, nothing is taken.
     */
    async take(key: string, units: number, timeWindow: number, max: number): Promise<Taken> {
      const id = this.prefix + key;
      if (redis && redis.status === "ready") {
        try {
          const [allowed, current, ttl] = (await redis.eval(TAKE, 1, id, units, max, timeWindow)) as number[];
          return { allowed: allowed === 1, current, ttl: ttl > 0 ? ttl : timeWindow };
        } catch (error) {
          onFallback(error as Error);
        }
      }
      return countLocally(id, timeWindow, units, max);
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

/** The counters of one deployment's rate limits, as routes that charge several units take from them. */
export type RateLimitCounters = InstanceType<ReturnType<typeof rateLimitStore>>;
