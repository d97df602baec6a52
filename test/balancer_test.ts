// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import type { Registry } from "../lib/registry/registry.ts";
import {
  createBalancer,
  pickLeastConnections,
  pickPriority,
  pickRoundRobin,
} from "../lib/routing/balancer.ts";
import {
  pickMinExpectedLatency,
  pickMinObservedLatency,
  pickRandom,
} from "../lib/routing/lmdeploy_balancers.ts";
import { effectiveWeight } from "../lib/routing/weights.ts";

function fleet(specs: Record<string, unknown>[]): Registry {
  const registry = registryOf(
    specs.map((spec, i) => ({ url: `http://e${i}:1`, ...spec })),
    new FakeClock(),
  );
  for (const endpoint of registry.endpoints) {
    registry.applyProbe(endpoint.name, { status: "healthy", latencyMs: 1 });
  }
  return registry;
}

function tally(picks: (string | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pick of picks) out[pick ?? "none"] = (out[pick ?? "none"] ?? 0) + 1;
  return out;
}

describe("effectiveWeight()", () => {
  test("multiplies the configured weight by the status weight", () => {
    const registry = fleet([{ name: "a", weight: 2 }, { name: "b" }]);
    registry.applyProbe("b", { status: "busy", latencyMs: 1 });
    assert.equal(effectiveWeight(registry.get("a")!), 2);
    assert.equal(effectiveWeight(registry.get("b")!), 0.3);
  });
});

describe("pickPriority()", () => {
  test("uses only the highest tier while it has a candidate", () => {
    const registry = fleet([{ name: "low", priority: 10 }, { name: "high1", priority: 90 }, {
      name: "high2",
      priority: 90,
    }]);
    const picks = Array.from(
      { length: 100 },
      (_, i) => pickPriority(registry.endpoints, i / 100)?.name,
    );
    assert.deepEqual(Object.keys(tally(picks)).sort(), ["high1", "high2"]);
  });

  test("falls to the next tier when the top one is gone", () => {
    const registry = fleet([{ name: "low", priority: 10 }, { name: "high", priority: 90 }]);
    assert.equal(pickPriority([registry.get("low")!], 0.5)?.name, "low");
  });

  test("weights within a tier by health and weight", () => {
    const registry = fleet([{ name: "a", weight: 3 }, { name: "b", weight: 1 }]);
    const picks = Array.from(
      { length: 1000 },
      (_, i) => pickPriority(registry.endpoints, i / 1000)?.name,
    );
    assert.deepEqual(tally(picks), { a: 750, b: 250 });
    registry.applyProbe("a", { status: "busy", latencyMs: 1 });
    const busy = Array.from(
      { length: 1000 },
      (_, i) => pickPriority(registry.endpoints, i / 1000)?.name,
    );
    assert.ok(tally(busy).b > tally(busy).a, "a busy endpoint gets less than a healthy one");
  });

  test("a weight of 0 drains the endpoint", () => {
    const registry = fleet([{ name: "a", weight: 0 }, { name: "b" }]);
    const picks = Array.from(
      { length: 50 },
      (_, i) => pickPriority(registry.endpoints, i / 50)?.name,
    );
    assert.deepEqual(tally(picks), { b: 50 });
    assert.equal(pickPriority([registry.get("a")!], 0.5), undefined);
  });
});

