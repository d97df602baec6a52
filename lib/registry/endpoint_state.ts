/**
 * An endpoint's status and the questions every stage asks of it, answered here and
 * nowhere else: may it be sent a request now, is its engine up, does it answer at all,
 * may it be woken. Pure functions of the state they are given (and the time).
 *
 * @module
 */

/** What olla-ts knows about an endpoint's ability to serve. */
export type EndpointStatus =
  /** Not probed yet. */
  | "unknown"
  /** Configured as `type: auto` (or without a type) and not recognised yet. */
  | "detecting"
  | "healthy"
  /** Answering, but slowly. */
  | "busy"
  /** LMDeploy sleep mode: up, but inference is gated until `/wakeup`. */
  | "sleeping"
  /** Up, but its model is still loading (llama.cpp's 503). */
  | "loading"
  /** Answering with an error, or not answering a probe in time. */
  | "unhealthy"
  /** Unreachable: connection refused, reset or unresolvable. */
  | "offline"
  /** The backend refused olla-ts's credentials (401/403). */
  | "config_error"
  /** The backend asked olla-ts to slow down (429). */
  | "rate_limited";

/**
 * Share of traffic per status. A status with weight 0 is not routable. `unknown` takes
 * traffic so that requests arriving before the first probe are served (failover covers
 * a wrong guess); `busy` takes less.
 */
export const TRAFFIC_WEIGHT: Readonly<Record<EndpointStatus, number>> = {
  healthy: 1,
  unknown: 0.5,
  busy: 0.3,
  detecting: 0,
  sleeping: 0,
  loading: 0,
  unhealthy: 0,
  offline: 0,
  config_error: 0,
  rate_limited: 0,
};

/** The parts of an endpoint's state the predicates read. */
export interface EndpointState {
  readonly status: EndpointStatus;
  /** Time until which a backend's 429 keeps the endpoint out of rotation. */
  readonly rateLimitedUntil: number;
  readonly breaker: { allows(now: number): boolean };
  readonly config: { readonly wake_on_demand?: boolean };
  /** Being removed: it finishes what it serves and takes nothing new. */
  readonly draining?: boolean;
  /** Drained by an operator until undrained. */
  readonly held?: boolean;
}

/** Whether endpoints with this status take traffic at all (its traffic weight is above 0). */
export function takesTraffic(status: EndpointStatus): boolean {
  return TRAFFIC_WEIGHT[status] > 0;
}

/**
 * Whether the endpoint may be sent a request now: its status takes traffic, it is not
 * inside a backend's `Retry-After`, and its circuit breaker allows a request.
 */
export function isRoutable(endpoint: EndpointState, now: number): boolean {
  return takesTraffic(endpoint.status) && endpoint.rateLimitedUntil <= now &&
    endpoint.breaker.allows(now) && endpoint.draining !== true && endpoint.held !== true;
}

/**
 * Whether the engine is up: routable now, or asleep (LMDeploy's sleep mode keeps the
 * server answering while inference is gated). What LMDeploy-style `/health` and
 * `/is_sleeping` answers count, and when the health checker asks for models.
 */
export function isLive(endpoint: EndpointState, now: number): boolean {
  // An operator's drain takes an endpoint out of rotation, not out of service.
  const routable = endpoint.held
    ? isRoutable({ ...endpoint, held: false }, now)
    : isRoutable(endpoint, now);
  return routable || endpoint.status === "sleeping";
}

/**
 * Whether the endpoint answers at all, so its model list is worth asking for: anything
 * but unreachable, failing or refusing olla-ts's credentials (LMDeploy lists its models
 * while asleep, llama.cpp while loading).
 */
export function isReachable(endpoint: Pick<EndpointState, "status">): boolean {
  return endpoint.status !== "offline" && endpoint.status !== "config_error" &&
    endpoint.status !== "unhealthy" && endpoint.status !== "detecting";
}

/**
 * Whether a sleeping endpoint may be woken when a request needs it: its own
 * `wake_on_demand`, else `proxy.wake_on_demand` (passed as `wakeOnDemand`).
 */
export function isWakeable(endpoint: EndpointState, wakeOnDemand: boolean): boolean {
  return endpoint.status === "sleeping" && (endpoint.config.wake_on_demand ?? wakeOnDemand);
}

/** Whether a probe that found this status succeeded (it resets the failure count). */
export function isProbeSuccess(status: EndpointStatus): boolean {
  return takesTraffic(status) || status === "sleeping";
}

/**
 * Whether this status says a probe saw the endpoint serving. `unknown` takes traffic but
 * was never seen, so an endpoint leaving it is re-admitted (and its models read).
 */
export function wasSeenServing(status: EndpointStatus): boolean {
  return takesTraffic(status) && status !== "unknown";
}
