import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type EndpointState,
  type EndpointStatus,
  isLive,
  isProbeSuccess,
  isReachable,
  isRoutable,
  isWakeable,
  takesTraffic,
  TRAFFIC_WEIGHT,
  wasSeenServing,
} from "../lib/registry/endpoint_state.ts";

const STATUSES = Object.keys(TRAFFIC_WEIGHT) as EndpointStatus[];
const NOW = 1_000_000;

function state(
  status: EndpointStatus,
  extra: { rateLimitedUntil?: number; breakerOpen?: boolean; wake?: boolean } = {},
): EndpointState {
  return {
    status,
    rateLimitedUntil: extra.rateLimitedUntil ?? 0,
    breaker: { allows: () => !extra.breakerOpen },
    config: { wake_on_demand: extra.wake },
  };
}

const holding = (predicate: (status: EndpointStatus) => boolean) => STATUSES.filter(predicate);

describe("endpoint status predicates", () => {
  test("takesTraffic() holds for healthy, busy and unknown only", () => {
    assert.deepEqual(holding(takesTraffic), ["healthy", "unknown", "busy"]);
  });

  test("isRoutable() needs a traffic-taking status, no Retry-After and a closed breaker", () => {
    assert.deepEqual(holding((s) => isRoutable(state(s), NOW)), ["healthy", "unknown", "busy"]);
    assert.equal(isRoutable(state("healthy", { rateLimitedUntil: NOW + 1 }), NOW), false);
    assert.equal(isRoutable(state("healthy", { rateLimitedUntil: NOW }), NOW), true);
    assert.equal(isRoutable(state("healthy", { breakerOpen: true }), NOW), false);
  });

  test("isLive() is routable or asleep", () => {
    assert.deepEqual(holding((s) => isLive(state(s), NOW)), [
      "healthy",
      "unknown",
      "busy",
      "sleeping",
    ]);
    assert.equal(isLive(state("sleeping", { breakerOpen: true }), NOW), true);
    assert.equal(isLive(state("healthy", { breakerOpen: true }), NOW), false);
  });

  test("isReachable() is anything but offline, unhealthy or refusing credentials", () => {
    assert.deepEqual(holding((s) => isReachable(state(s))), [
      "healthy",
      "unknown",
      "busy",
      "sleeping",
      "loading",
      "rate_limited",
    ]);
  });

  test("isWakeable() is asleep with wake-on-demand, the endpoint's setting first", () => {
    assert.deepEqual(holding((s) => isWakeable(state(s), true)), ["sleeping"]);
    assert.equal(isWakeable(state("sleeping"), false), false);
    assert.equal(isWakeable(state("sleeping", { wake: true }), false), true);
    assert.equal(isWakeable(state("sleeping", { wake: false }), true), false);
  });

  test("isProbeSuccess() counts traffic-taking statuses and sleep", () => {
    assert.deepEqual(holding(isProbeSuccess), ["healthy", "unknown", "busy", "sleeping"]);
  });

  test("wasSeenServing() excludes unknown: leaving it is a recovery", () => {
    assert.deepEqual(holding(wasSeenServing), ["healthy", "busy"]);
  });
});
