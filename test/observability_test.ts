import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  configYaml,
  endpointYaml,
  type OllaWithFakes,
  post,
  readChunks,
  startOlla,
  startOllaWithFakes,
  type TestOlla,
  untilObserved,
  withOllaAndFakes,
} from "./_harness.ts";
import { LMDEPLOY_CARD_KEYS, startFakeLmdeploy } from "./fakes/lmdeploy.ts";

const MODEL_A = "internlm/internlm2_5-7b-chat";
const MODEL_B = "Qwen/Qwen2.5-7B-Instruct";
const SECRETS = ["sk-endpoint-secret-0001", "header-secret-value-77", "basic-pass-word-99"];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it to check olla-ts's output strictly). */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      types.set(name, type);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a valid sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replaceAll('\\"', '"').replaceAll("\\n", "\n").replaceAll(
        "\\\\",
        "\\",
      );
    }
    const value = match[4] === "+Inf" ? Infinity : Number(match[4]);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return { samples, types };
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

describe("observability", () => {
  let fleet: OllaWithFakes;
  let olla: TestOlla;

  before(async () => {
    fleet = await startOllaWithFakes([
      { modelName: MODEL_A, apiKeys: [SECRETS[0]], itlMs: 20 },
      { modelName: MODEL_B, itlMs: 20 },
    ], ([urlA, urlB]) =>
      configYaml([
        endpointYaml(
          "gpu-a",
          urlA,
          `        auth: { type: bearer, token: ${SECRETS[0]} }\n        headers: { X-Tenant: ${
            SECRETS[1]
          } }\n`,
        ),
        endpointYaml(
          "gpu-b",
          urlB,
          `        auth: { type: basic, username: admin, password: ${SECRETS[2]} }\n`,
        ),
        // Another type, so the unknown models sent to /olla/lmdeploy/ below are 404s (an
        // undiscovered LMDeploy endpoint would make them "not now", 503s).
        endpointYaml("gpu-down", "http://127.0.0.1:1").replace("type: lmdeploy", "type: vllm"),
      ]));
    ({ olla } = fleet);
    // Real traffic for the checks below.
    const streams: [string, unknown][] = [
      ["v1/chat/completions", {
        model: MODEL_A,
        messages: [],
        stream: true,
        stream_options: { include_usage: true },
      }],
      ["v1/chat/completions", { model: MODEL_A, messages: [], stream: true }],
      ["v1/completions", {
        model: MODEL_B,
        prompt: "x",
        stream: true,
        stream_options: { include_usage: true },
      }],
      ["v1/completions", { model: MODEL_B, prompt: "x", stream: true }],
      ["generate", { prompt: "x", model: MODEL_A, stream: true }],
      ["v1/chat/completions", { model: MODEL_A, messages: [] }],
    ];
    for (const [path, body] of streams) {
      await readChunks(await post(olla, `/olla/lmdeploy/${path}`, body));
    }
    for (let i = 0; i < 5; i++) {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: `random-${crypto.randomUUID()}`,
        messages: [],
      });
      await response.body?.cancel();
    }
    await untilObserved(olla, streams.length + 5);
  });
  after(() => fleet.close());

  describe("status routes", () => {
    test("/internal/status summarises uptime, version, totals and endpoints", async () => {
      const body = await (await fetch(`${olla.url}/internal/status`)).json();
      assert.equal(body.status, "degraded");
      assert.equal(body.name, "olla-ts");
      assert.equal(typeof body.version, "string");
      assert.equal(typeof body.uptime_seconds, "number");
      assert.ok(body.totals.requests >= 11);
      assert.ok(body.totals.errors >= 5, "the unknown models");
      assert.equal(body.totals.endpoints, 3);
      assert.equal(body.totals.routable_endpoints, 2);
      assert.deepEqual(body.endpoints.map((e: { name: string }) => e.name), [
        "gpu-a",
        "gpu-b",
        "gpu-down",
      ]);
    });

    test("/internal/status/endpoints shows each endpoint's state, sanitised", async () => {
      const { endpoints } = await (await fetch(`${olla.url}/internal/status/endpoints`)).json();
      const gpuA = endpoints.find((e: { name: string }) => e.name === "gpu-a");
      // Olla's keys (id, request_count, health_check, ...) and olla-ts's beside them.
      assert.deepEqual(Object.keys(gpuA).sort(), [
        "active_connections",
        "avg_latency_ms",
        "breaker",
        "configured_type",
        "draining",
        "engine",
        "failures",
        "health_check",
        "health_check_at",
        "held",
        "id",
        "inflight",
        "last_check",
        "last_error",
        "last_model_sync",
        "last_model_sync_at",
        "last_probe_latency_ms",
        "latency_ms",
        "max_latency_ms",
        "min_latency_ms",
        "model_count",
        "name",
        "next_check",
        "next_check_at",
        "priority",
        "queue",
        "rate_limited_until",
        "request_count",
        "requests",
        "response_time",
        "routable",
        "sleeping",
        "source",
        "status",
        "success_rate",
        "type",
        "url",
        "weight",
      ]);
      assert.equal(gpuA.status, "healthy");
      assert.deepEqual(gpuA.breaker, { state: "closed", consecutive_failures: 0, retry_in_ms: 0 });
      assert.equal(gpuA.model_count, 1);
      assert.equal(gpuA.success_rate, "100%");
      assert.match(gpuA.health_check, /^\d+s ago$/);
      assert.match(gpuA.id, /^[0-9a-z]+$/);
      const down = endpoints.find((e: { name: string }) => e.name === "gpu-down");
      assert.equal(down.status, "offline");
      assert.equal(typeof down.last_error, "string");
    });

    test("/internal/status/models lists models and the endpoints serving them", async () => {
      const body = await (await fetch(`${olla.url}/internal/status/models`)).json();
      assert.deepEqual(body.models, [
        { id: MODEL_B, endpoints: ["gpu-b"], types: ["lmdeploy"], available: true },
        { id: MODEL_A, endpoints: ["gpu-a"], types: ["lmdeploy"], available: true },
      ]);
    });

    test("/internal/process and /version describe the process", async () => {
      const process = await (await fetch(`${olla.url}/internal/process`)).json();
      assert.deepEqual(Object.keys(process).sort(), [
        "inflight",
        "memory",
        "name",
        "runtime",
        "runtime_version",
        "uptime_seconds",
        "version",
      ]);
      assert.equal(typeof process.memory.rss, "number");
      const version = await (await fetch(`${olla.url}/version`)).json();
      assert.deepEqual(version.supported_backends.includes("lmdeploy"), true);
    });

    test("status JSON carries an ETag and answers If-None-Match with 304", async () => {
      const first = await fetch(`${olla.url}/internal/status/models`);
      const etag = first.headers.get("etag");
      assert.match(etag ?? "", /^W\/".+"$/);
      await first.body?.cancel();
      const again = await fetch(`${olla.url}/internal/status/models`, {
        headers: { "if-none-match": etag ?? "" },
      });
      assert.equal(again.status, 304);
      assert.equal(await again.text(), "");
      const other = await fetch(`${olla.url}/internal/status/models`, {
        headers: { "if-none-match": 'W/"nope"' },
      });
      assert.equal(other.status, 200);
      await other.body?.cancel();
    });
  });

  describe("usage from the stream tee", () => {
    test("/internal/stats/models records usage, TTFT and tokens per second for streamed and plain answers", async () => {
      const { models } = await (await fetch(`${olla.url}/internal/stats/models`)).json();
      // Most requested first, as Olla sorts them.
      assert.deepEqual(models.map((m: { model: string }) => m.model), [MODEL_A, MODEL_B]);
      const statsA = models.find((m: { model: string }) => m.model === MODEL_A);
      // chat with include_usage: 12 prompt + 8; chat plain JSON: 12 + 8; generate: 5 + 8 (meta_info);
      // chat stream without usage: 8 content events, estimated.
      assert.equal(statsA.requests, 4);
      assert.equal(statsA.prompt_tokens, 12 + 12 + 5);
      assert.equal(statsA.completion_tokens, 8 + 8 + 8);
      assert.equal(statsA.estimated_completion_tokens, 8);
      assert.ok(statsA.ttft_ms.p50 > 0, "TTFT from the first content event");
      assert.ok(statsA.tokens_per_second > 0);
      assert.deepEqual(statsA.endpoints, { "gpu-a": 4 });
      const statsB = models.find((m: { model: string }) => m.model === MODEL_B);
      assert.equal(statsB.prompt_tokens, 12, "completions with include_usage");
      assert.equal(statsB.completion_tokens, 8);
      assert.equal(statsB.estimated_completion_tokens, 8, "completions stream without usage");
    });

    test("the access log has one line per request with route, model, endpoint, TTFT and tokens", () => {
      const lines = olla.logs.filter((log) =>
        log.msg === "access" && log.route === "/olla/lmdeploy/v1/chat/completions"
      );
      const usageLine = lines.find((log) =>
        log.completion_tokens === 8 && log.tokens_estimated === undefined && log.ttft_ms
      );
      assert.ok(usageLine, JSON.stringify(lines));
      for (
        const field of [
          "request_id",
          "client",
          "method",
          "path",
          "model",
          "endpoint",
          "status",
          "bytes_in",
          "bytes_out",
        ]
      ) {
        assert.ok(field in usageLine, field);
      }
      assert.equal(usageLine.failovers, 0);
      assert.equal(usageLine.routing, "routed:model_found");
      assert.ok(lines.some((log) => log.tokens_estimated === true), "estimated tokens are marked");
    });
  });

  describe("Prometheus metrics", () => {
    test("parse cleanly and count the real traffic with bounded labels", async () => {
      const response = await fetch(`${olla.url}/internal/metrics`);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const { samples, types } = parsePrometheus(await response.text());
      assert.equal(types.get("olla_requests_total"), "counter");
      assert.equal(types.get("olla_request_duration_seconds"), "histogram");
      const chat = find(samples, "olla_requests_total", {
        route: "/olla/lmdeploy/v1/chat/completions",
        endpoint: "gpu-a",
        model: MODEL_A,
        status_class: "2xx",
      });
      assert.equal(chat[0]?.value, 3);
      const unknown = find(samples, "olla_requests_total", {
        model: "unknown",
        status_class: "4xx",
      });
      assert.equal(unknown[0]?.value, 5, "random model names collapse into one label");
      assert.ok(!samples.some((s) => s.labels.model?.startsWith("random-")));
      assert.equal(find(samples, "olla_errors_total", { fault: "client" })[0]?.value, 5);
      const ttftCount = find(samples, "olla_time_to_first_token_seconds_count", {
        endpoint: "gpu-a",
        model: MODEL_A,
      });
      assert.equal(ttftCount[0]?.value, 3, "three streamed answers to gpu-a");
      const inf = find(samples, "olla_time_to_first_token_seconds_bucket", {
        endpoint: "gpu-a",
        le: "+Inf",
      });
      assert.equal(inf[0]?.value, 3);
      assert.ok(find(samples, "olla_proxy_overhead_seconds_count").length > 0);
      assert.equal(
        find(samples, "olla_tokens_total", {
          endpoint: "gpu-b",
          type: "completion",
          estimated: "true",
        })[0]?.value,
        8,
      );
      assert.equal(find(samples, "olla_endpoint_up", { endpoint: "gpu-down" })[0]?.value, 0);
      assert.equal(find(samples, "olla_endpoint_up", { endpoint: "gpu-a" })[0]?.value, 1);
      assert.equal(
        find(samples, "olla_endpoint_status", { endpoint: "gpu-down", status: "offline" })[0]
          ?.value,
        1,
      );
      assert.equal(
        find(samples, "olla_endpoint_breaker_state", { endpoint: "gpu-a", state: "closed" })[0]
          ?.value,
        1,
      );
      assert.equal(find(samples, "olla_inflight_requests")[0]?.value, 1, "the scrape itself");
      for (const sample of samples) {
        for (const value of Object.values(sample.labels)) {
          assert.ok(!value.includes("?"), "no raw paths or queries");
        }
      }
    });

    test("failovers are counted with their reason", async () => {
      const fake = await startFakeLmdeploy();
      const other = await startFakeLmdeploy();
      const proxy = await startOlla(
        configYaml(
          [
            `      - { name: first, url: "${fake.url}", type: lmdeploy, priority: 100, check_interval: 1h }\n`,
            `      - { name: second, url: "${other.url}", type: lmdeploy, priority: 1, check_interval: 1h }\n`,
          ],
          "proxy:\n  load_balancer: priority\n",
        ),
      );
      try {
        fake.fault = "status:503";
        const response = await post(proxy, "/olla/lmdeploy/v1/chat/completions", {
          model: fake.modelName,
          messages: [],
        });
        assert.equal(response.status, 200);
        await response.body?.cancel();
        await untilObserved(proxy, 1);
        const { samples } = parsePrometheus(
          await (await fetch(`${proxy.url}/internal/metrics`)).text(),
        );
        assert.equal(
          find(samples, "olla_failovers_total", { endpoint: "first", reason: "upstream_503" })[0]
            ?.value,
          1,
        );
      } finally {
        await proxy.close();
        await fake.close();
        await other.close();
      }
    });
  });

  describe("/olla/models", () => {
    test("lists the unified catalogue, with formats and filters", async () => {
      const unified = await (await fetch(`${olla.url}/olla/models`)).json();
      assert.deepEqual(unified.data.map((m: { id: string }) => m.id), [MODEL_A, MODEL_B]);
      assert.deepEqual(unified.data[0].endpoints, [{
        name: "gpu-a",
        type: "lmdeploy",
        status: "healthy",
        available: true,
      }]);
      const openai = await (await fetch(`${olla.url}/olla/models?format=openai`)).json();
      assert.deepEqual(Object.keys(openai.data[0]), ["id", "object", "created", "owned_by"]);
      const lmdeploy = await (await fetch(`${olla.url}/olla/models?format=lmdeploy`)).json();
      assert.deepEqual(Object.keys(lmdeploy.data[0]), LMDEPLOY_CARD_KEYS);
      const filtered = await (await fetch(`${olla.url}/olla/models?endpoint=gpu-b`)).json();
      assert.deepEqual(filtered.data.map((m: { id: string }) => m.id), [MODEL_B]);
      const unavailable = await (await fetch(`${olla.url}/olla/models?available=false`)).json();
      assert.deepEqual(unavailable.data, []);
      const bad = await fetch(`${olla.url}/olla/models?format=nope`);
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
    });

    test("/olla/models/{id} works for ids containing /", async () => {
      const response = await fetch(`${olla.url}/olla/models/${MODEL_A}`);
      assert.equal(response.status, 200);
      assert.equal((await response.json()).id, MODEL_A);
      const encoded = await fetch(
        `${olla.url}/olla/models/${encodeURIComponent(MODEL_B)}?format=openai`,
      );
      assert.equal((await encoded.json()).id, MODEL_B);
      const missing = await fetch(`${olla.url}/olla/models/no/such`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });
  });

  describe("secrets", () => {
    test("no configured secret appears in any status output, metrics or log line", async () => {
      const outputs = await Promise.all(
        [
          "/internal/status",
          "/internal/status/endpoints",
          "/internal/status/models",
          "/internal/stats/models",
          "/internal/process",
          "/internal/metrics",
          "/version",
          "/olla/models",
          "/olla/lmdeploy/v1/models",
        ].map(async (path) => await (await fetch(`${olla.url}${path}`)).text()),
      );
      const haystack = [...outputs, ...olla.rawLogs].join("\n");
      for (const secret of SECRETS) assert.ok(!haystack.includes(secret), `leaked ${secret}`);
      assert.ok(!haystack.includes(btoa(`admin:${SECRETS[2]}`)), "leaked the basic auth header");
    });
  });
});

