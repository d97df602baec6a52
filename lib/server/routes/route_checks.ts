/**
 * The checks provider routes (`/olla/<prefix>/...`) and unified routes (`/olla/proxy/...`)
 * share before anything reaches a backend: a path that tries to leave or disguise
 * itself, a wrong method, and the refusals profiles declare. (Any path and query form a
 * valid upstream URL: the URL standard's parser percent-encodes what a path or query may
 * not hold and fails only on a scheme or host, which are the endpoint's.)
 *
 * @module
 */
import { OllaError } from "../../errors.ts";
import type { RouteRule } from "../../profiles/profile.ts";

/** Encoded slashes, backslashes, dots or NULs: never needed by a real API path. */
const SUSPICIOUS_PATH_REGEXP = /%2f|%5c|%2e|%00|\\|\/\/|(^|\/)\.{1,2}(\/|$)/i;

/**
 * The path after `/olla/<prefix>/`, as the client sent it (percent-encoding kept).
 *
 * @throws {OllaError} 400 for a path that tries to leave or disguise itself.
 */
export function subPath(pathname: string, prefix: string): string {
  return pathAfter(pathname, `/olla/${prefix}`);
}

/**
 * The path after `base` and its slash (`""` for the root), as the client sent it.
 *
 * @throws {OllaError} 400 for a path that tries to leave or disguise itself.
 */
export function pathAfter(pathname: string, base: string): string {
  const rest = pathname.slice(base.length + 1);
  if (SUSPICIOUS_PATH_REGEXP.test(rest)) {
    throw new OllaError(
      400,
      "The request path contains encoded or dot segments, which olla-ts does not forward",
      { code: "invalid_path", fault: "client" },
    );
  }
  return rest;
}

/**
 * The method a request is matched to routes by: HEAD as GET. HTTP gives every GET
 * resource a HEAD (RFC 9110, 9.3.2), and Hono answers a HEAD with its GET answer, body
 * dropped; a proxied HEAD still reaches the backend as HEAD.
 */
export function routingMethod(method: string): string {
  return method === "HEAD" ? "GET" : method;
}

/** The 405 for a path that exists with other methods, with its `Allow` header. */
export function methodNotAllowed(methods: readonly string[], method: string): OllaError {
  const allowed = methods.includes("GET") && !methods.includes("HEAD")
    ? [...methods, "HEAD"]
    : methods;
  return new OllaError(405, `${method} is not allowed here; use ${methods.join(" or ")}`, {
    code: "method_not_allowed",
    fault: "client",
    headers: { allow: allowed.join(", ") },
  });
}

/** The answer a profile's `refuse` rule gives. */
export function refusal(rule: RouteRule): OllaError {
  return new OllaError(rule.status ?? 404, rule.message ?? "Not available through olla-ts", {
    code: "route_refused",
    fault: "client",
  });
}
