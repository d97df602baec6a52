// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import { TRAFFIC_WEIGHT } from "../lib/registry/endpoint_state.ts";
import { waitForEndpoint } from "../lib/registry/wait_for.ts";

const card = (id: string) => ({
  id,
  raw: { id, object: "model", owned_by: "lmdeploy", root: id, parent: null },
});

describe("Registry", () => {
  test("identifies endpoints by name, so two may share a URL", () => {
    const registry = registryOf([
      { name: "a", url: "http://gpu:23333", priority: 100 },
      { name: "b", url: "http://gpu:23333", priority: 50 },
    ], new FakeClock());
    assert.equal(registry.get("a")?.config.priority, 100);
    assert.equal(registry.get("b")?.config.priority, 50);
  });

  test("routes only statuses with traffic weight: healthy, busy and not-yet-probed", () => {
    const routable = Object.entries(TRAFFIC_WEIGHT).filter(([, weight]) => weight > 0).map(([s]) =>
      s
    ).sort();
    assert.deepEqual(routable, ["busy", "healthy", "unknown"]);
  });

  test("demotes an endpoint to offline at once on a proxied connection error", () => {
    const registry = registryOf([{ name: "a", url: "http://a:1" }], new FakeClock());
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    registry.reportFailure("a", "connection", "connection refused");
    assert.equal(registry.get("a")?.status, "offline");
    assert.equal(registry.isRoutable(registry.get("a")!), false);
  });

  test("marks an endpoint sleeping at once when a proxied request finds it asleep", () => {
    const registry = registryOf([{ name: "a", url: "http://a:1" }], new FakeClock());
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    registry.reportSleeping("a");
    assert.equal(registry.get("a")?.status, "sleeping");
  });

  test("keeps a rate-limited endpoint out of rotation for its Retry-After", () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:1" }], clock);
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    registry.reportRateLimited("a", 2_000);
    assert.equal(registry.isRoutable(registry.get("a")!), false);
    assert.equal(registry.isRoutable(registry.get("a")!, clock.now() + 2_000), true);
  });

  test("opens the breaker after consecutive proxied failures, 5xx included", () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:1" }], clock, {
      breakerFailureThreshold: 2,
    });
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    registry.reportFailure("a", "server_error", "answered 500");
    registry.reportFailure("a", "server_error", "answered 500");
    assert.equal(registry.get("a")?.breaker.state(clock.now()), "open");
    assert.equal(registry.isRoutable(registry.get("a")!), false);
    assert.equal(
      registry.get("a")?.status,
      "healthy",
      "a 5xx leaves the health status to the probes",
    );
  });

  test("a probe that re-admits an endpoint closes its breaker and reports recovery", () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:1" }], clock, {
      breakerFailureThreshold: 1,
    });
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    registry.reportFailure("a", "connection", "refused");
    assert.equal(registry.applyProbe("a", { status: "healthy", latencyMs: 1 }).recovered, true);
    assert.equal(registry.get("a")?.breaker.state(clock.now()), "closed");
    assert.equal(registry.applyProbe("a", { status: "healthy", latencyMs: 1 }).recovered, false);
  });

  test("indexes discovered models, keeping HuggingFace ids and adapters as reported", () => {
    const registry = registryOf([{ name: "a", url: "http://a:1" }, {
      name: "b",
      url: "http://b:1",
    }], new FakeClock());
    registry.setModels("a", [card("internlm/internlm2_5-7b-chat"), card("my-lora")]);
    registry.setModels("b", [card("internlm/internlm2_5-7b-chat")]);
    assert.deepEqual([...registry.endpointsServing("internlm/internlm2_5-7b-chat") ?? []], [
      "a",
      "b",
    ]);
    assert.deepEqual([...registry.endpointsServing("my-lora") ?? []], ["a"]);
    assert.equal(
      registry.endpointsServing("InternLM/internlm2_5-7b-chat"),
      undefined,
      "ids are case-sensitive",
    );
    assert.equal(registry.get("a")?.models?.get("my-lora")?.raw.owned_by, "lmdeploy");
  });

  test("stops routing a model to an endpoint that no longer lists it", () => {
    const registry = registryOf([{ name: "a", url: "http://a:1" }], new FakeClock());
    registry.setModels("a", [card("m1"), card("m2")]);
    registry.setModels("a", [card("m2")]);
    assert.equal(registry.endpointsServing("m1"), undefined);
    assert.deepEqual([...registry.modelIds()], ["m2"]);
  });

  test("applies model_filter globs, exclude winning", () => {
    const registry = registryOf([{
      name: "a",
      url: "http://a:1",
      model_filter: { include: ["internlm/*", "qwen-*"], exclude: ["*-base"] },
    }], new FakeClock());
    registry.setModels("a", [
      card("internlm/chat"),
      card("internlm/x-base"),
      card("qwen-7b"),
      card("llama"),
    ]);
    assert.deepEqual([...registry.get("a")?.models?.keys() ?? []], ["internlm/chat", "qwen-7b"]);
  });

  test("waitForEndpoint() resolves when a status change satisfies the predicate, or false on timeout", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:1" }], clock);
    registry.applyProbe("a", { status: "sleeping", latencyMs: 1 });
    const woke = waitForEndpoint(registry, clock, "a", (e) => e.status === "healthy", 5_000);
    registry.applyProbe("a", { status: "healthy", latencyMs: 1 });
    assert.equal(await woke, true);
    const never = waitForEndpoint(registry, clock, "a", (e) => e.status === "offline", 1_000);
    await clock.advance(1_000);
    assert.equal(await never, false);
  });
});
