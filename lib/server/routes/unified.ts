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
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import { OllaError } from "../../errors.ts";
import { findRule, type Profile, type RouteRule } from "../../profiles/profile.ts";
import { splitTarget } from "../../proxy/request_record.ts";
import { openAiModel } from "../../profiles/model_lists.ts";
import { type ProviderRouteDeps, servableCards, subPath } from "./provider.ts";

/** The handler for `/olla/proxy/*` and `/olla/openai/*`. */
export function unifiedHandler(deps: ProviderRouteDeps) {
  return async function unifiedRoute(c: Context<AppEnv>): Promise<Response> {
    const url = splitTarget(c.req.url);
    const prefix = url.path.startsWith("/olla/proxy/") ? "proxy" : "openai";
    const path = subPath(url.path, prefix);
    const record = c.get("record");
    record.provider = "unified";
    const compatible = deps.profiles.all.filter((profile) => profile.openaiCompatible);

    if (path === "v1/models" && c.req.method === "GET") {
      record.route = `/olla/${prefix}/v1/models`;
      const scope = deps.registry.endpoints.filter((endpoint) => endpoint.profile.openaiCompatible);
      const cards = servableCards(deps.registry, scope, deps.config.proxy.wake_on_demand);
      const typeOf = new Map(
        scope.flatMap((e) => [...(e.models?.keys() ?? [])].map((id) => [id, e.type])),
      );
      return c.json({
        object: "list",
        data: cards.map((card) => openAiModel(card, typeOf.get(card.id) ?? "olla-ts")),
      });
    }

    const serving = new Set<Profile>();
    let wrongMethod: RouteRule | undefined;
    const refusals: { profile: Profile; rule: RouteRule }[] = [];
    for (const profile of compatible) {
      const rule = findRule(profile, path);
      if (rule?.action === "proxy") {
        if (rule.methods.includes(c.req.method)) serving.add(profile);
        else wrongMethod ??= rule;
      } else if (rule?.action === "refuse") {
        refusals.push({ profile, rule });
      }
    }
    const refusalError = (rule: RouteRule) =>
      new OllaError(rule.status ?? 404, rule.message ?? "Not available through olla-ts", {
        code: "route_refused",
        fault: "client",
      });
    if (serving.size === 0) {
      if (wrongMethod) {
        throw new OllaError(
          405,
          `${c.req.method} is not allowed here; use ${wrongMethod.methods.join(" or ")}`,
          {
            code: "method_not_allowed",
            fault: "client",
            headers: { allow: wrongMethod.methods.join(", ") },
          },
        );
      }
      if (refusals.length > 0) throw refusalError(refusals[0].rule);
      throw new OllaError(404, `No OpenAI-compatible backend serves /${path}`, {
        code: "route_not_found",
        fault: "client",
      });
    }
    record.route = `/olla/${prefix}/${path}`;
    if (!URL.canParse(`http://upstream/${path}${url.search}`)) {
      throw new OllaError(400, "The request path or query string is not a valid URL", {
        code: "invalid_path",
        fault: "client",
      });
    }
    return await deps.dispatcher.dispatch({
      request: c.req.raw,
      record,
      scope: deps.registry.endpoints.filter((endpoint) => serving.has(endpoint.profile)),
      scopeKey: "unified",
      scopeLabel: "OpenAI-compatible",
      upstreamPath: `/${path}${url.search}`,
      forwarding: {
        clientIp: c.get("clientIp"),
        proto: url.proto,
        host: c.req.header("host") ?? null,
      },
      explainUnknownModel: (model) => {
        const refusal = refusals.find(({ profile }) =>
          [...(deps.registry.endpointsServing(model) ?? [])].some((name) =>
            deps.registry.get(name)?.profile === profile
          )
        );
        return refusal ? refusalError(refusal.rule) : undefined;
      },
    });
  };
}
