/**
 * An endpoint's share of traffic (configured weight times its status's traffic weight)
 * and weighted random choice, which every balancer builds on.
 *
 * @module
 */
import type { EndpointView } from "../registry/endpoint.ts";
import { TRAFFIC_WEIGHT } from "../registry/endpoint_state.ts";

/** The share of traffic an endpoint should get: configured weight times status weight. */
export function effectiveWeight(endpoint: EndpointView): number {
  return endpoint.config.weight * TRAFFIC_WEIGHT[endpoint.status];
}

/** Weighted random choice; `random` is in [0, 1). */
export function weightedRandom(
  candidates: readonly EndpointView[],
  random: number,
): EndpointView | undefined {
  let total = 0;
  for (const candidate of candidates) total += effectiveWeight(candidate);
  if (total <= 0) return undefined;
  let point = random * total;
  for (const candidate of candidates) {
    point -= effectiveWeight(candidate);
    if (point < 0) return candidate;
  }
  return candidates.findLast((candidate) => effectiveWeight(candidate) > 0);
}
