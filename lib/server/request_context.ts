/**
 * The first middleware every request passes: refuse new work while draining, count the
 * request in flight, resolve the client's address, create its record, and after the
 * route has answered, note the answer in the record, shape its `X-Olla-*` headers and
 * finish the record once the last byte has been sent.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "./app_env.ts";
import { resolveClientIp } from "./client_ip.ts";
import type { InflightTracker } from "./inflight.ts";
import { splitTarget } from "./request_target.ts";
import type { Cidr } from "../cidr.ts";
import type { Clock } from "../clock.ts";
import { errorResponse, OllaError } from "../errors.ts";
import { redactPathAndQuery } from "../observability/redact.ts";
import { measuredLocalAnswer } from "../proxy/answer.ts";
import { applyOllaHeaders } from "../proxy/olla_headers.ts";
import { RequestRecord } from "../proxy/request_record.ts";

const REQUEST_ID_REGEXP = /^[\x21-\x7e]{1,128}$/;

/** The client's `X-Request-ID` when it is at most 128 printable ASCII characters, else a new id. */
export function requestIdFor(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given !== null && REQUEST_ID_REGEXP.test(given) ? given : crypto.randomUUID();
}

/** Collaborators of {@linkcode requestContext}. */
export interface RequestContextDeps {
  inflight: InflightTracker;
  clock: Clock;
  trustProxyHeaders: boolean;
  trustedProxies: readonly Cidr[];
  /** Called once per request when its answer has been sent completely. */
  onFinished: (record: RequestRecord) => void;
}

/**
 * The route template of the handler that answered, or `unmatched` when only middleware
 * ran (every middleware is mounted on `/*`; no route is). Read after `next()`: Hono's
 * route index then points at the last handler dispatched, the one that answered (the
 * last *matched* route may be a catch-all that never ran).
 */
function answeredTemplate(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  const path = routePath(c);
  return path === "/*" || path === "*" || path === "" ? "unmatched" : path;
}

/** Builds the request-context middleware. */
export function requestContext(deps: RequestContextDeps): MiddlewareHandler<AppEnv> {
  const { inflight, clock } = deps;
  const ipOptions = {
    trustProxyHeaders: deps.trustProxyHeaders,
    trustedProxies: deps.trustedProxies,
  };
  return async function requestContext(c, next) {
    if (inflight.draining) {
      const response = errorResponse(
        new OllaError(503, "olla-ts is shutting down; retry on another instance", {
          code: "shutting_down",
          fault: "policy",
          retryAfterSeconds: 1,
        }),
      );
      response.headers.set("connection", "close");
      return response;
    }
    const end = inflight.begin();
    const clientIp = resolveClientIp(c.env?.remoteAddr ?? "", c.req.raw.headers, ipOptions);
    const target = splitTarget(c.req.url);
    const record = new RequestRecord(
      requestIdFor(c.req.raw),
      c.req.method,
      clientIp,
      clock.now(),
      redactPathAndQuery(`${target.path}${target.search}`),
    );
    c.set("record", record);
    c.set("clientIp", clientIp);
    try {
      await next();
    } catch (error) {
      // Hono renders route errors through onError; this guards the middleware itself.
      c.res = errorResponse(error);
    }
    if (c.error) {
      record.error = c.error instanceof OllaError
        ? { fault: c.error.fault, code: c.error.code, message: c.error.message }
        : { fault: "proxy", code: "internal_error", message: String(c.error) };
    }
    if (record.endpoint === undefined) c.res = await measuredLocalAnswer(c.res, record);
    const label = c.get("route");
    record.route = label?.template ?? answeredTemplate(c);
    record.status = c.res.status;
    record.respondedAt = clock.now();
    applyOllaHeaders(c.res.headers, record, label?.backendType);
    const onFinished = c.env?.onFinished;
    record.finished.then(() => {
      end();
      onFinished?.();
      record.endedAt = clock.now();
      deps.onFinished(record);
    });
  };
}
