/**
 * The HTTP application: the order of the middleware every request passes, and the route
 * table, built from sub-apps mounted with `app.route()`. Nothing here does I/O beyond
 * answering; errors from any route are rendered by {@linkcode errorResponse}.
 *
 * Middleware order: request context (id, client address, record, in-flight count,
 * `X-Olla-*` headers, finishing the record) -> CORS (when enabled) -> guard (header size,
 * rate limits, access to `/internal/*`, inbound keys) -> routes.
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "./app_env.ts";
import { MemoRouter } from "./memo_router.ts";
import { splitTarget } from "./request_target.ts";
import { type AnthropicRouteDeps, anthropicRoutes } from "./routes/anthropic.ts";
import { type EndpointActionDeps, endpointActionRoutes } from "./routes/endpoint_actions.ts";
import { type FleetRouteDeps, fleetRoutes } from "./routes/fleet_routes.ts";
import { type InternalRouteDeps, internalRoutes } from "./routes/internal.ts";
import { type ModelRouteDeps, modelRoutes } from "./routes/models.ts";
import { providerRoutes } from "./routes/provider.ts";
import { type UiRouteDeps, uiRoutes } from "./routes/ui.ts";
import { unifiedRoutes } from "./routes/unified.ts";
import type { Config } from "../config/schema.ts";
import { clipped, errorResponse, OllaError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { OLLA } from "../proxy/olla_headers.ts";

/** Collaborators of the app. */
export interface AppDeps extends InternalRouteDeps, ModelRouteDeps, AnthropicRouteDeps {
  /** `server.root_v1_routes`: the unified OpenAI routes also at `/v1/...`. */
  rootV1Routes: boolean;
  /** LMDeploy node registration and `/internal/reload`. */
  fleet: FleetRouteDeps;
  /** The status page and its data. */
  ui: UiRouteDeps;
  /** Drain, undrain, sleep and wake one endpoint. */
  endpointActions: EndpointActionDeps;
  logger: Logger;
  cors: Config["server"]["cors"];
  /** The request-context middleware (request_context.ts). */
  requestContext: MiddlewareHandler<AppEnv>;
  /** Limits, keys and access rules (guard.ts). */
  guard: MiddlewareHandler<AppEnv>;
}

/** Headers browsers may read when CORS is on: every X-Olla-* header olla-ts sets, and the limits. */
const EXPOSED_HEADERS = [
  ...Object.values(OLLA),
  "server-timing",
  "retry-after",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
];

function corsMiddleware(settings: Config["server"]["cors"]): MiddlewareHandler<AppEnv> {
  return cors({
    origin: settings.allowed_origins.includes("*") ? "*" : [...settings.allowed_origins],
    allowMethods: [...settings.allowed_methods],
    allowHeaders: settings.allowed_headers.includes("*") ? [] : [...settings.allowed_headers],
    exposeHeaders: [...new Set([...EXPOSED_HEADERS, ...settings.exposed_headers])],
    credentials: settings.allow_credentials,
    maxAge: settings.max_age,
  });
}

/** Builds the application. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ router: new MemoRouter() });
  app.use(deps.requestContext);
  if (deps.cors.enabled) app.use(corsMiddleware(deps.cors));
  app.use(deps.guard);

  // Order matters where templates overlap: /olla/models and the unified prefixes come
  // before the provider catch-all /olla/:prefix/*.
  app.route("/", internalRoutes(deps));
  app.route("/", fleetRoutes(deps.fleet));
  app.route("/", uiRoutes(deps.ui));
  app.route("/", endpointActionRoutes(deps.endpointActions));
  app.route("/", modelRoutes(deps));
  app.route("/", unifiedRoutes(deps, deps.rootV1Routes));
  app.route("/", anthropicRoutes(deps));
  app.route("/", providerRoutes(deps));

  app.notFound((c) => {
    const path = splitTarget(c.req.url).path;
    return errorResponse(
      new OllaError(404, `No route for ${c.req.method} ${clipped(path)}${rootHint(path)}`, {
        code: "route_not_found",
        fault: "client",
      }),
    );
  });
  app.onError((error, c) => {
    if (!(error instanceof OllaError)) {
      deps.logger.error("unhandled error", {
        request_id: c.get("record")?.id,
        error: String(error),
      });
    }
    return errorResponse(error);
  });
  return app;
}

/**
 * For an OpenAI or Anthropic path at the root (a client whose base URL lacks olla-ts's
 * prefix): where that API lives here. `server.root_v1_routes` answers `/v1/...` itself.
 */
function rootHint(path: string): string {
  if (path.startsWith("/v1/messages")) {
    return "; Anthropic clients use the base URL /olla/anthropic";
  }
  if (!path.startsWith("/v1/")) return "";
  return "; OpenAI clients use the base URL /olla/openai/v1 (any OpenAI-compatible backend) or " +
    "/olla/lmdeploy/v1 (LMDeploy), or set server.root_v1_routes: true to serve /v1/ here";
}
