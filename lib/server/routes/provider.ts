/**
 * Provider routes, `/olla/<prefix>/<path>`, generated from profile data: each path the
 * profile allows is proxied to endpoints of that type, answered by olla-ts from its own
 * view (health, model list, sleep state), refused with a clear message, or treated as a
 * management route. Anything else under the prefix is a 404 from olla-ts and never
 * reaches a backend, and encoded or dot-segment paths are refused before matching.
 *
 * @module
 */
import { isLive, isWakeable } from "../../registry/endpoint_state.ts";
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import type { Config } from "../../config/schema.ts";
import type { Dispatcher } from "../../proxy/dispatch.ts";
import { renderModelList } from "../../profiles/model_lists.ts";
import { OllaError } from "../../errors.ts";
import { OLLA } from "../../proxy/headers.ts";
import { findRule, type Profile, type ProfileSet, type RouteRule } from "../../profiles/profile.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import type { Registry } from "../../registry/registry.ts";
import type { ModelCard } from "../../profiles/model_lists.ts";
import { splitTarget } from "../../proxy/request_record.ts";

/** Collaborators of the provider routes. */
export interface ProviderRouteDeps {
  config: Config;
  registry: Registry;
  profiles: ProfileSet;
  dispatcher: Dispatcher;
}

/** Encoded slashes, backslashes, dots or NULs: never needed by a real API path. */
const SUSPICIOUS_PATH_REGEXP = /%2f|%5c|%2e|%00|\\|\/\/|(^|\/)\.{1,2}(\/|$)/i;

/**
 * The path after `/olla/<prefix>/`, as the client sent it (percent-encoding kept).
 *
 * @throws {OllaError} 400 for a path that tries to leave or disguise itself.
 */
export function subPath(pathname: string, prefix: string): string {
  const rest = pathname.slice(`/olla/${prefix}/`.length);
  if (SUSPICIOUS_PATH_REGEXP.test(rest)) {
    throw new OllaError(
      400,
      "The request path contains encoded or dot segments, which olla-ts does not forward",
      {
        code: "invalid_path",
        fault: "client",
      },
    );
  }
  return rest;
}

/** `/health` answered from olla-ts's view, in LMDeploy v0.14+'s `{status, message}` shape. */
export function healthAnswer(
  registry: Registry,
  scope: readonly EndpointView[],
  label: string,
): Response {
  const routable = scope.filter((endpoint) => registry.isRoutable(endpoint)).length;
  const sleeping = scope.filter((endpoint) => endpoint.status === "sleeping").length;
  const counts = {
    total: scope.length,
    routable,
    sleeping,
    unavailable: scope.length - routable - sleeping,
  };
  if (routable > 0) {
    return Response.json({
      status: "healthy",
      message: `${routable} of ${scope.length} ${label} endpoints can take requests.`,
      endpoints: counts,
    });
  }
  if (sleeping > 0) {
    return Response.json({
      status: "sleeping",
      message: `Every live ${label} endpoint is sleeping.`,
      endpoints: counts,
    });
  }
  return Response.json(
    { status: "unhealthy", message: `No ${label} endpoint can take requests.`, endpoints: counts },
    { status: 503 },
  );
}

/** `/is_sleeping` answered from olla-ts's view, with a per-endpoint map. */
function sleepAnswer(registry: Registry, scope: readonly EndpointView[]): Response {
  const now = registry.now();
  const liveOnes = scope.filter((endpoint) => isLive(endpoint, now));
  const endpoints: Record<string, boolean | null> = {};
  for (const endpoint of scope) {
    endpoints[endpoint.name] = isLive(endpoint, now) ? endpoint.status === "sleeping" : null;
  }
  return Response.json({
    is_sleeping: liveOnes.length > 0 &&
      liveOnes.every((endpoint) => endpoint.status === "sleeping"),
    endpoints,
  });
}

/**
 * The models of endpoints that can serve now (and sleeping ones that would be woken),
 * de-duplicated by id in configuration order.
 */
export function servableCards(
  registry: Registry,
  scope: readonly EndpointView[],
  wakeOnDemand: boolean,
): ModelCard[] {
  const seen = new Map<string, ModelCard>();
  for (const endpoint of scope) {
    if (!registry.isRoutable(endpoint) && !isWakeable(endpoint, wakeOnDemand)) continue;
    for (const card of endpoint.models?.values() ?? []) {
      if (!seen.has(card.id)) seen.set(card.id, card);
    }
  }
  return [...seen.values()];
}

