/**
 * Unified routes, `/olla/proxy/<path>` and `/olla/openai/<path>`: OpenAI-compatible
 * requests routed by model across every endpoint whose profile is OpenAI-compatible and
 * allows the path, with the same strategies, balancers, failover and headers as the
 * provider routes. `v1/models` lists the union in OpenAI's format.
 *
 * A path one profile refuses (LMDeploy refuses `/v1/embeddings`) simply leaves that
 * profile's endpoints out of scope; if the requested model lives only there, the client
 * gets that profile's explanation (for embeddings: use `/olla/lmdeploy/pooling`).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { retrievedModel, servableCards } from "./local_answers.ts";
import { forwardingOf, type ProviderRouteDeps } from "./provider.ts";
import { methodNotAllowed, pathAfter, refusal, routingMethod } from "./route_checks.ts";
import type { AppEnv } from "../app_env.ts";
import { splitTarget } from "../request_target.ts";
import { clipped, OllaError } from "../../errors.ts";
import { openAiModel } from "../../profiles/model_lists.ts";
import { findRule, type Profile, type RouteRule } from "../../profiles/profile.ts";
import type { EndpointView } from "../../registry/endpoint.ts";

/** Which OpenAI-compatible profiles serve a path, and which refuse it. */
interface PathScope {
  serving: Set<Profile>;
  /** A rule that has the path with other methods, for the 405. */
  wrongMethod: RouteRule | undefined;
  refusals: { profile: Profile; rule: RouteRule }[];
}

/**
 * The profile's rule for a unified path. An engine serving OpenAI's paths under a base
 * (Lemonade's `/api`, DMR's `/engines`) lists them with it; only its rules naming such a
 * path exactly count, not a catch-all under the base (DMR's `engines/*`).
 */
function unifiedRule(profile: Profile, path: string): RouteRule | undefined {
  if (!profile.openaiBase) return findRule(profile, path);
  const based = `${profile.openaiBase.slice(1)}/${path}`;
  const rule = findRule(profile, based);
  return rule?.path === based ? rule : undefined;
}

function scopeOf(profiles: readonly Profile[], path: string, method: string): PathScope {
  const scope: PathScope = { serving: new Set(), wrongMethod: undefined, refusals: [] };
  for (const profile of profiles) {
    const rule = unifiedRule(profile, path);
    if (rule?.action === "proxy") {
      if (rule.methods.includes(method)) scope.serving.add(profile);
      else scope.wrongMethod ??= rule;
    } else if (rule?.action === "refuse") {
      scope.refusals.push({ profile, rule });
    }
  }
  return scope;
}

/** Where a unified route is mounted: `/olla/proxy`, `/olla/openai`, or the root (`server.root_v1_routes`). */
function baseOf(path: string): string {
  if (path.startsWith("/olla/proxy/")) return "/olla/proxy";
  return path.startsWith("/olla/openai/") ? "/olla/openai" : "";
}

/** The handler for `/olla/proxy/*`, `/olla/openai/*` and, when enabled, `/v1/*`. */
function unifiedHandler(deps: ProviderRouteDeps) {
  return async function unifiedRoute(c: Context<AppEnv>): Promise<Response> {
    const url = splitTarget(c.req.url);
    const base = baseOf(url.path);
    const compatible = deps.profiles.all.filter((profile) => profile.openaiCompatible);
    const listPath = `${base}/v1/models`;
    const method = routingMethod(c.req.method);
    // Before the path checks: a model id may hold an encoded `/`, and is never forwarded.
    if (method === "GET" && url.path.startsWith(`${listPath}/`)) {
      c.set("route", { template: `${listPath}/{id}` });
      const scope = deps.registry.endpoints.filter((endpoint) => endpoint.profile.openaiCompatible);
      const cards = servableCards(scope, deps.wakeOnDemand, deps.registry.now());
      return retrievedModel(url.path.slice(listPath.length + 1), cards, listPath);
    }
    const path = pathAfter(url.path, base);

    if (path === "v1/models" && method === "GET") {
      c.set("route", { template: `${base}/v1/models` });
      const scope = deps.registry.endpoints.filter((endpoint) => endpoint.profile.openaiCompatible);
      const cards = servableCards(scope, deps.wakeOnDemand, deps.registry.now());
      const typeOf = new Map(
        scope.flatMap((e) => [...(e.models?.keys() ?? [])].map((id) => [id, e.type])),
      );
      return c.json({
        object: "list",
        data: cards.map((card) => openAiModel(card, typeOf.get(card.id) ?? "olla-ts")),
      });
    }

    const { serving, wrongMethod, refusals } = scopeOf(compatible, path, method);
    if (serving.size === 0) {
      if (wrongMethod) throw methodNotAllowed(wrongMethod.methods, c.req.method);
      if (refusals.length > 0) throw refusal(refusals[0].rule);
      throw new OllaError(404, `No OpenAI-compatible backend serves /${clipped(path)}`, {
        code: "route_not_found",
        fault: "client",
      });
    }
    c.set("route", { template: `${base}/${path}` });
    const scope = deps.registry.endpoints.filter((endpoint) => serving.has(endpoint.profile));
    const relative = `/${path}${url.search}`;
    const admitted = deps.admitToBackend(c);
    if (admitted) await admitted;
    return await deps.dispatcher.dispatch({
      request: c.req.raw,
      record: c.get("record"),
      scope,
      scopeKey: "unified",
      scopeLabel: "OpenAI-compatible",
      // OpenAI's paths live under a base on some engines (Lemonade's /api, DMR's /engines).
      upstreamPath: scope.some((endpoint) => endpoint.profile.openaiBase !== "")
        ? (endpoint: EndpointView) => `${endpoint.profile.openaiBase}${relative}`
        : relative,
      forwarding: forwardingOf(c, url.proto),
      modelListPath: listPath,
      explainUnknownModel: (model) => {
        const refused = refusals.find(({ profile }) =>
          [...(deps.registry.endpointsServing(model) ?? [])].some((name) =>
            deps.registry.get(name)?.profile === profile
          )
        );
        return refused ? refusal(refused.rule) : undefined;
      },
    });
  };
}

/**
 * The unified routes as a sub-app; with `rootV1` they also answer at `/v1/...`, as
 * LMDeploy's proxy does, so its clients keep their base URL.
 */
export function unifiedRoutes(deps: ProviderRouteDeps, rootV1 = false): Hono<AppEnv> {
  const handler = unifiedHandler(deps);
  const app = new Hono<AppEnv>().all("/olla/proxy/*", handler).all("/olla/openai/*", handler);
  return rootV1 ? app.all("/v1/*", handler) : app;
}
