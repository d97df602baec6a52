/**
 * Which unreachable endpoint to probe early when nothing can serve a request. A backend
 * that restarted is otherwise unused until its next probe, and after a long outage the
 * probe back-off puts that up to a minute away (a 21 s outage meant 21 s of 503s after
 * the backend was back). Probing one endpoint early, on the request's behalf, turns that
 * into one probe's latency. Pure: the dispatcher does the probing.
 *
 * The endpoint probed is the one checked longest ago (the least recently seen failing,
 * so the likeliest to have come back), and never one checked within the last
 * {@linkcode EARLY_PROBE_GAP_MS} (or its `check_interval`, if shorter): while everything
 * is really down, a flood of requests costs at most one probe per endpoint per second,
 * not one per request.
 *
 * @module
 */
import type { EndpointView } from "../registry/endpoint.ts";

/** Least time between two early probes of one endpoint. */
export const EARLY_PROBE_GAP_MS = 1_000;

/** The endpoint worth an early probe among those that cannot take traffic now, if any. */
export function revivalCandidate(
  unavailable: readonly EndpointView[],
  now: number,
): EndpointView | undefined {
  let best: EndpointView | undefined;
  for (const endpoint of unavailable) {
    if (endpoint.draining) continue;
    if (endpoint.status !== "offline" && endpoint.status !== "unhealthy") continue;
    const gap = Math.min(EARLY_PROBE_GAP_MS, endpoint.config.check_interval);
    const checkedAt = endpoint.lastCheckAt ?? -Infinity;
    if (now - checkedAt < gap) continue;
    if (!best || checkedAt < (best.lastCheckAt ?? -Infinity)) best = endpoint;
  }
  return best;
}
