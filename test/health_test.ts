// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fakeFetch, type FetchCall, hang, jsonResponse, refused } from "./fakes/fetch.ts";
import { HealthChecker, MAX_BACKOFF_MS, nextProbeDelay } from "../lib/health/checker.ts";
import { classifyHealth } from "../lib/health/probe.ts";
import { silentLogger } from "../lib/log.ts";

const HEALTHY = { status: "healthy", message: "Engine is healthy." };

function setup(
  endpoints: Record<string, unknown>[],
  script: Parameters<typeof fakeFetch>[0],
  onReachable?: (name: string, recovered: boolean) => void,
) {
  const clock = new FakeClock();
  const registry = registryOf(endpoints, clock);
  const fetch = fakeFetch(script);
  const checker = new HealthChecker({
    registry,
    fetch,
    clock,
    logger: silentLogger,
    random: () => 0.5,
    onReachable,
  });
  return { clock, registry, fetch, checker };
}

/** The status of one LMDeploy endpoint after its first probe against `script`. */
async function statusAfterFirstProbe(script: Parameters<typeof fakeFetch>[0]) {
  const { clock, registry, checker } = setup([{ name: "a", url: "http://a:23333" }], script);
  checker.start();
  await clock.advance(0);
  checker.stop();
  return registry.get("a")?.status;
}

function pathOf(call: FetchCall): string {
  return new URL(call.url).pathname;
}

function lmdeploy(sleeping = false) {
  return (call: FetchCall) =>
    pathOf(call) === "/health"
      ? jsonResponse(200, HEALTHY)
      : jsonResponse(200, { is_sleeping: sleeping });
}

describe("classifyHealth()", () => {
  const answer = (status: number, body = "", retryAfter: string | null = null) => ({
    status,
    body,
    retryAfter,
  });

  test("reads every LMDeploy /health shape", () => {
    assert.equal(classifyHealth("lmdeploy", answer(200, "")).status, "healthy", "v0.13 empty 200");
    assert.equal(
      classifyHealth("lmdeploy", answer(200, JSON.stringify(HEALTHY))).status,
      "healthy",
    );
    assert.equal(
      classifyHealth(
        "lmdeploy",
        answer(200, '{"status":"sleeping","message":"Engine is sleeping."}'),
      ).status,
      "sleeping",
    );
    const initializing = classifyHealth(
      "lmdeploy",
      answer(503, '{"status":"initializing","message":"Engine health monitor is starting."}'),
    );
    assert.deepEqual(initializing, {
      status: "unhealthy",
      error: "LMDeploy reports initializing: Engine health monitor is starting.",
    });
    assert.equal(
      classifyHealth(
        "lmdeploy",
        answer(503, '{"status":"unhealthy","message":"No successful health probe for 90s."}'),
      )
        .status,
      "unhealthy",
    );
  });

  test("maps 401/403 to config_error and 429 to rate_limited with Retry-After", () => {
    assert.equal(classifyHealth("lmdeploy", answer(401)).status, "config_error");
    assert.equal(classifyHealth("status", answer(403)).status, "config_error");
    assert.deepEqual(classifyHealth("status", answer(429, "", "7")), {
      status: "rate_limited",
      error: "health check answered 429",
      retryAfterMs: 7_000,
    });
  });

  test("reads llama.cpp's loading 503", () => {
    const loading = classifyHealth(
      "llamacpp",
      answer(503, '{"error":{"code":503,"message":"Loading model"}}'),
    );
    assert.equal(loading.status, "loading");
    assert.equal(classifyHealth("llamacpp", answer(200, '{"status":"ok"}')).status, "healthy");
  });
});

describe("nextProbeDelay()", () => {
  const delay = (failures: number, intervalMs = 2_000, elapsedMs = 0, random = () => 0.5) =>
    nextProbeDelay({ intervalMs, consecutiveFailures: failures, elapsedMs, random });

  test("keeps the interval while healthy and after one failure, minus the probe's own time", () => {
    assert.equal(delay(0), 2_000);
    assert.equal(delay(1), 2_000);
    assert.equal(delay(0, 2_000, 300), 1_700);
  });

  test("doubles per further failure, up to 12x and the cap", () => {
    assert.deepEqual([2, 3, 4, 5, 6].map((f) => delay(f)), [4_000, 8_000, 16_000, 24_000, 24_000]);
    assert.equal(delay(10, 10_000), MAX_BACKOFF_MS);
    assert.equal(delay(10, 120_000), 120_000, "an interval above the cap is kept");
  });

  test("jitters backed-off delays by up to 10% either way", () => {
    assert.equal(delay(2, 2_000, 0, () => 0), 3_600);
    assert.equal(delay(2, 2_000, 0, () => 1), 4_400);
  });
});

