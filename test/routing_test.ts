// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import type { Config } from "../lib/config/schema.ts";
import type { Registry } from "../lib/registry/registry.ts";
import { selectCandidates } from "../lib/routing/candidates.ts";

type Strategy = Config["model_registry"]["routing_strategy"];
const strategy = (
  type: Strategy["type"],
  fallback: Strategy["options"]["fallback_behavior"] = "compatible_only",
) =>
  ({
    type,
    options: {
      fallback_behavior: fallback,
      discovery_timeout: 2_000,
      discovery_refresh_on_miss: false,
    },
  }) as Strategy;

const card = (id: string) => ({ id, raw: { id } });

function fleet(): Registry {
  const registry = registryOf([
    { name: "a", url: "http://a:1" },
    { name: "b", url: "http://b:1" },
    { name: "c", url: "http://c:1" },
  ], new FakeClock());
  for (const name of ["a", "b", "c"]) {
    registry.applyProbe(name, { status: "healthy", latencyMs: 1 });
  }
  registry.setModels("a", [card("Qwen/Qwen2.5-7B-Instruct"), card("shared")]);
  registry.setModels("b", [card("internlm/internlm2_5-7b-chat"), card("shared")]);
  registry.setModels("c", [card("other")]);
  return registry;
}

function select(
  registry: Registry,
  model: string | undefined,
  s = strategy("strict"),
  aliases = {},
) {
  return selectCandidates({
    registry,
    scope: registry.endpoints,
    model,
    strategy: s,
    aliases,
    now: 0,
  });
}

const names = (list: readonly { name: string }[]) => list.map((e) => e.name);

describe("selectCandidates()", () => {
  test("routes a known model to the endpoints that list it, case preserved", () => {
    const registry = fleet();
    const selection = select(registry, "Qwen/Qwen2.5-7B-Instruct");
    assert.deepEqual(names(selection.candidates), ["a"]);
    assert.deepEqual(selection.routing, {
      strategy: "strict",
      decision: "routed",
      reason: "model_found",
    });
    assert.deepEqual(names(select(registry, "shared").candidates), ["a", "b"]);
    assert.equal(select(registry, "qwen/qwen2.5-7b-instruct").known, false, "no case folding");
  });

  test("sends a request without a model to every routable endpoint in scope", () => {
    const selection = select(fleet(), undefined);
    assert.deepEqual(names(selection.candidates), ["a", "b", "c"]);
    assert.equal(selection.routing.reason, "no_model");
  });

  test("strict: an unknown model is rejected as not found (404)", () => {
    const selection = select(fleet(), "missing");
    assert.deepEqual(selection.candidates, []);
    assert.equal(selection.known, false);
    assert.deepEqual(selection.routing, {
      strategy: "strict",
      decision: "rejected",
      reason: "model_not_found",
    });
  });

  test("strict: a known model whose endpoints are all down is unavailable (503)", () => {
    const registry = fleet();
    registry.reportFailure("a", "connection", "refused");
    const selection = select(registry, "Qwen/Qwen2.5-7B-Instruct");
    assert.deepEqual(selection.candidates, []);
    assert.equal(selection.known, true);
    assert.deepEqual(names(selection.unavailable), ["a"]);
    assert.equal(selection.routing.reason, "model_unavailable");
  });

  test("optimistic with fallback all: unknown and unavailable models go to any routable endpoint", () => {
    const registry = fleet();
    const unknown = select(registry, "missing", strategy("optimistic", "all"));
    assert.deepEqual(names(unknown.candidates), ["a", "b", "c"]);
    assert.deepEqual(unknown.routing, {
      strategy: "optimistic",
      decision: "fallback",
      reason: "model_not_found_all_fallback",
    });
    registry.reportFailure("a", "connection", "refused");
    const unavailable = select(registry, "Qwen/Qwen2.5-7B-Instruct", strategy("optimistic", "all"));
    assert.deepEqual(names(unavailable.candidates), ["b", "c"]);
    assert.equal(unavailable.routing.reason, "model_unavailable_all_fallback");
  });

  test("optimistic with compatible_only or none rejects like strict", () => {
    for (const fallback of ["compatible_only", "none"] as const) {
      assert.equal(
        select(fleet(), "missing", strategy("optimistic", fallback)).routing.decision,
        "rejected",
      );
    }
  });

  test("discovery: same outcomes as strict once lists are refreshed (the refresh is the caller's)", () => {
    assert.equal(
      select(fleet(), "missing", strategy("discovery")).routing.reason,
      "model_not_found",
    );
  });

  test("endpoints whose models are not discovered yet may serve an unknown model", () => {
    const registry = registryOf([{ name: "new", url: "http://n:1" }], new FakeClock());
    const selection = select(registry, "anything");
    assert.deepEqual(names(selection.candidates), ["new"]);
    assert.equal(selection.routing.reason, "model_not_yet_discovered");
  });

  test("an alias routes to endpoints serving any of its names and gives each its real name", () => {
    const registry = fleet();
    const aliases = { chat: ["internlm/internlm2_5-7b-chat", "Qwen/Qwen2.5-7B-Instruct"] };
    const selection = select(registry, "chat", strategy("strict"), aliases);
    assert.deepEqual(names(selection.candidates), ["a", "b"]);
    assert.equal(selection.routing.reason, "alias_resolved");
    assert.equal(selection.modelFor(registry.get("a")!), "Qwen/Qwen2.5-7B-Instruct");
    assert.equal(selection.modelFor(registry.get("b")!), "internlm/internlm2_5-7b-chat");
  });

  test("an alias that resolves to no endpoint fails closed under strict", () => {
    const selection = select(fleet(), "chat", strategy("strict"), { chat: ["gone-model"] });
    assert.equal(selection.routing.decision, "rejected");
    assert.equal(selection.known, false);
  });

  test("only endpoints in scope are considered", () => {
    const registry = fleet();
    const selection = selectCandidates({
      registry,
      scope: [registry.get("c")!],
      model: "shared",
      strategy: strategy("strict"),
      aliases: {},
      now: 0,
    });
    assert.equal(selection.known, false);
  });
});
