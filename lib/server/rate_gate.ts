/**
 * Rate limits at the point a request is about to reach a backend, as Olla applies them:
 * only proxied requests spend tokens (the global bucket, the client address's, and the
 * inbound key's when `server.auth` is on). Answers olla-ts gives itself (model lists,
 * health views, status routes) are free, so monitoring and clients listing models are
 * never refused because of the traffic they watch. `/internal/health` keeps its own
 * per-address bucket, checked by the guard.
 *
 * The decisions are stored on the request; the guard adds their `X-RateLimit-*` headers
 * to the answer.
 *
 * @module
 */
import type { Context } from "hono";
import type { AppEnv } from "./app_env.ts";
import type { RateDecision, RateLimits } from "./rate_limit.ts";
import { OllaError } from "../errors.ts";

/** A 429 for a refused decision (a 503 when the shared limits could not be checked). */
export function rateLimited(decision: RateDecision): OllaError {
  if (decision.unavailable) {
    return new OllaError(
      503,
      "Rate limits cannot be checked: Redis is unreachable and " +
        "cluster.rate_limits_on_redis_failure is closed",
      { code: "rate_limits_unavailable", fault: "policy", retryAfterSeconds: 1 },
    );
  }
  return new OllaError(
    429,
    `Too many requests (${decision.scope} rate limit); retry after ${decision.retryAfterSeconds}s`,
    {
      code: "rate_limited",
      fault: "policy",
      retryAfterSeconds: decision.retryAfterSeconds,
      headers: decision.headers,
    },
  );
}

/** Spends the request's tokens before it is forwarded. */
export type RateGate = (c: Context<AppEnv>) => void | Promise<void>;

/**
 * The gate over `limiter`. It stays synchronous while the decisions are (this instance's
 * buckets, or a shared lease with tokens left), so the hot path makes no promise for it.
 *
 * @throws {OllaError} 429 with `Retry-After` when a bucket is empty.
 */
export function createRateGate(limiter: RateLimits): RateGate {
  const afterKey = (decisions: RateDecision[], decision: RateDecision) => {
    decisions.push(decision);
    if (!decision.allowed) throw rateLimited(decision);
  };
  const afterClient = (c: Context<AppEnv>, decision: RateDecision) => {
    const decisions = [decision];
    c.set("rateDecisions", decisions);
    if (!decision.allowed) throw rateLimited(decision);
    const principal = c.get("principal");
    if (!principal) return;
    const keyDecision = limiter.checkKey(principal.name);
    if (keyDecision instanceof Promise) {
      return keyDecision.then((resolved) => afterKey(decisions, resolved));
    }
    afterKey(decisions, keyDecision);
  };
  return function admitToBackend(c) {
    const decision = limiter.checkClient(c.get("clientIp"), false);
    if (decision instanceof Promise) return decision.then((resolved) => afterClient(c, resolved));
    return afterClient(c, decision);
  };
}
