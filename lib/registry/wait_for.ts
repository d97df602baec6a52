/**
 * Waiting for an endpoint's state to reach a condition (a draining endpoint going idle,
 * a sleeping one waking), on the registry's change notifications rather than by polling.
 *
 * @module
 */
import type { EndpointView } from "./endpoint.ts";
import type { Registry } from "./registry.ts";
import type { Clock } from "../clock.ts";

/**
 * Resolves `true` once `predicate` holds for the endpoint, or `false` after `timeoutMs`,
 * when `signal` aborts, or when there is no such endpoint.
 */
export function waitForEndpoint(
  registry: Registry,
  clock: Clock,
  name: string,
  predicate: (endpoint: EndpointView) => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const endpoint = registry.get(name);
  if (!endpoint) return Promise.resolve(false);
  if (predicate(endpoint)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (result: boolean) => {
      unsubscribe();
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const onAbort = () => finish(false);
    const unsubscribe = registry.onChange(({ endpoint: changed }) => {
      if (changed.name === name && predicate(changed)) finish(true);
    });
    const timer = clock.setTimeout(() => finish(false), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
