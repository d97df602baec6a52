// deno-lint-ignore-file no-non-null-assertion
/**
 * Routing on what the engines know: the Prometheus text reader on each engine's format
 * (and malformed input), the load estimate and its staleness fallback, the load- and
 * cache-aware balancers' choices on constructed signals, the prefix tree's matching and
 * memory bound, the reader's schedule, and one socket test where an engine reporting a
 * long queue gets fewer requests.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { chat, configYaml, endpointYaml, startOlla, until } from "./_harness.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fakeFetch } from "./fakes/fetch.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { parseConfig } from "../lib/config/load.ts";
import { EngineMetricsReader, NOT_SERVED_RECHECK_MS } from "../lib/health/engine_metrics.ts";
import { readSeries } from "../lib/health/prometheus_text.ts";
import { Logger } from "../lib/log.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { EngineLoads, estimatedLoad } from "../lib/registry/engine_loads.ts";
import { Registry } from "../lib/registry/registry.ts";
import { pickCacheAware } from "../lib/routing/cache_aware.ts";
import {
  type LoadSignals,
  pickLeastLoaded,
  pickPowerOfTwo,
} from "../lib/routing/load_balancers.ts";
import { blockHashes, PrefixCache } from "../lib/routing/prefix_cache.ts";

const LMDEPLOY = `# HELP lmdeploy:num_requests_running Number of requests currently running.
# TYPE lmdeploy:num_requests_running gauge
lmdeploy:num_requests_running{engine="0",model_name="internlm2"} 3.0
lmdeploy:num_requests_running{engine="1",model_name="internlm2"} 2.0
# TYPE lmdeploy:num_requests_waiting gauge
lmdeploy:num_requests_waiting{engine="0",model_name="internlm2"} 7.0
lmdeploy:num_requests_waiting{engine="1",model_name="internlm2"} 0.0
# TYPE lmdeploy:gpu_cache_usage_perc gauge
lmdeploy:gpu_cache_usage_perc{engine="0",model_name="internlm2"} 0.42
# TYPE lmdeploy:time_to_first_token_seconds histogram
lmdeploy:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="internlm2"} 5.0
`;
const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 12.0
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 4.0
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 0.9312
vllm:prefix_cache_queries_total{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 1.2e+06
`;
const SGLANG = `# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{engine_type="unified",model_name="meta-llama/Llama-3.1-8B",tp_rank="0"} 9.0
sglang:num_queue_reqs{engine_type="unified",model_name="meta-llama/Llama-3.1-8B",tp_rank="0"} 1.0
sglang:token_usage{engine_type="unified",model_name="meta-llama/Llama-3.1-8B",tp_rank="0"} 0.15 1732000000000
`;

describe("readSeries()", () => {
  test("reads each engine's gauges, summed over label sets (LMDeploy's DP ranks)", () => {
    const lmdeploy = readSeries(
      LMDEPLOY,
      new Set([
        "lmdeploy:num_requests_running",
        "lmdeploy:num_requests_waiting",
        "lmdeploy:gpu_cache_usage_perc",
      ]),
    );
    assert.deepEqual(Object.fromEntries(lmdeploy), {
      "lmdeploy:num_requests_running": 5,
      "lmdeploy:num_requests_waiting": 7,
      "lmdeploy:gpu_cache_usage_perc": 0.42,
    });
    const vllm = readSeries(
      VLLM,
      new Set(["vllm:num_requests_running", "vllm:kv_cache_usage_perc"]),
    );
    assert.deepEqual(Object.fromEntries(vllm), {
      "vllm:num_requests_running": 12,
      "vllm:kv_cache_usage_perc": 0.9312,
    });
    const sglang = readSeries(SGLANG, new Set(["sglang:num_running_reqs", "sglang:token_usage"]));
    assert.deepEqual(Object.fromEntries(sglang), {
      "sglang:num_running_reqs": 9,
      "sglang:token_usage": 0.15,
    });
  });

  test("skips malformed lines, NaN, quoted braces, and names that merely share a prefix", () => {
    const text = [
      "garbage line without value",
      'x{a="}"} 2',
      "x_total 100",
      'x{a="unterminated 9',
      "x NaN",
      "x",
      "x 1e400",
      "x{} 3",
      "",
    ].join("\n");
    assert.deepEqual(Object.fromEntries(readSeries(text, new Set(["x"]))), { x: 5 });
    assert.deepEqual(readSeries("", new Set(["x"])).size, 0);
  });
});

function fleet(names: string[]) {
  const clock = new FakeClock();
  const registry = registryOf(names.map((name) => ({ name, url: `http://${name}:1` })), clock);
  for (const name of names) registry.applyProbe(name, { status: "healthy", latencyMs: 1 });
  return { clock, registry };
}

describe("the load estimate", () => {
  test("olla-ts's own in flight now, plus the engine's load from other clients", () => {
    const { clock, registry } = fleet(["a"]);
    const loads = new EngineLoads();
    const a = () => registry.get("a")!;
    registry.beginAttempt("a");
    // The engine runs 4 and queues 2; one of those is olla-ts's: 5 are someone else's.
    loads.set(a(), { running: 4, waiting: 2 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 6);
    registry.beginAttempt("a");
    registry.beginAttempt("a");
    // LMDeploy has not refreshed: the same figures keep the snapshot; olla-ts's count is exact.
    loads.set(a(), { running: 4, waiting: 2 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 8);
    registry.endAttempt("a");
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 7);
    // New figures that are all olla-ts's: nothing foreign is left.
    loads.set(a(), { running: 2, waiting: 0 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 2);
  });

  test("requests that ended between the engine's snapshot and its read are not counted as others' load", () => {
    const { clock, registry } = fleet(["a"]);
    const loads = new EngineLoads();
    const a = () => registry.get("a")!;
    loads.set(a(), { running: 0, waiting: 0 }, clock.now());
    for (let i = 0; i < 4; i++) registry.beginAttempt("a");
    // The engine took its figures with olla-ts's four running; three ended before the read.
    for (let i = 0; i < 3; i++) registry.endAttempt("a");
    loads.set(a(), { running: 4, waiting: 0 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 1);
    // Load that is someone else's still shows: 10 reported, at most 1 of them olla-ts's.
    loads.set(a(), { running: 7, waiting: 3 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000), 1 + 9);
  });

  test("the other instances' requests count once: the larger of their count and the engine's", () => {
    const { clock, registry } = fleet(["a"]);
    const loads = new EngineLoads();
    const a = () => registry.get("a")!;
    registry.beginAttempt("a");
    assert.equal(estimatedLoad(a(), undefined, clock.now(), 30_000, 3), 4);
    // The engine's report already holds the others' 3 (and 2 more from direct clients).
    loads.set(a(), { running: 6, waiting: 0 }, clock.now());
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000, 3), 6);
    // The others' count is fresher: more than the report knows of.
    assert.equal(estimatedLoad(a(), loads.get("a"), clock.now(), 30_000, 9), 10);
  });

  test("stale or failing reports fall back to olla-ts's own in-flight count", async () => {
    const { clock, registry } = fleet(["a"]);
    const loads = new EngineLoads();
    loads.set(registry.get("a")!, { running: 40, waiting: 10 }, clock.now());
    registry.beginAttempt("a");
    await clock.advance(31_000);
    assert.equal(
      estimatedLoad(registry.get("a")!, loads.get("a"), clock.now(), 30_000),
      1,
      "too old",
    );
    loads.set(registry.get("a")!, { running: 40, waiting: 10 }, clock.now());
    loads.failed("a", "connection refused");
    assert.equal(
      estimatedLoad(registry.get("a")!, loads.get("a"), clock.now(), 30_000),
      1,
      "failing",
    );
    assert.equal(
      estimatedLoad(registry.get("a")!, undefined, clock.now(), 30_000),
      1,
      "never read",
    );
  });
});

function signals(loads: Record<string, number>, full: string[] = []): LoadSignals {
  return { loadOf: (e) => loads[e.name] ?? 0, isFull: (e) => full.includes(e.name) };
}

describe("least-loaded and power-of-two", () => {
  test("least-loaded takes the lowest load per unit of weight; full KV caches go last", () => {
    const { registry } = fleet(["a", "b", "c"]);
    const endpoints = registry.endpoints;
    assert.equal(pickLeastLoaded(endpoints, signals({ a: 9, b: 2, c: 5 }), 0)?.name, "b");
    assert.equal(pickLeastLoaded(endpoints, signals({ a: 9, b: 2, c: 5 }, ["b"]), 0)?.name, "c");
    assert.equal(
      pickLeastLoaded(endpoints, signals({ a: 1, b: 1, c: 1 }, ["a", "b", "c"]), 2)?.name,
      "c",
    );
    assert.equal(pickLeastLoaded([], signals({}), 0), undefined);
  });

  test("least-loaded rotates ties instead of drawing them", () => {
    const { registry } = fleet(["a", "b", "c"]);
    const level = signals({ a: 1, b: 1, c: 4 });
    const picks = [0, 1, 2, 3].map((turn) =>
      pickLeastLoaded(registry.endpoints, level, turn)?.name
    );
    assert.deepEqual(picks, ["a", "b", "a", "b"]);
  });

  test("power-of-two compares two random candidates and takes the less loaded", () => {
    const { registry } = fleet(["a", "b", "c", "d"]);
    const endpoints = registry.endpoints;
    const load = signals({ a: 10, b: 1, c: 7, d: 3 });
    // Draws 0 -> a, then 0.99 -> the last of the others, d: d is less loaded.
    assert.equal(pickPowerOfTwo(endpoints, load, 0, 0.99)?.name, "d");
    // a and b: b.
    assert.equal(pickPowerOfTwo(endpoints, load, 0, 0)?.name, "b");
    // Never the most loaded unless it is the only one.
    for (let i = 0; i < 50; i++) {
      assert.notEqual(
        pickPowerOfTwo(endpoints, load, (i * 7 % 50) / 50, (i * 13 % 50) / 50)?.name,
        "a",
      );
    }
    assert.equal(pickPowerOfTwo([endpoints[0]], load, 0.5, 0.5)?.name, "a");
  });
});

describe("the prefix tree", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const system = "You are a helpful assistant. ".repeat(20);

  test("finds, per endpoint, the longest prefix it served", () => {
    const cache = new PrefixCache(1024 * 1024);
    const first = bytes(`${system}User: hello`);
    cache.insert(blockHashes(first, "m"), "a");
    const followUp = bytes(`${system}User: hello\nAssistant: hi\nUser: more`);
    const matches = cache.match(blockHashes(followUp, "m"));
    assert.equal(matches.get("a"), Math.floor(first.length / 64) * 64);
    assert.equal(matches.get("b"), undefined);
    assert.equal(cache.match(blockHashes(followUp, "other-model")).size, 0, "trees are per model");
    cache.forget("a");
    assert.equal(cache.size, 0);
  });

  test("stays within its byte budget, dropping the least recently used nodes", () => {
    const cache = new PrefixCache(96 * 100);
    for (let i = 0; i < 50; i++) cache.insert(blockHashes(bytes(`${i} ${system}`), "m"), "a");
    assert.ok(cache.size <= 100, `${cache.size} nodes`);
    const recent = bytes(`49 ${system}`);
    assert.ok(
      (cache.match(blockHashes(recent, "m")).get("a") ?? 0) > 0,
      "the newest prompt is kept",
    );
  });
});

describe("cache-aware", () => {
  const settings = { cache_threshold: 0.5, balance_abs: 32, balance_rel: 1.1 };

  test("prefers the endpoint holding the longest prefix, while the fleet is balanced", () => {
    const { registry } = fleet(["a", "b"]);
    const matches = new Map([["b", 900]]);
    assert.equal(
      pickCacheAware(registry.endpoints, signals({ a: 1, b: 5 }), matches, 1000, settings, 0)?.name,
      "b",
    );
  });

  test("a short match, a full cache, or an imbalanced fleet goes to the least loaded", () => {
    const { registry } = fleet(["a", "b"]);
    const e = registry.endpoints;
    assert.equal(
      pickCacheAware(e, signals({ a: 1, b: 5 }), new Map([["b", 300]]), 1000, settings, 0)?.name,
      "a",
    );
    assert.equal(
      pickCacheAware(e, signals({ a: 1, b: 5 }, ["b"]), new Map([["b", 900]]), 1000, settings, 0)
        ?.name,
      "a",
    );
    assert.equal(
      pickCacheAware(e, signals({ a: 1, b: 40 }), new Map([["b", 900]]), 1000, settings, 0)?.name,
      "a",
    );
    // A gap over balance_abs but within balance_rel is still balanced.
    assert.equal(
      pickCacheAware(e, signals({ a: 400, b: 436 }), new Map([["b", 900]]), 1000, settings, 0)
        ?.name,
      "b",
    );
  });
});

/** An EngineMetricsReader over lmdeploy endpoint `a` and ollama endpoint `o`, on a fake clock. */
function metricsReader(answer: () => Response, write: (line: string) => void = () => {}) {
  const clock = new FakeClock();
  const { config } = parseConfig(
    `discovery:\n  static:\n    endpoints:\n      - { name: a, url: "http://a:1", type: lmdeploy }\n      - { name: o, url: "http://o:1", type: ollama }\n`,
    { env: () => undefined, knownTypes: undefined },
  );
  const registry = new Registry(
    config.discovery.static.endpoints,
    new ProfileSet(BUILT_IN_PROFILES),
    { clock },
  );
  const loads = new EngineLoads();
  const fetch = fakeFetch(answer);
  const reader = new EngineMetricsReader({
    registry,
    loads,
    fetch,
    clock,
    logger: new Logger({ level: "info", write }),
    settings: config.engine_metrics,
  });
  return { clock, config, loads, fetch, reader };
}

