/**
 * The request guard: what every request passes before its route. In order:
 *
 * 1. header size (`server.request_limits.max_header_size`, 431);
 * 2. rate limits for the client address (global and per address; `/internal/health` has
 *    its own per-address bucket), 429 with `Retry-After`;
 * 3. `/internal/*` (liveness excepted): only clients in `server.internal.allowed_cidrs`
 *    (loopback by default) or presenting an admin key, else 403;
 * 4. `/olla/*` with `server.auth.enabled`: a valid key, else 401 with
 *    `WWW-Authenticate`; then the key's own rate limit.
 *
 * Rate-limit headers are added to every answer that a limit applied to.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app_env.ts";
import type { KeyAuthenticator } from "./auth.ts";
import type { RateDecision, RateLimiter } from "./rate_limit.ts";
import { type Cidr, ipInAny } from "../cidr.ts";
import { OllaError } from "../errors.ts";
import { headerEntries } from "../proxy/headers.ts";

/** Collaborators of {@linkcode createGuard}. */
export interface GuardDeps {
  /** `server.request_limits.max_header_size`. */
  maxHeaderBytes: number;
  /** `server.auth.enabled`: `/olla/*` needs a valid key. */
  authEnabled: boolean;
  rateLimiter: RateLimiter;
  /** Present when `server.auth` has keys. */
  authenticator: KeyAuthenticator | undefined;
  internalCidrs: readonly Cidr[];
}

const LIVENESS = "/internal/health";

/** Approximate size of the request head: request line and every header line. */
export function headerBytes(request: Request): number {
  let total = request.method.length + request.url.length + 12;
  for (const [name, value] of headerEntries(request.headers)) {
    total += name.length + value.length + 4;
  }
  return total;
}

function rateLimited(decision: RateDecision): OllaError {
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

/** Builds the guard middleware. */
export function createGuard(deps: GuardDeps): MiddlewareHandler<AppEnv> {
  const { maxHeaderBytes, authEnabled, rateLimiter, authenticator, internalCidrs } = deps;
  return async function guard(c, next) {
    const path = c.req.path;
    const record = c.get("record");
    const clientIp = c.get("clientIp");
    if (headerBytes(c.req.raw) > maxHeaderBytes) {
      throw new OllaError(
        431,
        `Request headers are larger than ${maxHeaderBytes} bytes (server.request_limits.max_header_size)`,
        {
          code: "headers_too_large",
          fault: "client",
        },
      );
    }
    const decisions: RateDecision[] = [rateLimiter.checkClient(clientIp, path === LIVENESS)];
    if (!decisions[0].allowed) throw rateLimited(decisions[0]);

    const internal = path.startsWith("/internal/") && path !== LIVENESS;
    const needsKey = authEnabled && path.startsWith("/olla/");
    const principal = (internal || needsKey) && authenticator
      ? await authenticator.authenticate(c.req.raw.headers)
      : undefined;
    c.set("principal", principal);
    if (internal && !ipInAny(clientIp, internalCidrs) && !principal?.admin) {
      throw new OllaError(
        403,
        "/internal/* answers only clients in server.internal.allowed_cidrs or with an admin key",
        {
          code: "internal_forbidden",
          fault: "policy",
        },
      );
    }
    if (needsKey) {
      if (!principal) {
        const presented = c.req.header("authorization") !== undefined ||
          c.req.header("x-api-key") !== undefined;
        throw new OllaError(
          401,
          presented
            ? "The API key is not valid"
            : "An API key is required (Authorization: Bearer <key> or X-Api-Key)",
          {
            code: presented ? "invalid_api_key" : "missing_api_key",
            fault: "client",
            headers: { "www-authenticate": 'Bearer realm="olla-ts"' },
          },
        );
      }
      record.keyName = principal.name;
      const keyDecision = rateLimiter.checkKey(principal.name);
      decisions.push(keyDecision);
      if (!keyDecision.allowed) throw rateLimited(keyDecision);
    }
    try {
      await next();
    } finally {
      for (const decision of decisions) {
        for (const [name, value] of Object.entries(decision.headers)) {
          c.res.headers.set(name, value);
        }
      }
    }
  };
}
