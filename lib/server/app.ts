/**
 * The HTTP application: middleware order and the route table. Route handlers get their
 * collaborators from {@linkcode AppDeps}; nothing here does I/O beyond answering.
 *
 * Middleware order: request context (id, client address, record, in-flight count,
 * `X-Olla-*` headers, finishing the record when the answer has been sent) -> routes.
 * Errors from any route are rendered by {@linkcode errorResponse}.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { resolveClientIp } from "./client_ip.ts";
import type { Cidr } from "../cidr.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Dispatcher } from "../proxy/dispatch.ts";
import { errorResponse, OllaError } from "../errors.ts";
import { OLLA } from "../proxy/headers.ts";
import type { InflightTracker } from "./inflight.ts";
import type { Logger } from "../log.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import { redactPathAndQuery } from "../observability/redact.ts";
import type { Registry } from "../registry/registry.ts";
import { RequestRecord, splitTarget } from "../proxy/request_record.ts";
import { type InternalRouteDeps, registerInternalRoutes } from "./routes/internal.ts";
import { getModel, listModels, type ModelRouteDeps } from "./routes/models.ts";
import { providerHandler } from "./routes/provider.ts";
import { unifiedHandler } from "./routes/unified.ts";
import type { ConnInfo } from "../startup/runtime.ts";

/** Hono environment: the connection info the runtime passes, and per-request state. */
export interface AppEnv {
  Bindings: ConnInfo;
  Variables: { record: RequestRecord; clientIp: string };
}

/** Collaborators of the app. */
export interface AppDeps extends InternalRouteDeps, ModelRouteDeps {
  config: Config;
  logger: Logger;
  inflight: InflightTracker;
  clock: Clock;
  registry: Registry;
  profiles: ProfileSet;
  dispatcher: Dispatcher;
  /** Called once per request when its answer has been sent completely. */
  onFinished: (record: RequestRecord) => void;
  /** Limits, keys and access rules (lib/guard.ts). */
  guard: MiddlewareHandler<AppEnv>;
  trustedProxies: readonly Cidr[];
}

const REQUEST_ID_REGEXP = /^[\x21-\x7e]{1,128}$/;

/** Headers browsers may read when CORS is on: every X-Olla-* header olla-ts sets, and the limits. */
const EXPOSED_HEADERS = [
  ...Object.values(OLLA),
  "server-timing",
  "retry-after",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
];

/** The client's `X-Request-ID` when it is at most 128 printable ASCII characters, else a new id. */
export function requestIdFor(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given !== null && REQUEST_ID_REGEXP.test(given) ? given : crypto.randomUUID();
}

function ms(value: number): string {
  return value.toFixed(3).replace(/\.?0+$/, "");
}

/**
 * A client-supplied string made safe for a header value: printable ASCII is kept as it is
 * (every real model id), anything else is percent-encoded, and the length is bounded.
 */
function headerSafe(value: string): string {
  const safe = /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
  return safe.length > 256 ? safe.slice(0, 256) : safe;
}

/** Sets the `X-Olla-*` and `Server-Timing` headers the record supports. */
export function applyRecordHeaders(headers: Headers, record: RequestRecord): void {
  headers.set(OLLA.requestId, record.id);
  if (record.endpoint) headers.set(OLLA.endpoint, record.endpoint);
  if (record.model) headers.set(OLLA.model, headerSafe(record.model));
  if (record.backendType) headers.set(OLLA.backendType, record.backendType);
  const responseTime = record.responseTimeMs;
  if (responseTime !== undefined) headers.set(OLLA.responseTime, `${Math.round(responseTime)}ms`);
  if (record.routing) {
    headers.set(OLLA.routingStrategy, record.routing.strategy);
    headers.set(OLLA.routingDecision, record.routing.decision);
    headers.set(OLLA.routingReason, record.routing.reason);
  }
  if (record.sticky) {
    headers.set(OLLA.stickySession, record.sticky.outcome);
    if (record.sticky.source) headers.set(OLLA.stickyKeySource, record.sticky.source);
  }
  if (record.sessionHeader) headers.set(OLLA.sessionId, record.sessionHeader);
  if (record.failovers.length > 0) headers.set(OLLA.failovers, String(record.failovers.length));
  const overhead = record.overheadMs;
  if (overhead !== undefined) {
    const upstream = record.upstreamWaitMs > 0 ? `, upstream;dur=${ms(record.upstreamWaitMs)}` : "";
    headers.set("server-timing", `olla;desc="proxy overhead";dur=${ms(overhead)}${upstream}`);
  }
}

/** Builds the application. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { logger, inflight, clock } = deps;
  const app = new Hono<AppEnv>();

  app.use(async function requestContext(c, next) {
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
    const clientIp = resolveClientIp(c.env?.remoteAddr ?? "", c.req.raw.headers, {
      trustProxyHeaders: deps.config.server.rate_limits.trust_proxy_headers,
      trustedProxies: deps.trustedProxies,
    });
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
    if (c.error instanceof OllaError) {
      record.fault = c.error.fault;
      record.error = c.error.message;
    } else if (c.error) {
      record.fault = "proxy";
      record.error = String(c.error);
    }
    record.status = c.res.status;
    record.respondedAt = clock.now();
    applyRecordHeaders(c.res.headers, record);
    record.finished.then(() => {
      end();
      record.endedAt ??= clock.now();
      deps.onFinished(record);
    });
  });

  const corsConfig = deps.config.server.cors;
  if (corsConfig.enabled) {
    app.use(cors({
      origin: corsConfig.allowed_origins.includes("*") ? "*" : [...corsConfig.allowed_origins],
      allowMethods: [...corsConfig.allowed_methods],
      allowHeaders: corsConfig.allowed_headers.includes("*") ? [] : [...corsConfig.allowed_headers],
      exposeHeaders: [...new Set([...EXPOSED_HEADERS, ...corsConfig.exposed_headers])],
      credentials: corsConfig.allow_credentials,
      maxAge: corsConfig.max_age,
    }));
  }
  app.use(deps.guard);

  /** A handler that records its route template (a bounded label for metrics). */
  const route = <H extends (c: Context<AppEnv>) => Response | Promise<Response>>(
    template: string,
    handler: H,
  ): [string, H] => [
    template,
    ((c: Context<AppEnv>) => {
      c.get("record").route = template;
      return handler(c);
    }) as H,
  ];

  app.get(...route("/internal/health", (c) => c.json({ status: "healthy" })));
  registerInternalRoutes(app, deps, route);
  app.get(...route("/olla/models", listModels(deps)));
  app.get(...route("/olla/models/*", getModel(deps)));
  app.all("/olla/proxy/*", unifiedHandler(deps));
  app.all("/olla/openai/*", unifiedHandler(deps));
  app.all("/olla/:prefix/*", providerHandler(deps));

  app.notFound((c) =>
    errorResponse(
      new OllaError(404, `No route for ${c.req.method} ${splitTarget(c.req.url).path}`, {
        code: "route_not_found",
        fault: "client",
      }),
    )
  );
  app.onError((error, c) => {
    if (!(error instanceof OllaError)) {
      logger.error("unhandled error", { request_id: c.get("record")?.id, error: String(error) });
    }
    return errorResponse(error);
  });
  return app;
}