describe("EngineMetricsReader", () => {
  test("reads each metrics engine on its interval; a failure is recorded; untrack stops it", async () => {
    let fail = false;
    const { clock, loads, fetch, reader } = metricsReader(() =>
      fail ? new Response("", { status: 500 }) : new Response(LMDEPLOY, { status: 200 })
    );
    reader.start();
    await clock.advance(0);
    assert.deepEqual(
      fetch.calls.map((call) => call.url),
      ["http://a:1/metrics"],
      "ollama has no metrics",
    );
    assert.equal(loads.get("a")?.running, 5);
    assert.equal(loads.get("a")?.kvCacheUsage, 0.42);
    fail = true;
    await clock.advance(1_000);
    assert.match(loads.get("a")?.error ?? "", /500/);
    reader.untrack("a");
    const calls = fetch.calls.length;
    await clock.advance(5_000);
    assert.equal(fetch.calls.length, calls);
    assert.equal(loads.get("a"), undefined);
    reader.stop();
    assert.equal(clock.pending, 0);
  });

  test("an engine answering 404 is asked again every 30 s, said once, and read on its interval once served", async () => {
    let served = false;
    const lines: string[] = [];
    const { clock, config, loads, fetch, reader } = metricsReader(
      () => served ? new Response(LMDEPLOY, { status: 200 }) : new Response("", { status: 404 }),
      (line) => lines.push(line),
    );
    reader.start();
    await clock.advance(0);
    assert.equal(fetch.calls.length, 1);
    await clock.advance(NOT_SERVED_RECHECK_MS - 1);
    assert.equal(fetch.calls.length, 1, "not asked again within 30 s");
    await clock.advance(1);
    assert.equal(fetch.calls.length, 2);
    assert.equal(lines.filter((line) => line.includes("serves no metrics")).length, 1);
    served = true;
    await clock.advance(NOT_SERVED_RECHECK_MS);
    assert.equal(loads.get("a")?.running, 5);
    await clock.advance(config.engine_metrics.interval);
    assert.equal(fetch.calls.length, 4, "back to every interval once served");
    reader.stop();
  });
});

