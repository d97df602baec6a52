/**
 * Answers olla-ts gives from its own view of the endpoints instead of asking one: an
 * LMDeploy-shaped `/health` and `/is_sleeping` over a scope of endpoints, and the model
 * cards a scope can serve now.
 *
 * @module
 */
import type { ModelCard } from "../../profiles/model_lists.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import { isLive, isRoutable, isWakeable } from "../../registry/endpoint_state.ts";

/** `/health` answered from olla-ts's view, in LMDeploy v0.14+'s `{status, message}` shape. */
export function healthAnswer(
  scope: readonly EndpointView[],
  label: string,
  now: number,
): Response {
  const routable = scope.filter((endpoint) => isRoutable(endpoint, now)).length;
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
export function sleepAnswer(scope: readonly EndpointView[], now: number): Response {
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
  scope: readonly EndpointView[],
  wakeOnDemand: boolean,
  now: number,
): ModelCard[] {
  const seen = new Map<string, ModelCard>();
  for (const endpoint of scope) {
    if (!isRoutable(endpoint, now) && !isWakeable(endpoint, wakeOnDemand)) continue;
    for (const card of endpoint.models?.values() ?? []) {
      if (!seen.has(card.id)) seen.set(card.id, card);
    }
  }
  return [...seen.values()];
}
