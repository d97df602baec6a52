/**
 * Provider routes, `/olla/<prefix>/<path>`, generated from profile data: each path the
 * profile allows is proxied to endpoints of that type, answered by olla-ts from its own
 * view (health, model list, sleep state), refused with a clear message, or treated as a
 * management route. Anything else under the prefix is a 404 from olla-ts and never
 * reaches a backend, and encoded or dot-segment paths are refused before matching.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { healthAnswer, retrievedModel, servableCards, sleepAnswer } from "./local_answers.ts";
import { methodNotAllowed, refusal, routingMethod, subPath } from "./route_checks.ts";
import type { AppEnv, RouteLabel } from "../app_env.ts";
import type { RateGate } from "../rate_gate.ts";
import { splitTarget } from "../request_target.ts";
import { clipped, OllaError } from "../../errors.ts";
import { renderModelList } from "../../profiles/model_lists.ts";
import { findRule, type Profile, type ProfileSet, type RouteRule } from "../../profiles/profile.ts";
import type { Dispatcher, DispatchRequest } from "../../proxy/dispatch.ts";
import { OLLA } from "../../proxy/olla_headers.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import type { Registry } from "../../registry/registry.ts";

/** Collaborators of the provider routes. */
export interface ProviderRouteDeps {
  registry: Registry;
  profiles: ProfileSet;
  dispatcher: Dispatcher;
  /** `proxy.wake_on_demand`: sleeping endpoints' models count as servable. */
  wakeOnDemand: boolean;
  /** `proxy.allow_management_routes`. */
  allowManagementRoutes: boolean;
  /** `server.auth.enabled`: management routes then need an admin key. */
  authEnabled: boolean;
  /** Spends the rate-limit tokens of a request about to be forwarded (rate_gate.ts). */
  admitToBackend: RateGate;
}

/** How a request reached olla-ts, for the upstream request's `X-Forwarded-*` headers. */
export function forwardingOf(c: Context<AppEnv>, proto: string): DispatchRequest["forwarding"] {
  return { clientIp: c.get("clientIp"), proto, host: c.req.header("host") ?? null };
}

function managementTarget(
  c: Context<AppEnv>,
  deps: ProviderRouteDeps,
  profile: Profile,
): EndpointView {
  if (!deps.allowManagementRoutes) {
    throw new OllaError(
      403,
      `${profile.displayName} management routes are disabled; set proxy.allow_management_routes: true to forward them`,
      { code: "management_disabled", fault: "policy" },
    );
  }
  if (deps.authEnabled && !c.get("principal")?.admin) {
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

/**
 * What a provider prefix's requests share, worked out on its first request: its profile,
 * its model-list path and one route label per rule (the same objects for every request).
 */
interface PrefixRoutes {
  profile: Profile;
  /** `/olla/<prefix>/v1/models` or the like, when the profile lists models. */
  listPath: string | undefined;
  labels: Map<RouteRule | undefined, RouteLabel>;
}

function prefixRoutes(prefix: string, profile: Profile): PrefixRoutes {
  const listRule = profile.routes.find((route) =>
    route.action === "models" && route.path.endsWith("v1/models")
  );
  const labels = new Map<RouteRule | undefined, RouteLabel>(
    profile.routes.map((rule) => [rule, {
      template: `/olla/${prefix}/${rule.path}`,
      backendType: profile.name,
    }]),
  );
  labels.set(undefined, { template: "unmatched", backendType: profile.name });
  return {
    profile,
    listPath: listRule ? `/olla/${prefix}/${listRule.path}` : undefined,
    labels,
  };
}

/** The handler for `/olla/:prefix/*`. */
function providerHandler(deps: ProviderRouteDeps) {
  const byPrefix = new Map<string, PrefixRoutes>();
  return async function providerRoute(c: Context<AppEnv>): Promise<Response> {
    const prefix = c.req.param("prefix") ?? "";
    let routes = byPrefix.get(prefix);
    const profile = routes?.profile ?? deps.profiles.forPrefix(prefix);
    if (!profile) {
      const configured = [
        ...new Set(deps.registry.endpoints.flatMap((endpoint) => endpoint.profile.prefixes)),
      ];
      const known = configured.length > 0
        ? `; the configured endpoints are served under ${
          configured.map((name) => `/olla/${name}/`).join(", ")
        } and /olla/openai/`
        : "; no endpoints are configured";
      const shown = clipped(prefix);
      throw new OllaError(404, `Unknown provider "${shown}" in /olla/${shown}/${known}`, {
        code: "provider_not_found",
        fault: "client",
      });
    }
    if (!routes) byPrefix.set(prefix, routes = prefixRoutes(prefix, profile));
    const { listPath, labels } = routes;
    const url = splitTarget(c.req.url);
    const method = routingMethod(c.req.method);
    const scope = deps.registry.endpoints.filter((endpoint) => endpoint.profile === profile);
    // Before the path checks: a model id may hold an encoded `/`, and is never forwarded.
    if (listPath && method === "GET" && url.path.startsWith(`${listPath}/`)) {
      c.set("route", { template: `${listPath}/{id}`, backendType: profile.name });
      const cards = servableCards(scope, deps.wakeOnDemand, deps.registry.now());
      return retrievedModel(url.path.slice(listPath.length + 1), cards, listPath);
    }
    const path = subPath(url.path, prefix);
    const rule = findRule(profile, path);
    c.set("route", labels.get(rule));
    if (!rule) {
      throw new OllaError(
        404,
        `${profile.displayName} has no route /${path} that olla-ts forwards`,
        { code: "route_not_found", fault: "client" },
      );
    }
    if (!rule.methods.includes(method)) throw methodNotAllowed(rule.methods, c.req.method);
    switch (rule.action) {
      case "health":
        return healthAnswer(scope, profile.displayName, deps.registry.now());
      case "sleep_status":
        return sleepAnswer(scope, deps.registry.now());
      case "models":
        return Response.json(
          renderModelList(
            rule.format ?? profile.models.format,
            servableCards(scope, deps.wakeOnDemand, deps.registry.now()),
          ),
        );
      case "refuse":
        throw refusal(rule);
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
        const admitted = deps.admitToBackend(c);
        if (admitted) await admitted;
        return await deps.dispatcher.dispatch({
          request: c.req.raw,
          record: c.get("record"),
          scope: direct ? [direct] : scope,
          scopeKey: profile.name,
          scopeLabel: profile.displayName,
          upstreamPath: `/${path}${url.search}`,
          forwarding: forwardingOf(c, url.proto),
          direct,
          modelListPath: listPath,
        });
      }
    }
  };
}

/** The provider routes as a sub-app. */
export function providerRoutes(deps: ProviderRouteDeps): Hono<AppEnv> {
  return new Hono<AppEnv>().all("/olla/:prefix/*", providerHandler(deps));
}