describe("pickRoundRobin()", () => {
  test("rotates evenly across equal weights", () => {
    const registry = fleet([{ name: "a" }, { name: "b" }, { name: "c" }]);
    const scores = new Map<string, number>();
    const picks = Array.from({ length: 6 }, () => pickRoundRobin(registry.endpoints, scores)?.name);
    assert.deepEqual(picks, ["a", "b", "c", "a", "b", "c"]);
  });

  test("interleaves by weight instead of bursting", () => {
    const registry = fleet([{ name: "a", weight: 3 }, { name: "b", weight: 1 }]);
    const scores = new Map<string, number>();
    const picks = Array.from({ length: 8 }, () => pickRoundRobin(registry.endpoints, scores)?.name);
    assert.deepEqual(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
  });

  test("ignores priority", () => {
    const registry = fleet([{ name: "a", priority: 1 }, { name: "b", priority: 100 }]);
    const scores = new Map<string, number>();
    assert.deepEqual(
      tally(Array.from({ length: 4 }, () => pickRoundRobin(registry.endpoints, scores)?.name)),
      {
        a: 2,
        b: 2,
      },
    );
  });
});

describe("pickLeastConnections()", () => {
  test("prefers the endpoint with fewer requests in flight", () => {
    const registry = fleet([{ name: "a" }, { name: "b" }]);
    registry.beginAttempt("a");
    registry.beginAttempt("a");
    registry.beginAttempt("b");
    assert.equal(pickLeastConnections(registry.endpoints, { value: 0 })?.name, "b");
  });

  test("counts the other instances' requests in flight when given them", () => {
    const registry = fleet([{ name: "a" }, { name: "b" }]);
    registry.beginAttempt("b");
    const others = (endpoint: { name: string }) => (endpoint.name === "a" ? 3 : 0);
    assert.equal(
      pickLeastConnections(registry.endpoints, { value: 0 }, (e) => e.inflight + others(e))?.name,
      "b",
    );
    assert.equal(pickLeastConnections(registry.endpoints, { value: 0 })?.name, "a");
  });

  test("rotates ties so a recovered endpoint is not starved by configuration order", () => {
    const registry = fleet([{ name: "a" }, { name: "b" }, { name: "c" }]);
    const cursor = { value: 0 };
    const picks = Array.from(
      { length: 6 },
      () => pickLeastConnections(registry.endpoints, cursor)?.name,
    );
    assert.deepEqual(tally(picks), { a: 2, b: 2, c: 2 });
  });

  test("does not feed a backend that fails fast: consecutive failures count against it", () => {
    const registry = fleet([{ name: "flaky" }, { name: "steady" }]);
    registry.reportFailure("flaky", "server_error", "503");
    registry.beginAttempt("steady");
    // flaky: (0+1)*(1+1)/1 = 2; steady: (1+1)*(1+0)/1 = 2 -> tie; one more failure tips it
    registry.reportFailure("flaky", "server_error", "503");
    assert.equal(pickLeastConnections(registry.endpoints, { value: 0 })?.name, "steady");
  });

  test("scales by weight", () => {
    const registry = fleet([{ name: "big", weight: 4 }, { name: "small", weight: 1 }]);
    for (let i = 0; i < 3; i++) registry.beginAttempt("big");
    assert.equal(pickLeastConnections(registry.endpoints, { value: 0 })?.name, "big");
  });
});

describe("createBalancer()", () => {
  test("builds each named strategy", () => {
    const registry = fleet([{ name: "a" }]);
    for (const name of ["priority", "round-robin", "least-connections"] as const) {
      assert.equal(createBalancer(name).pick(registry.endpoints)?.name, "a");
      assert.equal(createBalancer(name).pick([]), undefined);
    }
  });
});

describe("LMDeploy proxy_server's strategies", () => {
  test("random: weighted by weight (a registered node's speed)", () => {
    const registry = fleet([{ name: "a", weight: 3 }, { name: "b", weight: 1 }]);
    const picks = Array.from(
      { length: 400 },
      (_, i) => pickRandom(registry.endpoints, i / 400)?.name,
    );
    assert.deepEqual(tally(picks), { a: 300, b: 100 });
  });

  test("min_expected_latency: the fewest in flight per unit of weight, ties at random", () => {
    const registry = fleet([{ name: "a", weight: 2 }, { name: "b", weight: 1 }, {
      name: "c",
      weight: 1,
    }]);
    for (let i = 0; i < 2; i++) registry.beginAttempt("a");
    registry.beginAttempt("b");
    // a: 2/2 = 1, b: 1/1 = 1, c: 0 -> c.
    assert.equal(pickMinExpectedLatency(registry.endpoints, 0.5)?.name, "c");
    registry.beginAttempt("c");
    // Now a, b and c all score 1: the random number chooses among them.
    assert.equal(pickMinExpectedLatency(registry.endpoints, 0)?.name, "a");
    assert.equal(pickMinExpectedLatency(registry.endpoints, 0.99)?.name, "c");
  });

  test("min_observed_latency: the lowest mean of the last 15 answers; unmeasured ones first", () => {
    const registry = fleet([{ name: "a" }, { name: "b" }, { name: "c" }]);
    for (let i = 0; i < 20; i++) registry.recordAnswerTime("a", i < 5 ? 10_000 : 100);
    registry.recordAnswerTime("b", 300);
    assert.equal(registry.get("a")!.recentLatenciesMs.length, 15, "the window is 15");
    assert.equal(pickMinObservedLatency(registry.endpoints, 0)?.name, "c", "c has no samples yet");
    registry.recordAnswerTime("c", 900);
    assert.equal(pickMinObservedLatency(registry.endpoints, 0)?.name, "a");
  });

  test("each is accepted as proxy.load_balancer", () => {
    for (const name of ["random", "min_expected_latency", "min_observed_latency"] as const) {
      const registry = fleet([{ name: "a" }]);
      assert.equal(createBalancer(name, { random: () => 0 }).pick(registry.endpoints)?.name, "a");
    }
  });
});
