/**
 * The strategies of LMDeploy's `proxy_server` (`--routing-strategy`), so its operators
 * keep their choice: `random` (weighted by each endpoint's weight; a registered node's
 * `speed` becomes its weight), `min_expected_latency` (the fewest requests in flight per
 * unit of weight, ties broken at random) and `min_observed_latency` (the lowest mean of
 * the last 15 answer durations; endpoints with none are tried first, so they get
 * measured). Pure functions of the candidates and a random number, like balancer.ts.
 *
 * @module
 */
import { effectiveWeight, weightedRandom } from "./weights.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** LMDeploy's `random`: weighted random choice. */
export function pickRandom(
  candidates: readonly EndpointView[],
  random: number,
): EndpointView | undefined {
  return weightedRandom(candidates, random);
}

/** The candidates with the lowest `score`, among those with weight; `[]` when none. */
function lowest(
  candidates: readonly EndpointView[],
  score: (endpoint: EndpointView, weight: number) => number,
): EndpointView[] {
  let best: EndpointView[] = [];
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const weight = effectiveWeight(candidate);
    if (weight <= 0) continue;
    const value = score(candidate, weight);
    if (value < bestScore - 1e-9) {
      best = [candidate];
      bestScore = value;
    } else if (Math.abs(value - bestScore) <= 1e-9) {
      best.push(candidate);
    }
  }
  return best;
}

/** LMDeploy's default: the fewest unfinished requests per unit of speed (weight). */
export function pickMinExpectedLatency(
  candidates: readonly EndpointView[],
  random: number,
): EndpointView | undefined {
  const best = lowest(candidates, (endpoint, weight) => endpoint.inflight / weight);
  return best[Math.floor(random * best.length)];
}

function meanLatency(endpoint: EndpointView): number {
  const samples = endpoint.recentLatenciesMs;
  if (samples.length === 0) return -1;
  let sum = 0;
  for (const sample of samples) sum += sample;
  return sum / samples.length;
}

/**
 * The lowest mean of the recent answer durations. Unlike LMDeploy (which counts a node
 * without samples as infinitely slow, so it is never tried), an endpoint not measured
 * yet goes first: it gets measured instead of starved.
 */
export function pickMinObservedLatency(
  candidates: readonly EndpointView[],
  random: number,
): EndpointView | undefined {
  const best = lowest(candidates, meanLatency);
  return best[Math.floor(random * best.length)];
}