function methodNotAllowed(rule: RouteRule, method: string): OllaError {
  return new OllaError(405, `${method} is not allowed here; use ${rule.methods.join(" or ")}`, {
    code: "method_not_allowed",
    fault: "client",
    headers: { allow: rule.methods.join(", ") },
  });
}

function managementTarget(
  c: Context<AppEnv>,
  deps: ProviderRouteDeps,
  profile: Profile,
): EndpointView {
  if (!deps.config.proxy.allow_management_routes) {
    throw new OllaError(
      403,
      `${profile.displayName} management routes are disabled; set proxy.allow_management_routes: true to forward them`,
      { code: "management_disabled", fault: "policy" },
    );
  }
  if (deps.config.server.auth.enabled && !c.get("record").admin) {
    throw new OllaError(
      403,
      `${profile.displayName} management routes need an admin key (server.auth.keys[].admin)`,
      { code: "admin_key_required", fault: "policy" },
    );
  }
  const name = c.req.header(OLLA.targetEndpoint);
  const endpoint = name === undefined ? undefined : deps.registry.get(name);
  if (!endpoint || endpoint.profile !== profile) {
    const names = deps.registry.endpoints.filter((e) => e.profile === profile).map((e) => e.name)
      .join(", ");
    throw new OllaError(
      400,
      `Management routes act on one endpoint: name it in the ${OLLA.targetEndpoint} header (one of: ${names})`,
      { code: "management_target_required", fault: "client" },
    );
  }
  return endpoint;
}

/** The handler for `/olla/:prefix/*`. */
export function providerHandler(deps: ProviderRouteDeps) {
  return async function providerRoute(c: Context<AppEnv>): Promise<Response> {
    const prefix = c.req.param("prefix") ?? "";
    const profile = deps.profiles.forPrefix(prefix);
    const record = c.get("record");
    if (!profile) {
      throw new OllaError(404, `Unknown provider "${prefix}" in /olla/${prefix}/`, {
        code: "provider_not_found",
        fault: "client",
      });
    }
    const url = splitTarget(c.req.url);
    const path = subPath(url.path, prefix);
    if (!URL.canParse(`http://upstream/${path}${url.search}`)) {
      throw new OllaError(400, "The request path or query string is not a valid URL", {
        code: "invalid_path",
        fault: "client",
      });
    }
    const rule = findRule(profile, path);
    record.provider = profile.name;
    record.backendType = profile.name;
    if (!rule) {
      throw new OllaError(
        404,
        `${profile.displayName} has no route /${path} that olla-ts forwards`,
        {
          code: "route_not_found",
          fault: "client",
        },
      );
    }
    record.route = `/olla/${prefix}/${rule.path}`;
    if (!rule.methods.includes(c.req.method)) throw methodNotAllowed(rule, c.req.method);
    const scope = deps.registry.endpoints.filter((endpoint) => endpoint.profile === profile);
    const forwarding = {
      clientIp: c.get("clientIp"),
      proto: url.proto,
      host: c.req.header("host") ?? null,
    };
    switch (rule.action) {
      case "health":
        return healthAnswer(deps.registry, scope, profile.displayName);
      case "sleep_status":
        return sleepAnswer(deps.registry, scope);
      case "models":
        return Response.json(
          renderModelList(
            profile.models.format,
            servableCards(deps.registry, scope, deps.config.proxy.wake_on_demand),
          ),
        );
      case "refuse":
        throw new OllaError(rule.status ?? 404, rule.message ?? "Not available through olla-ts", {
          code: "route_refused",
          fault: "client",
        });
      case "management":
      case "proxy": {
        if (scope.length === 0) {
          throw new OllaError(404, `No ${profile.displayName} endpoints are configured`, {
            code: "no_endpoints_of_type",
            fault: "client",
          });
        }
        const direct = rule.action === "management"
          ? managementTarget(c, deps, profile)
          : undefined;
        return await deps.dispatcher.dispatch({
          request: c.req.raw,
          record,
          scope: direct ? [direct] : scope,
          scopeKey: profile.name,
          scopeLabel: profile.displayName,
          upstreamPath: `/${path}${url.search}`,
          forwarding,
          direct,
        });
      }
    }
  };
}
