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
import { type CacheAwareSettings, pickCacheAware } from "./cache_aware.ts";
import { type LoadSignals, pickLeastLoaded, pickPowerOfTwo } from "./load_balancers.ts";
import { blockHashes, PrefixCache } from "./prefix_cache.ts";
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
  | "min_observed_latency"
  | "least-loaded"
  | "power-of-two"
  | "cache-aware";

/** What a balancer may know of the request it places (the cache-aware one reads it). */
export interface PickRequest {
  readonly model?: string;
  /** The conversation as sent (`messages`, else `prompt`), the prefix-cache key. */
  readonly prompt?: Uint8Array;
}

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
 * `(in-flight + 1) * (1 + consecutive breaker failures) / weight`, in-flight counting the
 * other instances' requests too when they are shared (`inflightOf`). Counting failures keeps
 * a backend that answers errors quickly (and so never has anything in flight) from
 * drawing more traffic; ties rotate through `cursor` so that a recovered endpoint is not
 * starved by configuration order.
 */
export function pickLeastConnections(
  candidates: readonly EndpointView[],
  cursor: { value: number },
  inflightOf: (endpoint: EndpointView) => number = (endpoint) => endpoint.inflight,
): EndpointView | undefined {
  let best: EndpointView[] = [];
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const weight = effectiveWeight(candidate);
    if (weight <= 0) continue;
    const score = (inflightOf(candidate) + 1) * (1 + candidate.breaker.failures) / weight;
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
  pick(candidates: readonly EndpointView[], request?: PickRequest): EndpointView | undefined;
  /** Told which endpoint answered (the cache-aware balancer records what it now holds). */
  served?(endpoint: EndpointView, request?: PickRequest): void;
}

/** What the load- and cache-aware balancers need besides the candidates. */
export interface BalancerOptions {
  random?: () => number;
  /** Engine-reported load (engine_loads.ts); olla-ts's own counts without it. */
  signals?: LoadSignals;
  /** The other instances' requests in flight at an endpoint (cluster/peers.ts). */
  peerInflight?: (endpoint: EndpointView) => number;
  cacheAware?: CacheAwareSettings & { max_tree_bytes: number };
}

const OWN_COUNTS: LoadSignals = { loadOf: (endpoint) => endpoint.inflight, isFull: () => false };

/** Creates the balancer named in the configuration. */
export function createBalancer(name: BalancerName, options: BalancerOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  const signals = options.signals ?? OWN_COUNTS;
  switch (name) {
    case "priority":
      return { name, pick: (candidates) => pickPriority(candidates, random()) };
    case "round-robin": {
      const scores = new Map<string, number>();
      return { name, pick: (candidates) => pickRoundRobin(candidates, scores) };
    }
    case "least-connections": {
      const cursor = { value: 0 };
      const peers = options.peerInflight;
      const inflightOf = peers
        ? (endpoint: EndpointView) => endpoint.inflight + peers(endpoint)
        : undefined;
      return { name, pick: (candidates) => pickLeastConnections(candidates, cursor, inflightOf) };
    }
    case "random":
      return { name, pick: (candidates) => pickRandom(candidates, random()) };
    case "min_expected_latency":
      return { name, pick: (candidates) => pickMinExpectedLatency(candidates, random()) };
    case "min_observed_latency":
      return { name, pick: (candidates) => pickMinObservedLatency(candidates, random()) };
    case "least-loaded": {
      let turn = 0;
      return { name, pick: (candidates) => pickLeastLoaded(candidates, signals, turn++) };
    }
    case "power-of-two":
      return {
        name,
        pick: (candidates) => pickPowerOfTwo(candidates, signals, random(), random()),
      };
    case "cache-aware":
      return cacheAwareBalancer(signals, options.cacheAware ?? DEFAULT_CACHE_AWARE);
  }
}

const DEFAULT_CACHE_AWARE = {
  cache_threshold: 0.5,
  balance_abs: 32,
  balance_rel: 1.1,
  max_tree_bytes: 64 * 1024 * 1024,
};

function cacheAwareBalancer(
  signals: LoadSignals,
  settings: CacheAwareSettings & { max_tree_bytes: number },
): Balancer {
  const cache = new PrefixCache(settings.max_tree_bytes);
  let turn = 0;
  const hashesOf = (request?: PickRequest) =>
    request?.prompt ? blockHashes(request.prompt, request.model ?? "") : [];
  return {
    name: "cache-aware",
    pick(candidates, request) {
      const hashes = hashesOf(request);
      return pickCacheAware(
        candidates,
        signals,
        cache.match(hashes),
        request?.prompt?.byteLength ?? 0,
        settings,
        turn++,
      );
    },
    served(endpoint, request) {
      cache.insert(hashesOf(request), endpoint.name);
    },
  };
}
