// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fakeFetch, jsonResponse } from "./fakes/fetch.ts";
import { HealthChecker } from "../lib/health/checker.ts";
import { WakeCoordinator } from "../lib/health/wake.ts";
import { silentLogger } from "../lib/log.ts";

describe("WakeCoordinator", () => {
  function setup(wakes: boolean) {
    const clock = new FakeClock();
    const registry = registryOf([{
      name: "a",
      url: "http://a:23333",
      auth: { type: "bearer", token: "tok-123" },
    }], clock);
    let sleeping = true;
    const fetch = fakeFetch((call) => {
      const path = new URL(call.url).pathname;
      if (path === "/wakeup") {
        if (wakes) sleeping = false;
        return new Response(null, { status: 200 });
      }
      if (path === "/health") {
        return jsonResponse(200, { status: sleeping ? "sleeping" : "healthy", message: "" });
      }
      return jsonResponse(200, { is_sleeping: sleeping });
    });
    const health = new HealthChecker({ registry, fetch, clock, logger: silentLogger });
    const wake = new WakeCoordinator({
      registry,
      fetch,
      clock,
      logger: silentLogger,
      probeNow: (name) => health.checkNow(name),
      timeoutMs: 5_000,
    });
    return { clock, registry, fetch, health, wake };
  }

  test("many concurrent waiters send exactly one /wakeup, with JSON content type and auth", async () => {
    const { registry, fetch, health, wake } = setup(true);
    await health.checkNow("a");
    assert.equal(registry.get("a")?.status, "sleeping");
    const endpoint = registry.get("a")!;
    const results = await Promise.all(Array.from({ length: 20 }, () => wake.wake(endpoint)));
    assert.deepEqual(new Set(results), new Set([true]));
    const wakeups = fetch.calls.filter((call) => call.url.endsWith("/wakeup"));
    assert.equal(wakeups.length, 1);
    assert.equal(wakeups[0].method, "POST");
    assert.equal(wakeups[0].headers.get("content-type"), "application/json");
    assert.equal(wakeups[0].headers.get("authorization"), "Bearer tok-123");
    assert.equal(registry.get("a")?.status, "healthy");
    health.stop();
  });

  test("gives up after the wake timeout when the engine stays asleep", async () => {
    const { clock, registry, health, wake } = setup(false);
    await health.checkNow("a");
    const result = wake.wake(registry.get("a")!);
    await clock.advance(5_000);
    assert.equal(await result, false);
    health.stop();
  });

  test("a waiter that gives up does not cancel the wake-up for the others", async () => {
    const { registry, health, wake } = setup(true);
    await health.checkNow("a");
    const impatient = new AbortController();
    impatient.abort();
    const [gaveUp, patient] = await Promise.all([
      wake.wake(registry.get("a")!, impatient.signal),
      wake.wake(registry.get("a")!),
    ]);
    assert.equal(gaveUp, false);
    assert.equal(patient, true);
    health.stop();
  });
});
