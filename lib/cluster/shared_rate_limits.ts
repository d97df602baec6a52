/**
 * Rate limits shared by every instance: one token bucket per key in Redis (a hash of
 * tokens and last refill, on Redis's clock so instances' clocks do not matter), taken
 * from by one atomic script, and a small local allowance so most requests do not wait
 * for Redis at all.
 *
 * The allowance is a lease: when an instance has no tokens of a bucket left, the script
 * takes up to `max(1, burst_size / 10)` at once (1 for a bucket used slowly, doubling
 * while leases run out within a quarter of a second), and requests spend them locally
 * for at most a second; leftovers then lapse. Every request admitted anywhere spent a
 * token from the shared bucket, so a limit is never exceeded across instances; what a
 * lease costs is that a client can be refused up to (instances x allowance) requests
 * early while other instances hold tokens it cannot use. A bucket found empty is
 * remembered until its next token is due, so refused clients do not reach Redis either.
 *
 * When Redis cannot answer within `cluster.timeout`, `cluster.rate_limits_on_redis_failure`
 * decides: `local` (this instance's own buckets), `open` (no limit) or `closed` (503).
 *
 * @module
 */
import type { RedisLink } from "./redis_link.ts";
import { RedisScript } from "./redis_script.ts";
import type { Clock, TimerId } from "../clock.ts";
import {
  type RateDecision,
  RateLimiter,
  rateLimitHeaders,
  type RateLimits,
  type RateLimitSettings,
} from "../server/rate_limit.ts";

/** What to do with rate limits while Redis is unreachable. */
export type RedisFailurePolicy = "local" | "open" | "closed";

/** How long a lease's tokens may be spent. */
const LEASE_MS = 1_000;
/** Checks one request may make while its tokens keep being spent by others. */
const MAX_ROUNDS = 16;
/** A lease used up faster than this earns a bigger next one. */
const QUICK_LEASE_MS = LEASE_MS / 4;

/**
 * KEYS: the buckets. ARGV: per bucket its capacity, tokens per minute and tokens wanted.
 * Takes from every bucket or from none. Replies `{1, 0, 0, granted_1, remaining_1,
 * ms_to_full_1, ...}`, or `{0, index, ms_to_token, 0, remaining, ms_to_full}` naming the
 * bucket that refills last among the empty ones.
 */
const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local tokens = {}
local refusing, wait = 0, 0
for i = 1, n do
  local cap, rate = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local state = redis.call('HMGET', KEYS[i], 't', 'u')
  local tok, at = tonumber(state[1]), tonumber(state[2])
  if tok == nil or at == nil then tok, at = cap, now end
  tok = math.min(cap, tok + math.max(0, now - at) * rate / 60000)
  tokens[i] = tok
  if tok < 1 then
    local w = (1 - tok) * 60000 / rate
    if w > wait then refusing, wait = i, w end
  end
end
if refusing > 0 then
  local cap, rate = tonumber(ARGV[3 * refusing - 2]), tonumber(ARGV[3 * refusing - 1])
  local tok = tokens[refusing]
  return {0, refusing, math.ceil(wait), 0, math.floor(tok), math.ceil((cap - tok) * 60000 / rate)}
