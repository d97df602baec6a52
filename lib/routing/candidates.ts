/**
 * Which endpoints may serve a request, and why: Olla's model routing strategies
 * (`strict`, `optimistic`, `discovery`) and fallback behaviours, and `model_aliases`.
 * Pure: it reads the registry's current state and returns a decision; waking, waiting
 * and discovery refreshes are the caller's business.
 *
 * Model ids are matched exactly, case preserved (Olla lower-cases them, which breaks
 * HuggingFace ids such as `Qwen/Qwen2.5-7B-Instruct`).
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";

/** How a request was routed, reported in the `X-Olla-Routing-*` headers. */
export interface RoutingDecision {
  readonly strategy: Config["model_registry"]["routing_strategy"]["type"];
  /** `routed`, `fallback` or `rejected`. */
  readonly decision: "routed" | "fallback" | "rejected";
  readonly reason: string;
}

/** The outcome of {@linkcode selectCandidates}. */
export interface Selection {
  readonly routing: RoutingDecision;
  /** Endpoints that may take the request now, in configuration order. */
  readonly candidates: readonly EndpointView[];
  /** Endpoints that serve the model but cannot take traffic now (asleep, down, breaker open). */
  readonly unavailable: readonly EndpointView[];
  /** The model name to send to an endpoint (an alias resolves per endpoint). */
  readonly modelFor: (endpoint: EndpointView) => string | undefined;
  /** Whether the model is known anywhere in scope (404 versus 503 when nothing can serve). */
  readonly known: boolean;
}

/** Options for {@linkcode selectCandidates}. */
export interface SelectOptions {
  registry: Registry;
  /** Endpoints allowed for this route (its provider type, or every OpenAI-compatible one). */
  scope: readonly EndpointView[];
  /** The body's `model`, when it has one. */
  model: string | undefined;
  strategy: Config["model_registry"]["routing_strategy"];
  aliases: Config["model_aliases"];
  now: number;
}

/**
 * Chooses the candidate endpoints for a request.
 *
 * - No model: every routable endpoint in scope (`no_model`).
 * - An alias: endpoints serving any of its real names; each gets the first name it
 *   serves. If none serves any, the alias is treated as an ordinary (unknown) model.
 * - A model listed by some endpoint in scope: those endpoints (`model_found`); when none
 *   of them can take traffic now, `model_unavailable` (503) unless the fallback is `all`.
 * - A model no endpoint lists: endpoints whose models are not discovered yet may have it
 *   (`model_not_yet_discovered`), unless `optimistic` or `discovery` with fallback `all`
 *   sends it to any routable endpoint. With none of those routable, an endpoint in scope
 *   not discovered yet (down or still starting) makes it `model_endpoints_unavailable`
 *   (503 naming them); only when every endpoint's list is known and lacks the model is
 *   it `model_not_found` (404).
 */
export function selectCandidates(options: SelectOptions): Selection {
  const { registry, scope, model, strategy, aliases, now } = options;
  const routable = (endpoint: EndpointView) => registry.isRoutable(endpoint, now);
  const type = strategy.type;
  const fallbackAll = type !== "strict" && strategy.options.fallback_behavior === "all";
  const make = (
    decision: RoutingDecision["decision"],
    reason: string,
    serving: readonly EndpointView[],
    modelFor: (endpoint: EndpointView) => string | undefined = () => model,
    known = true,
  ): Selection => ({
    routing: { strategy: type, decision, reason },
    candidates: decision === "rejected" ? [] : serving.filter(routable),
    unavailable: serving.filter((endpoint) => !routable(endpoint)),
    modelFor,
    known,
  });

  if (model === undefined) return make("routed", "no_model", scope);

  const targets = aliases[model];
  if (targets) {
    const realName = new Map<string, string>();
    for (const endpoint of scope) {
      const served = targets.find((target) => endpoint.models?.has(target));
      if (served !== undefined) realName.set(endpoint.name, served);
    }
    const serving = scope.filter((endpoint) => realName.has(endpoint.name));
    if (serving.length > 0) {
      const selection = make(
        "routed",
        "alias_resolved",
        serving,
        (endpoint) => realName.get(endpoint.name),
      );
      if (selection.candidates.length > 0 || !fallbackAll) return selection;
      return make("fallback", "alias_unavailable_fallback", scope);
    }
  }

  const servingNames = registry.endpointsServing(model);
  const serving = servingNames ? scope.filter((endpoint) => servingNames.has(endpoint.name)) : [];
  if (serving.length > 0) {
    const selection = make("routed", "model_found", serving);
    if (selection.candidates.length > 0) return selection;
    if (fallbackAll) return make("fallback", "model_unavailable_all_fallback", scope);
    return { ...make("rejected", "model_unavailable", serving), candidates: [] };
  }
  const undiscovered = scope.filter((endpoint) => endpoint.models === undefined);
  if (undiscovered.some(routable)) return make("routed", "model_not_yet_discovered", undiscovered);
  if (fallbackAll) return make("fallback", "model_not_found_all_fallback", scope);
  // Not discovered yet and not routable (down from the start, still starting): it may
  // serve the model once up, so the honest answer is "not now" (503 naming it), not
  // "nowhere" (404). An endpoint whose list is known and lacks the model does not count,
  // even while it is down: a mistyped model must not become a 503 that SDKs retry.
  if (undiscovered.length > 0) {
    return { ...make("rejected", "model_endpoints_unavailable", undiscovered), candidates: [] };
  }
  return make("rejected", "model_not_found", [], () => model, false);
}
