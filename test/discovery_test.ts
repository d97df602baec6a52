import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fakeFetch, jsonResponse } from "./fakes/fetch.ts";
import { ModelDiscovery } from "../lib/health/discovery.ts";
import { silentLogger } from "../lib/log.ts";
import { parseModelList } from "../lib/profiles/model_lists.ts";

const lmdeployCard = (id: string) => ({
  id,
  object: "model",
  created: 1755760000,
  owned_by: "lmdeploy",
  root: id,
  parent: null,
  permission: [{ id: "modelperm-abc", object: "model_permission", organization: "*" }],
});

function discoveryFor(
  registry: ReturnType<typeof registryOf>,
  fetch: typeof globalThis.fetch,
  clock: FakeClock,
) {
  return new ModelDiscovery({
    registry,
    fetch,
    clock,
    logger: silentLogger,
    enabled: true,
    intervalMs: 60_000,
    timeoutMs: 1_000,
    retryAttempts: 2,
    retryBackoffMs: 100,
  });
}

describe("parseModelList()", () => {
  test("keeps LMDeploy cards whole, adapters and slash ids included", () => {
    const cards = parseModelList("openai", {
      object: "list",
      data: [lmdeployCard("internlm/internlm2_5-7b-chat"), lmdeployCard("my-adapter"), {
        object: "model",
      }],
    });
    assert.deepEqual(cards.map((c) => c.id), ["internlm/internlm2_5-7b-chat", "my-adapter"]);
    assert.deepEqual(cards[0].raw, lmdeployCard("internlm/internlm2_5-7b-chat"));
  });

  test("reads Ollama's list by name", () => {
    assert.deepEqual(
      parseModelList("ollama", { models: [{ name: "llama3:8b", size: 1 }] }).map((c) => c.id),
      [
        "llama3:8b",
      ],
    );
  });

  test("refuses a body that is not a model list", () => {
    assert.throws(
      () => parseModelList("openai", { models: [] }),
      /expected an object with a "data" array/,
    );
  });
});

describe("ModelDiscovery", () => {
  test("reads each endpoint's model_url with its auth and applies model_filter", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{
      name: "a",
      url: "http://a:23333",
      auth: { type: "bearer", token: "k-123456" },
      model_filter: { exclude: ["*-reward"] },
    }], clock);
    const fetch = fakeFetch(() =>
      jsonResponse(200, {
        object: "list",
        data: [lmdeployCard("org/chat"), lmdeployCard("org/chat-reward")],
      })
    );
    const discovery = discoveryFor(registry, fetch, clock);
    assert.equal(await discovery.refresh("a"), true);
    assert.equal(fetch.calls[0].url, "http://a:23333/v1/models");
    assert.equal(fetch.calls[0].headers.get("authorization"), "Bearer k-123456");
    assert.deepEqual([...registry.get("a")?.models?.keys() ?? []], ["org/chat"]);
  });

  test("re-reads on its interval, so models that disappear stop routing", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:23333" }], clock);
    let served = ["m1", "m2"];
    const fetch = fakeFetch(() => jsonResponse(200, { data: served.map(lmdeployCard) }));
    const discovery = discoveryFor(registry, fetch, clock);
    discovery.start();
    await clock.advance(0);
    assert.deepEqual([...registry.modelIds()].sort(), ["m1", "m2"]);
    served = ["m2"];
    await clock.advance(60_000);
    assert.deepEqual([...registry.modelIds()], ["m2"]);
    discovery.stop();
  });

  test("retries a failed read with back-off, then gives up", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:23333" }], clock);
    const fetch = fakeFetch(() => jsonResponse(500, { message: "boom" }));
    const discovery = discoveryFor(registry, fetch, clock);
    const done = discovery.refresh("a");
    await clock.advance(300);
    assert.equal(await done, false);
    assert.equal(fetch.calls.length, 3, "first try and two retries");
    assert.equal(registry.get("a")?.models, undefined);
  });

  test("joins a refresh already in progress", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:23333" }], clock);
    const fetch = fakeFetch(() => jsonResponse(200, { data: [lmdeployCard("m")] }));
    const discovery = discoveryFor(registry, fetch, clock);
    await Promise.all([discovery.refresh("a"), discovery.refresh("a"), discovery.refresh("a")]);
    assert.equal(fetch.calls.length, 1);
  });
});
