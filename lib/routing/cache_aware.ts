/**
 * `cache-aware`: send a prompt where its longest prefix was served recently (that engine
 * likely still holds it in its prefix cache, so its prefill is shorter), as SGLang's
 * router does, and fall back to least-loaded when the match is short or the fleet is out
 * of balance. Its parameters keep SGLang's names and defaults: the match must cover
 * `cache_threshold` (0.5) of the prompt, and balance wins when the most and least loaded
 * endpoints differ by more than `balance_abs` (32) requests and by more than `balance_rel`
 * (1.1) times. A full KV cache also sends the request elsewhere. LMDeploy `session_id`
 * affinity and sticky sessions are applied before any balancer and keep precedence.
 *
 * @module
 */
import { type LoadSignals, pickLeastLoaded } from "./load_balancers.ts";
import type { PrefixMatches } from "./prefix_cache.ts";
import { effectiveWeight } from "./weights.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** `cache_aware` settings. */
export interface CacheAwareSettings {
  cache_threshold: number;
  balance_abs: number;
  balance_rel: number;
}

/** The endpoint for a prompt of `promptBytes` bytes, given what each endpoint has cached. */
export function pickCacheAware(
  candidates: readonly EndpointView[],
  signals: LoadSignals,
  matches: PrefixMatches,
  promptBytes: number,
  settings: CacheAwareSettings,
  turn: number,
): EndpointView | undefined {
  const leastLoaded = pickLeastLoaded(candidates, signals, turn);
  if (promptBytes === 0 || matches.size === 0) return leastLoaded;
  const usable = candidates.filter((candidate) => effectiveWeight(candidate) > 0);
  let best: EndpointView | undefined;
  let bestMatch = 0;
  for (const candidate of usable) {
    const match = matches.get(candidate.name) ?? 0;
    if (
      match > bestMatch ||
      (match === bestMatch && best && match > 0 && signals.loadOf(candidate) < signals.loadOf(best))
    ) {
      best = candidate;
      bestMatch = match;
    }
  }
  if (!best || bestMatch / promptBytes < settings.cache_threshold || signals.isFull(best)) {
    return leastLoaded;
  }
  const loads = usable.map((candidate) => signals.loadOf(candidate));
  const most = Math.max(...loads);
  const least = Math.min(...loads);
  const imbalanced = most - least > settings.balance_abs && most > settings.balance_rel * least;
  return imbalanced ? leastLoaded : best;
}