describe("over sockets", () => {
  test("an engine reporting a long queue gets fewer requests (least-loaded)", async () => {
    const busy = await startFakeLmdeploy();
    const idle = await startFakeLmdeploy();
    const olla = await startOlla(
      configYaml(
        [endpointYaml("busy", busy.url), endpointYaml("idle", idle.url)],
        "proxy:\n  load_balancer: least-loaded\nengine_metrics:\n  interval: 100ms\n",
      ),
    );
    try {
      busy.reportedWaiting = 20;
      await until(() =>
        (olla.service.registry.endpoints.length === 2) &&
        (olla.service.telemetry.metrics.render().includes(
          'olla_engine_requests{endpoint="busy",state="waiting"} 20',
        )), 5_000);
      const counts: Record<string, number> = {};
      for (let i = 0; i < 20; i++) {
        const response = await chat(olla);
        const endpoint = response.headers.get("x-olla-endpoint") ?? "none";
        counts[endpoint] = (counts[endpoint] ?? 0) + 1;
        await response.text();
      }
      assert.equal(counts.busy ?? 0, 0, JSON.stringify(counts));
      assert.equal(counts.idle, 20);
      const status = await (await fetch(`${olla.url}/internal/status/endpoints`)).json();
      const entry = status.endpoints.find((e: { name: string }) => e.name === "busy");
      assert.equal(entry.engine.waiting, 20);
      assert.equal(entry.engine.fresh, true);
    } finally {
      await olla.close();
      await busy.close();
      await idle.close();
    }
  });
});
