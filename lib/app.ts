/**
 * The HTTP application: middleware order and the route table. Every route handler
 * gets its collaborators from {@linkcode AppDeps}; nothing here does I/O of its own
 * beyond answering requests.
 *
 * Middleware order: request context (id, client, timing, in-flight count, access log)
 * -> routes. Errors from any route are rendered by {@linkcode errorResponse}.
 *
 * @module
 */
import { Hono } from "hono";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { errorResponse, OllaError } from "./errors.ts";
import type { InflightTracker } from "./inflight.ts";
import type { Logger } from "./log.ts";
import type { ConnInfo } from "./runtime.ts";
import { NAME, VERSION } from "./version.ts";

/** Hono environment: the connection info the runtime passes, and per-request state. */
export interface AppEnv {
  Bindings: ConnInfo;
  Variables: { requestId: string };
}

/** Collaborators of the app. */
export interface AppDeps {
  config: Config;
  logger: Logger;
  inflight: InflightTracker;
  clock: Clock;
}

const REQUEST_ID_REGEXP = /^[\x21-\x7e]{1,128}$/;

/** The client's `X-Request-ID` when it is at most 128 printable ASCII characters, else a new id. */
export function requestIdFor(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given !== null && REQUEST_ID_REGEXP.test(given) ? given : crypto.randomUUID();
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
    const started = clock.now();
    const requestId = requestIdFor(c.req.raw);
    c.set("requestId", requestId);
    try {
      await next();
    } finally {
      end();
    }
    c.res.headers.set("x-olla-request-id", requestId);
    if (deps.config.server.request_logging) {
      logger.info("request", {
        request_id: requestId,
        client: c.env?.remoteAddr,
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((clock.now() - started) * 1000) / 1000,
      });
    }
  });

  app.get("/internal/health", (c) => c.json({ status: "healthy" }));
  app.get("/version", (c) => c.json({ name: NAME, version: VERSION }));

  app.notFound((c) =>
    errorResponse(
      new OllaError(404, `No route for ${c.req.method} ${c.req.path}`, {
        code: "route_not_found",
        fault: "client",
      }),
    )
  );
  app.onError((error, c) => {
    if (!(error instanceof OllaError)) {
      logger.error("unhandled error", { request_id: c.get("requestId"), error });
    }
    return errorResponse(error);
  });
  return app;
}
