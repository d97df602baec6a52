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
import type { RateDecision, RateLimiter } from "./rate_limit.ts";
import { OllaError } from "../errors.ts";

/** A 429 for a refused decision. */
export function rateLimited(decision: RateDecision): OllaError {
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
export type RateGate = (c: Context<AppEnv>) => void;

/**
 * The gate over `limiter`.
 *
 * @throws {OllaError} 429 with `Retry-After` when a bucket is empty.
 */
export function createRateGate(limiter: RateLimiter): RateGate {
  return function admitToBackend(c) {
    const decisions: RateDecision[] = [limiter.checkClient(c.get("clientIp"), false)];
    c.set("rateDecisions", decisions);
    if (!decisions[0].allowed) throw rateLimited(decisions[0]);
    const principal = c.get("principal");
    if (principal) {
      const keyDecision = limiter.checkKey(principal.name);
      decisions.push(keyDecision);
      if (!keyDecision.allowed) throw rateLimited(keyDecision);
    }
  };
}
