/**
 * Balancers on what the engines report (engine_loads.ts): `least-loaded` sends each
 * request to the endpoint with the lowest estimated load per unit of weight (requests
 * running and waiting on the engine, plus olla-ts's since the report), and
 * `power-of-two` compares two candidates drawn at random and takes the less loaded (cheap,
 * and robust when the reports are stale: it never herds every request onto one endpoint).
 * An endpoint whose KV cache is at or above the `full` threshold counts as loaded past
 * every other, so it is chosen only when all are full. Pure functions of the candidates,
 * the signals, a pick counter and random numbers.
 *
 * @module
 */
import { effectiveWeight } from "./weights.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** What the load-aware balancers read about each endpoint. */
export interface LoadSignals {
  /** Estimated requests on the engine. */
  loadOf(endpoint: EndpointView): number;
  /** Whether its KV cache is at or above the full threshold. */
  isFull(endpoint: EndpointView): boolean;
}

/** The score to minimise: full endpoints last, then load per unit of weight. */
export function loadScore(endpoint: EndpointView, signals: LoadSignals): number {
  const weight = effectiveWeight(endpoint);
  if (weight <= 0) return Infinity;
  const score = (signals.loadOf(endpoint) + 1) / weight;
  return signals.isFull(endpoint) ? 1e9 + score : score;
}

/**
 * Least estimated load. Ties rotate: the caller counts its picks (`turn`) and a tie goes
 * to the `turn`-th of the tied, so requests arriving while endpoints are level spread
 * over them in turn. Drawn at random instead, runs of picks land on one endpoint by
 * chance and queue there (with one half-speed engine in the simulated fleet, TTFT p99 went
 * from ~85 to ~130 ms).
 */
export function pickLeastLoaded(
  candidates: readonly EndpointView[],
  signals: LoadSignals,
  turn: number,
): EndpointView | undefined {
  let best: EndpointView[] = [];
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const score = loadScore(candidate, signals);
    if (score === Infinity) continue;
    if (score < bestScore - 1e-9) {
      best = [candidate];
      bestScore = score;
    } else if (Math.abs(score - bestScore) <= 1e-9) {
      best.push(candidate);
    }
  }
  return best[turn % best.length];
}

/** Two candidates at random (weighted), the less loaded of them. */
export function pickPowerOfTwo(
  candidates: readonly EndpointView[],
  signals: LoadSignals,
  first: number,
  second: number,
): EndpointView | undefined {
  const usable = candidates.filter((candidate) => effectiveWeight(candidate) > 0);
  if (usable.length <= 1) return usable[0];
  const a = Math.floor(first * usable.length);
  let b = Math.floor(second * (usable.length - 1));
  if (b >= a) b++;
  return loadScore(usable[b], signals) < loadScore(usable[a], signals) ? usable[b] : usable[a];
}