describe("usage of a long paced stream", () => {
  test("every frame of a 40-frame stream is read, though the observer reads them in batches", async () => {
    await withOllaAndFakes(
      [{ modelName: MODEL_A }],
      ([url]) => configYaml([endpointYaml("gpu-a", url)]),
      async (olla) => {
        const pacing = { "x-fake-tokens": "40", "x-fake-itl-ms": "5", "x-fake-ttft-ms": "30" };
        for (const include_usage of [false, true]) {
          const chunks = await readChunks(
            await post(olla, "/olla/lmdeploy/v1/chat/completions", {
              model: MODEL_A,
              messages: [],
              stream: true,
              ...(include_usage ? { stream_options: { include_usage } } : {}),
            }, pacing),
          );
          assert.ok(chunks.length > 16, `the frames came in separate chunks (${chunks.length})`);
        }
        await untilObserved(olla, 2);
        const lines = olla.logs.filter((log) => log.msg === "access");
        assert.equal(lines.length, 2);
        // Without usage: one estimated token per content event; with it: the engine's count.
        assert.deepEqual(
          lines.map((log) => [log.completion_tokens, log.tokens_estimated ?? false]),
          [[40, true], [40, false]],
        );
        for (const log of lines) {
          // TTFT is the first content frame's arrival (after the 30 ms wait), not the time
          // its batch was read (the 16th frame comes 110 ms in).
          const ttft = Number(log.ttft_ms);
          assert.ok(ttft >= 25 && ttft < 100, `ttft_ms ${ttft}`);
        }
      },
    );
  });
});