describe("HealthChecker", () => {
  test("probes each endpoint at its own check_interval, starting at once", async () => {
    const { clock, fetch, checker } = setup([
      { name: "a", url: "http://a:23333", check_interval: "2s" },
      { name: "b", url: "http://b:23333", check_interval: "5s" },
    ], lmdeploy());
    checker.start();
    await clock.advance(10_000);
    checker.stop();
    const healthOf = (host: string) =>
      fetch.calls.filter((c) => pathOf(c) === "/health" && c.url.includes(host));
    assert.equal(healthOf("//a:").length, 6, "t=0,2,4,6,8,10");
    assert.equal(healthOf("//b:").length, 3, "t=0,5,10");
  });

  test("bounds each probe by check_timeout and marks a silent endpoint unhealthy", async () => {
    const { clock, registry, checker } = setup(
      [{ name: "a", url: "http://a:23333", check_interval: "5s", check_timeout: "1s" }],
      (_call, signal) => hang(signal),
    );
    checker.start();
    await clock.advance(999);
    assert.equal(registry.get("a")?.status, "unknown");
    await clock.advance(1);
    assert.equal(registry.get("a")?.status, "unhealthy");
    assert.match(registry.get("a")?.lastError ?? "", /timed out after 1000ms/);
    checker.stop();
  });

  test("backs off after repeated failures and re-admits on the next success", async () => {
    let up = false;
    const reachable: [string, boolean][] = [];
    const { clock, registry, fetch, checker } = setup(
      [{ name: "a", url: "http://a:23333", check_interval: "1s" }],
      (call) => (up ? lmdeploy()(call) : refused()),
      (name, recovered) => reachable.push([name, recovered]),
    );
    checker.start();
    await clock.advance(0);
    assert.equal(registry.get("a")?.status, "offline");
    // failures: 1 at t=0, 2 at t=1s, 3 at t=3s, 4 at t=7s -> next at t=15s
    await clock.advance(14_000);
    assert.equal(fetch.calls.length, 4);
    assert.equal(registry.get("a")?.nextCheckAt, clock.now() + 1_000);
    up = true;
    await clock.advance(1_000);
    assert.equal(registry.get("a")?.status, "healthy");
    assert.deepEqual(reachable, [["a", true]]);
    const before = fetch.calls.length;
    await clock.advance(1_000);
    assert.equal(fetch.calls.length - before, 2, "back to the 1s interval (health + is_sleeping)");
    checker.stop();
  });

  test("detects a sleeping LMDeploy engine through /is_sleeping while /health says healthy", async () => {
    const { clock, registry, checker } = setup(
      [{ name: "a", url: "http://a:23333" }],
      lmdeploy(true),
    );
    checker.start();
    await clock.advance(0);
    assert.equal(registry.get("a")?.status, "sleeping");
    assert.equal(registry.isRoutable(registry.get("a")!), false);
    checker.stop();
  });

  test("detects sleep on a v0.13 engine whose /health is an empty 200", async () => {
    assert.equal(
      await statusAfterFirstProbe((call) =>
        pathOf(call) === "/health"
          ? new Response(null, { status: 200 })
          : jsonResponse(200, { is_sleeping: true })
      ),
      "sleeping",
    );
  });

  test("treats a missing /is_sleeping (LMDeploy before v0.11) as awake", async () => {
    assert.equal(
      await statusAfterFirstProbe((call) =>
        pathOf(call) === "/health"
          ? jsonResponse(200, HEALTHY)
          : jsonResponse(404, { detail: "Not Found" })
      ),
      "healthy",
    );
  });

  test("sends the endpoint's auth on every probe", async () => {
    const { clock, fetch, checker } = setup(
      [{ name: "a", url: "http://a:23333", auth: { type: "bearer", token: "sk-gpu-secret" } }],
      lmdeploy(),
    );
    checker.start();
    await clock.advance(0);
    checker.stop();
    assert.deepEqual(fetch.calls.map(pathOf), ["/health", "/is_sleeping"]);
    for (const call of fetch.calls) {
      assert.equal(call.headers.get("authorization"), "Bearer sk-gpu-secret");
    }
  });

  test("marks an endpoint config_error when /is_sleeping refuses the key", async () => {
    assert.equal(
      await statusAfterFirstProbe((call) =>
        pathOf(call) === "/health"
          ? jsonResponse(200, HEALTHY)
          : jsonResponse(401, { message: "Unauthorized." })
      ),
      "config_error",
    );
  });

  test("marks a slow but answering endpoint busy", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:23333", check_timeout: "2s" }], clock);
    const fetch = fakeFetch(async (call) => {
      if (pathOf(call) === "/health") await clock.advance(1_500);
      return lmdeploy()(call);
    });
    const checker = new HealthChecker({ registry, fetch, clock, logger: silentLogger });
    await checker.checkNow("a");
    assert.equal(registry.get("a")?.status, "busy");
    checker.stop();
  });

  test("stop() leaves no timer behind", async () => {
    const { clock, checker } = setup([{ name: "a", url: "http://a:23333" }], lmdeploy());
    checker.start();
    await clock.advance(0);
    checker.stop();
    assert.equal(clock.pending, 0);
  });
});
