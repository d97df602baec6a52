/**
 * The request guard: what every request passes before its route. In order:
 *
 * 1. header size (`server.request_limits.max_header_size`, 431);
 * 2. `/internal/health`'s own per-address rate limit, 429 with `Retry-After`; every other
 *    rate limit is spent only by requests about to reach a backend (rate_gate.ts);
 * 3. `/internal/*` (liveness excepted) and `/nodes/*`: only clients in `server.internal.allowed_cidrs`
 *    (loopback by default) or presenting an admin key, else 403;
 * 4. `/olla/*` with `server.auth.enabled`: a valid key, else 401 with
 *    `WWW-Authenticate`.
 *
 * Rate-limit headers are added to every answer that a limit applied to (here or in the
 * rate gate).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app_env.ts";
import type { KeyAuthenticator } from "./auth.ts";
import type { RateLimits } from "./rate_limit.ts";
import { rateLimited } from "./rate_gate.ts";
import { type Cidr, ipInAny } from "../cidr.ts";
import { OllaError } from "../errors.ts";
import { headerEntries } from "../proxy/headers.ts";

/** Collaborators of {@linkcode createGuard}. */
export interface GuardDeps {
  /** `server.request_limits.max_header_size`. */
  maxHeaderBytes: number;
  /** `server.auth.enabled`: `/olla/*` needs a valid key. */
  authEnabled: boolean;
  rateLimiter: RateLimits;
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
    if (path === LIVENESS) {
      const decision = await rateLimiter.checkClient(clientIp, true);
      c.set("rateDecisions", [decision]);
      if (!decision.allowed) throw rateLimited(decision);
    }
    // LMDeploy's node API is an operator's door too (nodes register without credentials).
    const internal = (path.startsWith("/internal/") && path !== LIVENESS) ||
      path.startsWith("/nodes/");
    const needsKey = authEnabled && path.startsWith("/olla/");
    const principal = (internal || needsKey) && authenticator
      ? await authenticator.authenticate(c.req.raw.headers)
      : undefined;
    c.set("principal", principal);
    if (internal && !ipInAny(clientIp, internalCidrs) && !principal?.admin) {
      throw new OllaError(
        403,
        `${
          path.startsWith("/nodes/") ? "/nodes/*" : "/internal/*"
        } answers only clients in server.internal.allowed_cidrs or with an admin key`,
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
    }
    try {
      await next();
    } finally {
      for (const decision of c.get("rateDecisions") ?? []) {
        for (const [name, value] of Object.entries(decision.headers)) {
          c.res.headers.set(name, value);
        }
      }
    }
  };
}