end
local reply = {1, 0, 0}
for i = 1, n do
  local cap, rate = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local granted = math.min(tonumber(ARGV[3 * i]), math.floor(tokens[i]))
  local left = tokens[i] - granted
  local full = math.ceil((cap - left) * 60000 / rate)
  redis.call('HSET', KEYS[i], 't', string.format('%.6f', left), 'u', now)
  redis.call('PEXPIRE', KEYS[i], full + 1000)
  reply[#reply + 1] = granted
  reply[#reply + 1] = math.floor(left)
  reply[#reply + 1] = full
end
return reply
`;

/** This instance's share of one shared bucket. */
interface Lease {
  tokens: number;
  size: number;
  leasedAt: number;
  /** The shared bucket's whole tokens left when leased. */
  remaining: number;
  /** When the shared bucket was due to be full, as of the lease (clock ms). */
  fullAt: number;
  /** Until when the shared bucket is known to be empty. */
  emptyUntil: number;
}

/** One bucket a request takes from. */
interface BucketRef {
  scope: string;
  key: string;
  perMinute: number;
}

/** Options of {@linkcode SharedRateLimits}. */
export interface SharedRateLimitsOptions {
  settings: RateLimitSettings;
  link: RedisLink;
  keyPrefix: string;
  onRedisFailure: RedisFailurePolicy;
  clock: Clock;
}

/** Rate limits over Redis, falling back as configured. */
export class SharedRateLimits implements RateLimits {
  readonly #options: SharedRateLimitsOptions;
  readonly #local: RateLimiter;
  readonly #script: RedisScript;
  readonly #leases = new Map<string, Lease>();
  /** Leases being asked for, by the keys they are for. */
  readonly #asking = new Map<string, Promise<boolean>>();
  readonly #allowance: number;
  #sweep: TimerId | undefined;

  constructor(options: SharedRateLimitsOptions) {
    this.#options = options;
    this.#local = new RateLimiter(options.settings, options.clock);
    this.#script = new RedisScript(options.link, TAKE_SCRIPT);
    this.#allowance = Math.max(1, Math.floor(options.settings.burst_size / 10));
  }

  start(): void {
    this.#local.start();
    const { clock } = this.#options;
    const sweep = () => {
      const now = clock.now();
      for (const [key, lease] of this.#leases) {
        if (now - lease.leasedAt > LEASE_MS && now >= lease.emptyUntil) this.#leases.delete(key);
      }
      this.#sweep = clock.setTimeout(sweep, LEASE_MS * 10);
    };
    this.#sweep = clock.setTimeout(sweep, LEASE_MS * 10);
  }

  stop(): void {
    this.#local.stop();
    if (this.#sweep !== undefined) this.#options.clock.clearTimeout(this.#sweep);
  }

  checkClient(ip: string, health: boolean): RateDecision | Promise<RateDecision> {
    const s = this.#options.settings;
    const buckets = health ? [this.#ref("health", ip, s.health_requests_per_minute)] : [
      this.#ref("global", "", s.global_requests_per_minute),
      this.#ref("ip", ip, s.per_ip_requests_per_minute),
    ];
    return this.#check(buckets, () => this.#local.checkClient(ip, health));
  }

  checkKey(name: string): RateDecision | Promise<RateDecision> {
    const buckets = [this.#ref("key", name, this.#options.settings.per_key_requests_per_minute)];
    return this.#check(buckets, () => this.#local.checkKey(name));
  }

  #ref(scope: string, id: string, perMinute: number): BucketRef | undefined {
    if (perMinute <= 0) return undefined;
    return { scope, key: `${this.#options.keyPrefix}rl:${scope}:${id}`, perMinute };
  }

  /**
   * The decision over `refs`. A request short of tokens joins the lease already being
   * asked for the same buckets, or asks for one; either way it checks again once Redis
   * answered, since the requests that waited with it may have spent the new tokens (and
   * the next lease is then bigger). After {@linkcode MAX_ROUNDS} this instance's own
   * buckets decide.
   */
  #check(
    refs: (BucketRef | undefined)[],
    local: () => RateDecision,
    round = 0,
  ): RateDecision | Promise<RateDecision> {
    const buckets = refs.filter((ref): ref is BucketRef => ref !== undefined);
    if (buckets.length === 0) return { allowed: true, headers: {} };
    if (!this.#options.link.up || round >= MAX_ROUNDS) return this.#fallback(local);
    const now = this.#options.clock.now();
    const known = this.#knownEmpty(buckets, now);
    if (known) return known;
    const short = buckets.filter((bucket) => !this.#usable(this.#leases.get(bucket.key), now));
    if (short.length === 0) return this.#spend(buckets, now);
    const asking = short.map((bucket) => bucket.key).join(" ");
    let lease = this.#asking.get(asking);
    if (!lease) {
      lease = this.#lease(short, now).finally(() => this.#asking.delete(asking));
      this.#asking.set(asking, lease);
    }
    return lease.then((answered) =>
      answered ? this.#check(buckets, local, round + 1) : this.#fallback(local)
    );
  }

  #usable(lease: Lease | undefined, now: number): lease is Lease {
    return lease !== undefined && lease.tokens >= 1 && now - lease.leasedAt <= LEASE_MS;
  }

  /** A refusal without asking Redis, when a bucket is known to be empty still. */
  #knownEmpty(buckets: readonly BucketRef[], now: number): RateDecision | undefined {
    let refusing: { bucket: BucketRef; lease: Lease } | undefined;
    for (const bucket of buckets) {
      const lease = this.#leases.get(bucket.key);
      if (lease && lease.emptyUntil > now && lease.emptyUntil > (refusing?.lease.emptyUntil ?? 0)) {
        refusing = { bucket, lease };
      }
    }
    if (!refusing) return undefined;
    const { bucket, lease } = refusing;
    return {
      allowed: false,
      headers: rateLimitHeaders(bucket.perMinute, 0, lease.fullAt - now),
      retryAfterSeconds: Math.max(1, Math.ceil((lease.emptyUntil - now) / 1000)),
      scope: bucket.scope,
    };
  }

  /** Takes one token of every bucket's lease; the headers are the tightest bucket's. */
  #spend(buckets: readonly BucketRef[], now: number): RateDecision {
    let tightest: { bucket: BucketRef; lease: Lease; left: number } | undefined;
    for (const bucket of buckets) {
      const lease = this.#leases.get(bucket.key) as Lease;
      lease.tokens--;
      const left = lease.remaining + Math.floor(lease.tokens);
      if (!tightest || left < tightest.left) tightest = { bucket, lease, left };
    }
    const { bucket, lease, left } = tightest as NonNullable<typeof tightest>;
    return {
      allowed: true,
      headers: rateLimitHeaders(bucket.perMinute, left, Math.max(0, lease.fullAt - now)),
    };
  }

  /**
   * Leases tokens of the buckets that ran short, or records the one found empty (every
   * bucket or none is taken from); `false` when Redis did not answer.
   */
  async #lease(short: readonly BucketRef[], now: number): Promise<boolean> {
    const burst = this.#options.settings.burst_size;
    const sizes = short.map((bucket) => this.#nextSize(this.#leases.get(bucket.key), now));
    const reply = await this.#script.run<number[]>(
      "rate_limit",
      short.map((bucket) => bucket.key),
      short.flatMap((bucket, i) => [String(burst), String(bucket.perMinute), String(sizes[i])]),
    );
    if (!Array.isArray(reply)) return false;
    const at = this.#options.clock.now();
    if (reply[0] === 0) {
      const [waitMs, remaining, fullMs] = [reply[2], reply[4], reply[5]];
      this.#leases.set(short[reply[1] - 1].key, {
        tokens: 0,
        size: 1,
        leasedAt: at,
        remaining,
        fullAt: at + fullMs,
        emptyUntil: at + waitMs,
      });
      return true;
    }
    short.forEach((bucket, i) => {
      const [granted, remaining, fullMs] = reply.slice(3 + 3 * i, 6 + 3 * i);
      this.#leases.set(bucket.key, {
        tokens: granted,
        size: sizes[i],
        leasedAt: at,
        remaining,
        fullAt: at + fullMs,
        emptyUntil: 0,
      });
    });
    return true;
  }

  /** 1 for a bucket used slowly; doubled (up to the allowance) after a lease used up quickly. */
  #nextSize(previous: Lease | undefined, now: number): number {
    if (!previous || previous.tokens >= 1 || now - previous.leasedAt > QUICK_LEASE_MS) return 1;
    return Math.min(this.#allowance, previous.size * 2);
  }

  #fallback(local: () => RateDecision): RateDecision {
    switch (this.#options.onRedisFailure) {
      case "local":
        return local();
      case "open":
        return { allowed: true, headers: {} };
      case "closed":
        return {
          allowed: false,
          headers: {},
          retryAfterSeconds: 1,
          scope: "shared",
          unavailable: true,
        };
    }
  }
}
