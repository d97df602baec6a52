/**
 * Token-bucket rate limits: one global bucket, one per client address, one per inbound
 * API key, and a separate per-address bucket for `/internal/health`. A bucket holds up to
 * `burst_size` tokens and refills at its per-minute rate; each request takes one.
 *
 * Answers carry `X-RateLimit-Limit` (requests per minute of the tightest bucket that
 * applied), `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until that bucket is
 * full again); a refusal is a 429 with `Retry-After` (seconds until a token is back).
 *
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";

/** A token bucket; pure arithmetic over the times it is given. */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;

  constructor(readonly capacity: number, readonly perMinute: number, now: number) {
    this.#tokens = capacity;
    this.#updatedAt = now;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed / 60_000) * this.perMinute);
    this.#updatedAt = now;
  }

  /** Takes a token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  remaining(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens);
  }

  /** Milliseconds until one token is available. */
  msUntilToken(now: number): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / this.perMinute) * 60_000;
  }

  /** Milliseconds until the bucket is full. */
  msUntilFull(now: number): number {
    this.#refill(now);
    return ((this.capacity - this.#tokens) / this.perMinute) * 60_000;
  }
}

/** Limits per minute, 0 meaning no limit. */
export interface RateLimitSettings {
  global_requests_per_minute: number;
  per_ip_requests_per_minute: number;
  per_key_requests_per_minute: number;
  health_requests_per_minute: number;
  burst_size: number;
  cleanup_interval: number;
}

/** The verdict for one request. */
export interface RateDecision {
  allowed: boolean;
  /** Headers to add to the answer (empty when no limit applies). */
  headers: Record<string, string>;
  /** For a refusal: seconds until a retry can succeed. */
  retryAfterSeconds?: number;
  /** Which bucket refused: `global`, `ip`, `key` or `health` (`shared` for `unavailable`). */
  scope?: string;
  /** Refused because the shared limits cannot be checked (`rate_limits_on_redis_failure: closed`). */
  unavailable?: true;
}

/**
 * Rate limits as the guard and the rate gate use them: this instance's buckets
 * ({@linkcode RateLimiter}) or the cluster's (cluster/shared_rate_limits.ts), which may
 * have to ask Redis.
 */
export interface RateLimits {
  /** The global and per-address buckets, or the health bucket for liveness. */
  checkClient(ip: string, health: boolean): RateDecision | Promise<RateDecision>;
  /** The bucket of an inbound API key. */
  checkKey(name: string): RateDecision | Promise<RateDecision>;
  start(): void;
  stop(): void;
}

/** `X-RateLimit-*` for a bucket of `perMinute` with `remaining` tokens, full in `msToFull`. */
export function rateLimitHeaders(
  perMinute: number,
  remaining: number,
  msToFull: number,
): Record<string, string> {
  return {
    "x-ratelimit-limit": String(perMinute),
    "x-ratelimit-remaining": String(remaining),
    "x-ratelimit-reset": String(Math.ceil(msToFull / 1000)),
  };
}

/** The decision when no limit applies: one object for every such request. */
const UNLIMITED: RateDecision = Object.freeze({ allowed: true, headers: Object.freeze({}) });

/** All the buckets of this instance. */
export class RateLimiter implements RateLimits {
  readonly #settings: RateLimitSettings;
  readonly #clock: Clock;
  readonly #global: TokenBucket | undefined;
  readonly #perIp = new Map<string, TokenBucket>();
  readonly #perKey = new Map<string, TokenBucket>();
  readonly #health = new Map<string, TokenBucket>();
  #cleanup: TimerId | undefined;

  constructor(settings: RateLimitSettings, clock: Clock) {
    this.#settings = settings;
    this.#clock = clock;
    this.#global = settings.global_requests_per_minute > 0
      ? new TokenBucket(settings.burst_size, settings.global_requests_per_minute, clock.now())
      : undefined;
  }

  /** Starts dropping idle per-client buckets every `cleanup_interval`. */
  start(): void {
    const sweep = () => {
      const now = this.#clock.now();
      for (const buckets of [this.#perIp, this.#perKey, this.#health]) {
        for (const [key, bucket] of buckets) if (bucket.msUntilFull(now) === 0) buckets.delete(key);
      }
      this.#cleanup = this.#clock.setTimeout(sweep, this.#settings.cleanup_interval);
    };
    if (this.#settings.cleanup_interval > 0) {
      this.#cleanup = this.#clock.setTimeout(sweep, this.#settings.cleanup_interval);
    }
  }

  stop(): void {
    if (this.#cleanup !== undefined) this.#clock.clearTimeout(this.#cleanup);
  }

  /** Number of per-client buckets kept (for tests and status). */
  get trackedClients(): number {
    return this.#perIp.size + this.#perKey.size + this.#health.size;
  }

  checkClient(ip: string, health: boolean): RateDecision {
    const s = this.#settings;
    if (health) {
      return this.#check([[
        "health",
        this.#bucket(this.#health, ip, s.health_requests_per_minute),
      ]]);
    }
    const perIp = this.#bucket(this.#perIp, ip, s.per_ip_requests_per_minute);
    if (!this.#global && !perIp) return UNLIMITED;
    return this.#check([["global", this.#global], ["ip", perIp]]);
  }

  checkKey(name: string): RateDecision {
    return this.#check([[
      "key",
      this.#bucket(this.#perKey, name, this.#settings.per_key_requests_per_minute),
    ]]);
  }

  #bucket(
    buckets: Map<string, TokenBucket>,
    key: string,
    perMinute: number,
  ): TokenBucket | undefined {
    if (perMinute <= 0) return undefined;
    let bucket = buckets.get(key);
    if (!bucket) {
      buckets.set(
        key,
        bucket = new TokenBucket(this.#settings.burst_size, perMinute, this.#clock.now()),
      );
    }
    return bucket;
  }

  #check(buckets: [string, TokenBucket | undefined][]): RateDecision {
    const applied = buckets.filter((entry): entry is [string, TokenBucket] =>
      entry[1] !== undefined
    );
    if (applied.length === 0) return UNLIMITED;
    const now = this.#clock.now();
    // Check every bucket before taking from any, so a refusal costs no tokens. Of several
    // empty buckets the one that refills last is the one holding the client back: its
    // numbers are the ones the client can act on.
    let refusing: { scope: string; bucket: TokenBucket; wait: number } | undefined;
    for (const [scope, bucket] of applied) {
      const wait = bucket.msUntilToken(now);
      if (wait > 0 && wait > (refusing?.wait ?? 0)) refusing = { scope, bucket, wait };
    }
    if (refusing) {
      return {
        allowed: false,
        headers: this.#headers(refusing.bucket, now),
        retryAfterSeconds: Math.max(1, Math.ceil(refusing.wait / 1000)),
        scope: refusing.scope,
      };
    }
    for (const [, bucket] of applied) bucket.take(now);
    const tightest =
      applied.reduce((a, b) => (b[1].remaining(now) < a[1].remaining(now) ? b : a))[1];
    return { allowed: true, headers: this.#headers(tightest, now) };
  }

  #headers(bucket: TokenBucket, now: number): Record<string, string> {
    return rateLimitHeaders(bucket.perMinute, bucket.remaining(now), bucket.msUntilFull(now));
  }
}
