/**
 * Load balancers: given the routable candidates for one request, pick one. Selection
 * is pure over its inputs: the candidates, a random number, and, for the stateful
 * strategies, a small state object the caller keeps (a rotation cursor or running
 * weights). No I/O, no timers.
 *
 * Every strategy honours each endpoint's `weight` times the traffic weight of its status
 * (a busy endpoint gets less), and an endpoint with effective weight 0 gets nothing.
 *
 * @module
 */
import {
  pickMinExpectedLatency,
  pickMinObservedLatency,
  pickRandom,
} from "./lmdeploy_balancers.ts";
import { effectiveWeight, weightedRandom } from "./weights.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** Balancer names accepted in `proxy.load_balancer`. */
export type BalancerName =
  | "priority"
  | "round-robin"
  | "least-connections"
  | "random"
  | "min_expected_latency"
  | "min_observed_latency";

/**
 * Priority: only the highest `priority` tier that has a candidate with weight; inside it,
 * weighted random (healthy 1, busy 0.3, times `weight`). Lower tiers take traffic only
 * when no higher one can.
 */
export function pickPriority(
  candidates: readonly EndpointView[],
  random: number,
): EndpointView | undefined {
  const weighted = candidates.filter((candidate) => effectiveWeight(candidate) > 0);
  if (weighted.length === 0) return undefined;
  const top = Math.max(...weighted.map((candidate) => candidate.config.priority));
  return weightedRandom(weighted.filter((candidate) => candidate.config.priority === top), random);
}

/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every candidate's weight
 * to its running score, takes the highest, and subtracts the total from it. Equal weights
 * give plain rotation; weights 3:1 give a, a, b, a (interleaved, not bursty).
 * `scores` is the running state, kept by the caller across requests.
 */
export function pickRoundRobin(
  candidates: readonly EndpointView[],
  scores: Map<string, number>,
): EndpointView | undefined {
  let total = 0;
  let best: EndpointView | undefined;
  let bestScore = -Infinity;
  for (const candidate of candidates) {
    const weight = effectiveWeight(candidate);
    if (weight <= 0) continue;
    total += weight;
    const score = (scores.get(candidate.name) ?? 0) + weight;
    scores.set(candidate.name, score);
    if (score > bestScore) [best, bestScore] = [candidate, score];
  }
  if (best) scores.set(best.name, bestScore - total);
  return best;
}

/**
 * Least connections, weighted and failure-aware: the lowest
 * `(in-flight + 1) * (1 + consecutive breaker failures) / weight`. Counting failures keeps
 * a backend that answers errors quickly (and so never has anything in flight) from
 * drawing more traffic; ties rotate through `cursor` so that a recovered endpoint is not
 * starved by configuration order.
 */
export function pickLeastConnections(
  candidates: readonly EndpointView[],
  cursor: { value: number },
): EndpointView | undefined {
  let best: EndpointView[] = [];
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const weight = effectiveWeight(candidate);
    if (weight <= 0) continue;
    const score = (candidate.inflight + 1) * (1 + candidate.breaker.failures) / weight;
    if (score < bestScore - 1e-9) {
      best = [candidate];
      bestScore = score;
    } else if (Math.abs(score - bestScore) <= 1e-9) {
      best.push(candidate);
    }
  }
  if (best.length === 0) return undefined;
  return best[cursor.value++ % best.length];
}

/** A balancer with its own state. */
export interface Balancer {
  readonly name: BalancerName;
  pick(candidates: readonly EndpointView[]): EndpointView | undefined;
}

/** Creates the balancer named in the configuration. */
export function createBalancer(name: BalancerName, random: () => number = Math.random): Balancer {
  switch (name) {
    case "priority":
      return { name, pick: (candidates) => pickPriority(candidates, random()) };
    case "round-robin": {
      const scores = new Map<string, number>();
      return { name, pick: (candidates) => pickRoundRobin(candidates, scores) };
    }
    case "least-connections": {
      const cursor = { value: 0 };
      return { name, pick: (candidates) => pickLeastConnections(candidates, cursor) };
    }
    case "random":
      return { name, pick: (candidates) => pickRandom(candidates, random()) };
    case "min_expected_latency":
      return { name, pick: (candidates) => pickMinExpectedLatency(candidates, random()) };
    case "min_observed_latency":
      return { name, pick: (candidates) => pickMinObservedLatency(candidates, random()) };
  }
}
