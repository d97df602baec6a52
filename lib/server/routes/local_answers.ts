/**
 * Answers olla-ts gives from its own view of the endpoints instead of asking one: an
 * LMDeploy-shaped `/health` and `/is_sleeping` over a scope of endpoints, the model
 * cards a scope can serve now, and one of them by id (OpenAI's `models.retrieve`).
 *
 * @module
 */
import { OllaError, quoted } from "../../errors.ts";
import { type ModelCard, openAiModel } from "../../profiles/model_lists.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import { isLive, isRoutable, isWakeable } from "../../registry/endpoint_state.ts";
import { nearestNames } from "../../suggest.ts";

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

/**
 * `GET <list>/{id}` answered from the cards: OpenAI's model object. The id is the rest of
 * the path as sent, `/` in it sent as it is or as `%2F` (the OpenAI SDK encodes it). It is
 * only ever looked up, never forwarded, so an encoded dot segment cannot leave the route;
 * a 404 names the closest ids and `listPath`.
 *
 * @throws {OllaError} 400 for invalid percent-encoding, 404 for an id not served.
 */
export function retrievedModel(
  encodedId: string,
  cards: readonly ModelCard[],
  listPath: string,
): Response {
  let id: string;
  try {
    id = decodeURIComponent(encodedId);
  } catch {
    throw new OllaError(400, "The model id in the path is not valid percent-encoding", {
      code: "invalid_path",
      fault: "client",
    });
  }
  const card = cards.find((candidate) => candidate.id === id);
  if (card) return Response.json(openAiModel(card, "olla"));
  const nearest = nearestNames(id, cards.map((candidate) => candidate.id));
  throw new OllaError(
    404,
    `The model ${quoted(id)} is not served here${
      nearest.length > 0 ? `; did you mean ${nearest.map((name) => `'${name}'`).join(" or ")}?` : ""
    } (GET ${listPath} lists the models served)`,
    { code: "model_not_found", fault: "client", param: "model" },
  );
}
