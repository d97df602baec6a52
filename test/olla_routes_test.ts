/**
 * Olla drop-in, answer side: the shapes a script written for Olla's API reads, checked
 * key by key (golden shapes), and every Olla metric name after a request. No sockets:
 * the service is handed requests, its backends are a scripted fetch.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { inProcessOlla } from "./_harness.ts";
import { jsonResponse } from "./fakes/fetch.ts";
import type { ModelCard } from "../lib/profiles/model_lists.ts";

const OLLAMA_MODEL = "llama3.2:3b";
const LMS_MODEL = "qwen2.5-7b-instruct";
const LMDEPLOY_MODEL = "internlm/internlm2_5-7b-chat";
const LEMONADE_MODEL = "Qwen3-0.6B-GGUF";

const CARDS: Record<string, ModelCard[]> = {
  ollama: [{
    id: OLLAMA_MODEL,
    raw: {
      name: OLLAMA_MODEL,
      model: OLLAMA_MODEL,
      modified_at: "2025-01-02T03:04:05Z",
      size: 2_019_393_189,
      digest: "a80c4f17acd5",
      details: { family: "llama", parameter_size: "3.2B", quantization_level: "Q4_K_M" },
    },
  }],
  lms: [{
    id: LMS_MODEL,
    raw: {
      id: LMS_MODEL,
      object: "model",
      type: "llm",
      publisher: "lmstudio-community",
      arch: "qwen2",
      quantization: "Q4_K_M",
      state: "loaded",
      max_context_length: 32768,
    },
  }],
  lmdeploy: [{
    id: LMDEPLOY_MODEL,
    raw: {
      id: LMDEPLOY_MODEL,
      object: "model",
      created: 1_722_000_000,
      owned_by: "lmdeploy",
      root: LMDEPLOY_MODEL,
      parent: null,
      permission: [],
    },
  }],
  lemonade: [{ id: LEMONADE_MODEL, raw: { id: LEMONADE_MODEL, object: "model", created: 5 } }],
};

const YAML = `server:
  rate_limits:
    global_requests_per_minute: 0
    per_ip_requests_per_minute: 0
discovery:
  static:
    endpoints:
      - { name: ollama, url: "http://ollama:11434", type: ollama, priority: 100 }
      - { name: lms, url: "http://lms:1234", type: lm-studio, priority: 90 }
      - { name: lmdeploy, url: "http://lmd:23333/", type: lmdeploy, priority: 80 }
      - { name: lemonade, url: "http://lem:8000", type: lemonade, priority: 70 }
`;

function chatAnswer(model: string): Response {
  return jsonResponse(200, {
    id: "x",
    object: "chat.completion",
    created: 1,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
  });
}

function fleet(extra = "") {
  const olla = inProcessOlla(YAML + extra, (call) => {
    const body = call.body ? JSON.parse(call.body) : {};
    return chatAnswer(body.model);
  });
  const { registry } = olla.service;
  for (const [name, cards] of Object.entries(CARDS)) {
    registry.applyProbe(name, { status: "healthy", latencyMs: 4 });
    registry.setModels(name, cards);
  }
  return olla;
}

async function json(olla: ReturnType<typeof fleet>, path: string, init?: RequestInit) {
  const response = await olla.request(path, init);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return await response.json();
}

function chatRequest(model: string, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  };
}

const keys = (value: object) => Object.keys(value).sort();

describe("provider model routes, as Olla answers them", () => {
  test("/olla/ollama/v1/models is an OpenAI list; /olla/ollama/api/tags is Ollama's", async () => {
    const olla = fleet();
    const openai = await json(olla, "/olla/ollama/v1/models");
    assert.equal(openai.object, "list");
    assert.deepEqual(openai.data.map((m: { id: string }) => m.id), [OLLAMA_MODEL]);
    assert.deepEqual(keys(openai.data[0]), ["created", "id", "object", "owned_by"]);
    const tags = await json(olla, "/olla/ollama/api/tags");
    assert.equal(tags.models[0].name, OLLAMA_MODEL);
    assert.equal(tags.models[0].details.family, "llama");
  });

  test("LM Studio's alternate paths and prefixes", async () => {
    const olla = fleet();
    for (const prefix of ["lmstudio", "lm-studio", "lm_studio"]) {
      for (const path of ["v1/models", "api/v1/models"]) {
        const list = await json(olla, `/olla/${prefix}/${path}`);
        assert.deepEqual(list.data.map((m: { id: string }) => m.id), [LMS_MODEL], path);
        assert.equal(list.data[0].object, "model");
      }
      const v0 = await json(olla, `/olla/${prefix}/api/v0/models`);
      assert.deepEqual(v0.data[0], {
        id: LMS_MODEL,
        object: "model",
        type: "llm",
        publisher: "lmstudio-community",
        arch: "qwen2",
        quantization: "Q4_K_M",
        state: "loaded",
        max_context_length: 32768,
      });
    }
  });
});

describe("/olla/models?format=", () => {
  test("unified entries carry Olla's olla object, and created comes from the backend", async () => {
    const { data } = await json(fleet(), "/olla/models");
    const lmdeploy = data.find((m: { id: string }) => m.id === LMDEPLOY_MODEL);
    assert.equal(lmdeploy.created, 1_722_000_000);
    assert.deepEqual(keys(lmdeploy.olla), [
      "aliases",
      "availability",
      "capabilities",
      "family",
      "parameter_size",
      "quantization",
      "variant",
    ]);
    assert.deepEqual(lmdeploy.olla.availability, [{ endpoint: "lmdeploy", state: "unknown" }]);
    const ollama = data.find((m: { id: string }) => m.id === OLLAMA_MODEL);
    assert.equal(ollama.olla.family, "llama");
    assert.equal(ollama.olla.quantization, "q4km");
    assert.deepEqual(ollama.olla.aliases, [{ name: OLLAMA_MODEL, source: "ollama" }]);
  });

  test("openai, ollama and lmstudio list what Olla lists, in each shape", async () => {
    const olla = fleet();
    const openai = await json(olla, "/olla/models?format=openai");
    assert.equal(openai.data.length, 4);
    const ollama = await json(olla, "/olla/models?format=ollama");
    // Only models an Ollama endpoint serves, in Ollama's entry shape.
    assert.deepEqual(ollama.models.map((m: { name: string }) => m.name), [OLLAMA_MODEL]);
    assert.deepEqual(keys(ollama.models[0]), [
      "details",
      "digest",
      "model",
      "modified_at",
      "name",
      "size",
    ]);
    const lmstudio = await json(olla, "/olla/models?format=lmstudio");
    assert.deepEqual(lmstudio.data.map((m: { id: string }) => m.id), [LMS_MODEL]);
  });

  test("an unknown format is a 400 listing the valid ones", async () => {
    const response = await fleet().request("/olla/models?format=bogus");
    assert.equal(response.status, 400);
    const { error } = await response.json();
    assert.match(error.message, /unified, openai, ollama, lmstudio/);
  });
});

describe("/internal/status/models", () => {
  test("answers in Olla's shape, keeping olla-ts's models and total", async () => {
    const olla = fleet('model_aliases:\n  chat: ["internlm/internlm2_5-7b-chat"]\n');
    const body = await json(olla, "/internal/status/models");
    assert.deepEqual(keys(body), [
      "models",
      "models_by_family",
      "recent_models",
      "timestamp",
      "total",
      "total_endpoints",
      "total_families",
      "total_models",
    ]);
    assert.equal(body.total_models, 4);
    assert.equal(body.total_endpoints, 4);
    assert.deepEqual(body.models_by_family, {
      llama: [OLLAMA_MODEL],
      unknown: [LEMONADE_MODEL, LMDEPLOY_MODEL, LMS_MODEL],
    });
    assert.equal(body.total_families, 2);
    const ollama = body.recent_models.find((m: { name: string }) => m.name === OLLAMA_MODEL);
    assert.deepEqual(keys(ollama), [
      "endpoint_ids",
      "endpoints",
      "family",
      "last_seen",
      "last_seen_at",
      "name",
      "params",
      "quant",
      "size",
    ]);
    assert.equal(ollama.size, "1.88 GB");
    assert.equal(ollama.params, "3.2B");
    assert.equal(ollama.last_seen, "0s ago");
    const lmdeploy = body.recent_models.find((m: { name: string }) => m.name === LMDEPLOY_MODEL);
    assert.equal(lmdeploy.type, "lmdeploy");
    assert.deepEqual(lmdeploy.aliases, ["chat"]);
    assert.equal(
      body.recent_models.find((m: { name: string }) => m.name === LMS_MODEL).type,
      "model",
    );

    // The same id for the same endpoint in /internal/status/endpoints.
    const { endpoints } = await json(olla, "/internal/status/endpoints");
    const id = endpoints.find((e: { name: string }) => e.name === "lmdeploy").id;
    assert.deepEqual(lmdeploy.endpoint_ids, [id]);
  });

  test("?detailed=true&group=family adds model_groups, unknown last", async () => {
    const body = await json(fleet(), "/internal/status/models?detailed=true&group=family");
    assert.deepEqual(body.model_groups.map((g: { family: string }) => g.family), [
      "llama",
      "unknown",
    ]);
    assert.deepEqual(keys(body.model_groups[0]), ["endpoints", "family", "model_count", "models"]);
    assert.equal(body.model_groups[1].model_count, 3);
  });

  test("recent_models holds the ten most recently seen", async () => {
    const olla = fleet();
    olla.service.registry.setModels(
      "lmdeploy",
      Array.from({ length: 12 }, (_, i) => ({ id: `m${i}`, raw: { id: `m${i}` } })),
    );
    const body = await json(olla, "/internal/status/models");
    assert.equal(body.total_models, 15);
    assert.equal(body.recent_models.length, 10);
  });
});

describe("/internal/status and /internal/status/endpoints", () => {
  test("/internal/status has Olla's proxy, system, security and endpoint summaries", async () => {
    const olla = fleet();
    await (await olla.request("/olla/lmdeploy/v1/chat/completions", chatRequest(LMDEPLOY_MODEL)))
      .text();
    const body = await json(olla, "/internal/status");
    assert.deepEqual(body.proxy, {
      engine: "olla",
      profile: "auto",
      balancer: "least-connections",
    });
    assert.deepEqual(keys(body.system), [
      "active_connections",
      "avg_latency",
      "commit",
      "endpoints_up",
      "has_traffic",
      "security_violations",
      "start_time",
      "status",
      "success_rate",
      "total_failures",
      "total_requests",
      "total_traffic",
      "uptime",
      "version",
    ]);
    assert.equal(body.system.status, "healthy");
    assert.equal(body.system.endpoints_up, "4/4");
    assert.equal(body.system.success_rate, "100%");
    assert.equal(body.system.total_requests, 1);
    assert.deepEqual(body.security, {
      status: "normal",
      blocked_ips: 0,
      violations: { rate_limits: 0, size_limits: 0 },
    });
    // Priority order, as Olla lists them.
    assert.deepEqual(body.endpoints.map((e: { name: string }) => e.name), [
      "ollama",
      "lms",
      "lmdeploy",
      "lemonade",
    ]);
    const lmdeploy = body.endpoints[2];
    assert.equal(lmdeploy.url, "http://lmd:23333/", "as configured");
    assert.equal(lmdeploy.requests, 1);
    assert.equal(lmdeploy.success_rate, "100%");
    assert.match(lmdeploy.traffic, /^\d+ B$/);
    assert.deepEqual(keys(lmdeploy.models), ["count", "last_updated"]);
    for (const key of ["avg_latency_ms", "min_latency_ms", "max_latency_ms", "last_check"]) {
      assert.ok(key in lmdeploy, key);
    }
  });

  test("/internal/status/endpoints has the counts Olla's dashboard reads", async () => {
    const olla = fleet();
    olla.service.registry.applyProbe("lemonade", { status: "offline", latencyMs: 1, error: "x" });
    const body = await json(olla, "/internal/status/endpoints");
    assert.deepEqual(
      keys(body),
      ["endpoints", "healthy_count", "routable_count", "timestamp", "total_count"],
    );
    assert.equal(body.total_count, 4);
    assert.equal(body.healthy_count, 3);
    assert.equal(body.routable_count, 3);
    const lemonade = body.endpoints.find((e: { name: string }) => e.name === "lemonade");
    assert.equal(lemonade.issues, "unavailable");
    assert.equal(lemonade.success_rate, "N/A");
    assert.equal(body.endpoints.at(-1).name, "lemonade", "healthy first within a priority");
  });

  test("a security violation shows in /internal/status", async () => {
    const limited = inProcessOlla(
      YAML.replace(
        "per_ip_requests_per_minute: 0",
        "per_ip_requests_per_minute: 1\n    burst_size: 1",
      ),
      () => chatAnswer(LMDEPLOY_MODEL),
    );
    const { registry } = limited.service;
    registry.applyProbe("lmdeploy", { status: "healthy", latencyMs: 1 });
    registry.setModels("lmdeploy", CARDS.lmdeploy);
    for (let i = 0; i < 3; i++) {
      const path = "/olla/lmdeploy/v1/chat/completions";
      await (await limited.request(path, chatRequest(LMDEPLOY_MODEL), "10.1.1.1")).body?.cancel();
    }
    const body = await json(limited, "/internal/status");
    assert.ok(body.security.violations.rate_limits >= 1, JSON.stringify(body.security));
    assert.equal(body.security.blocked_ips, 1);
    assert.equal(body.system.security_violations, body.security.violations.rate_limits);
  });
});

describe("sticky sessions, as Olla reports them", () => {
  test("/internal/stats/sticky is {enabled:false} when they are off", async () => {
    assert.deepEqual(await json(fleet(), "/internal/stats/sticky"), { enabled: false });
  });

  test("with them on: Olla's counters, and X-Olla-Sticky-Session hit, miss or disabled", async () => {
    const olla = fleet(
      "proxy:\n  sticky_sessions:\n    enabled: true\n    key_sources: [session_header]\n",
    );
    const path = "/olla/lmdeploy/v1/chat/completions";
    const first = await olla.request(
      path,
      chatRequest(LMDEPLOY_MODEL, { "x-olla-session-id": "s1" }),
    );
    assert.equal(first.headers.get("x-olla-sticky-session"), "miss");
    assert.equal(first.headers.get("x-olla-sticky-key-source"), "session_header");
    await first.text();
    const second = await olla.request(
      path,
      chatRequest(LMDEPLOY_MODEL, { "x-olla-session-id": "s1" }),
    );
    assert.equal(second.headers.get("x-olla-sticky-session"), "hit");
    await second.text();
    const keyless = await olla.request(path, chatRequest(LMDEPLOY_MODEL));
    assert.equal(keyless.headers.get("x-olla-sticky-session"), "disabled");
    assert.equal(keyless.headers.get("x-olla-sticky-key-source"), null);
    await keyless.text();

    assert.deepEqual(await json(olla, "/internal/stats/sticky"), {
      enabled: true,
      active_sessions: 1,
      insertions: 1,
      hits: 1,
      misses: 1,
      evictions: 0,
      max_sessions: 10000,
      idle_ttl_seconds: 600,
    });
  });
});

describe("/internal/* answers any method, as Olla's do", () => {
  test('POST and HEAD /internal/health answer 200 {"status":"healthy"}', async () => {
    const olla = fleet();
    const post = await olla.request("/internal/health", { method: "POST" });
    assert.equal(post.status, 200);
    assert.equal(post.headers.get("content-type"), "application/json");
    assert.equal(await post.text(), '{"status":"healthy"}');
    const head = await olla.request("/internal/health", { method: "HEAD" });
    assert.equal(head.status, 200);
    for (const path of ["/internal/status", "/internal/stats/models", "/internal/metrics"]) {
      const response = await olla.request(path, { method: "POST" });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
  });
});

describe("/internal/stats/models", () => {
  test("each model carries Olla's fields beside olla-ts's; summary and endpoints as Olla's", async () => {
    const olla = fleet();
    for (let i = 0; i < 2; i++) {
      await (await olla.request("/olla/lmdeploy/v1/chat/completions", chatRequest(LMDEPLOY_MODEL)))
        .text();
    }
    const body = await json(olla, "/internal/stats/models");
    assert.deepEqual(keys(body), ["endpoints", "models", "summary", "timestamp"]);
    assert.deepEqual(body.endpoints, {});
    const model = body.models[0];
    for (
      const key of [
        "name",
        "total_requests",
        "successful_requests",
        "failed_requests",
        "success_rate",
        "total_traffic",
        "average_latency",
        "p95_latency",
        "p99_latency",
        "last_requested",
        "unique_clients",
        "routing_hits",
        "routing_misses",
        "routing_fallbacks",
        "model",
        "requests",
        "latency_ms",
      ]
    ) {
      assert.ok(key in model, key);
    }
    assert.equal(model.name, LMDEPLOY_MODEL);
    assert.equal(model.total_requests, 2);
    assert.equal(model.success_rate, "100%");
    assert.deepEqual(keys(body.summary), [
      "active_models",
      "least_popular_model",
      "most_popular_model",
      "overall_success_rate",
      "total_models",
      "total_requests",
      "total_traffic",
    ]);
    assert.equal(body.summary.most_popular_model, LMDEPLOY_MODEL);
    assert.equal(body.summary.active_models, 1);
  });
});

describe("unified routes reach engines whose OpenAI paths have a base", () => {
  test("Lemonade is sent /api/v1/chat/completions", async () => {
    const olla = fleet();
    const response = await olla.request(
      "/olla/openai/v1/chat/completions",
      chatRequest(LEMONADE_MODEL),
    );
    assert.equal(response.status, 200);
    await response.text();
    const call = olla.upstream.calls.at(-1);
    assert.equal(call?.url, "http://lem:8000/api/v1/chat/completions");
  });
});

describe("Olla's Prometheus metrics", () => {
  // Every name in olla-compat.md section 3 except olla_model_endpoint_*, which Olla itself
  // never emits samples for.
  const NAMES = [
    "olla_info",
    "olla_system_status",
    "olla_endpoints_total",
    "olla_endpoints_healthy",
    "olla_success_rate_percent",
    "olla_avg_latency_ms",
    "olla_total_traffic_bytes",
    "olla_uptime_seconds",
    "olla_active_connections",
    "olla_requests_total",
    "olla_failures_total",
    "olla_security_violations_total",
    "olla_security_rate_limit_violations_total",
    "olla_security_size_limit_violations_total",
    "olla_security_blocked_ips",
    "olla_security_status",
    "olla_endpoint_up",
    "olla_endpoint_requests_total",
    "olla_endpoint_traffic_bytes",
    "olla_endpoint_connections",
    "olla_endpoint_success_rate_percent",
    "olla_endpoint_avg_latency_ms",
    "olla_endpoint_priority",
    "olla_endpoint_models_count",
    "olla_models_total",
    "olla_models_active",
    "olla_models_success_rate_percent",
    "olla_models_requests_total",
    "olla_models_traffic_bytes",
    "olla_model_requests_total",
    "olla_model_successful_requests_total",
    "olla_model_failed_requests_total",
    "olla_model_traffic_bytes",
    "olla_model_success_rate_percent",
    "olla_model_avg_latency_ms",
    "olla_model_p95_latency_ms",
    "olla_model_p99_latency_ms",
    "olla_model_unique_clients",
    "olla_model_routing_hits_total",
    "olla_model_routing_misses_total",
    "olla_model_routing_fallbacks_total",
  ];
  // Olla's types (section 3): these are counters, every other name a gauge.
  const COUNTERS = new Set([
    "olla_requests_total",
    "olla_failures_total",
    "olla_security_violations_total",
    "olla_security_rate_limit_violations_total",
    "olla_security_size_limit_violations_total",
    "olla_endpoint_requests_total",
    "olla_endpoint_traffic_bytes",
    "olla_models_requests_total",
    "olla_models_traffic_bytes",
    "olla_model_requests_total",
    "olla_model_successful_requests_total",
    "olla_model_failed_requests_total",
    "olla_model_traffic_bytes",
    "olla_model_routing_hits_total",
    "olla_model_routing_misses_total",
    "olla_model_routing_fallbacks_total",
  ]);

  test("every Olla metric has samples after a request, with Olla's type and labels", async () => {
    const olla = fleet();
    await (await olla.request("/olla/lmdeploy/v1/chat/completions", chatRequest(LMDEPLOY_MODEL)))
      .text();
    const text = await (await olla.request("/internal/metrics")).text();
    for (const name of NAMES) {
      const type = new RegExp(`^# TYPE ${name} (\\w+)$`, "m").exec(text)?.[1];
      assert.equal(type, COUNTERS.has(name) ? "counter" : "gauge", name);
      assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? \\S+$`, "m"), `${name} has a sample`);
    }
    assert.match(
      text,
      /^olla_info\{version="[^"]+",commit="unknown",engine="olla",profile="auto",balancer="least-connections",runtime="(deno|bun) 0"\} 1$/m,
    );
    assert.match(text, /^olla_endpoint_up\{endpoint="lmdeploy",status="healthy"\} 1$/m);
    assert.match(text, /^olla_endpoint_requests_total\{endpoint="lmdeploy"\} 1$/m);
    assert.match(text, /^olla_endpoint_priority\{endpoint="ollama"\} 100$/m);
    assert.match(
      text,
      new RegExp(`^olla_model_requests_total\\{model="${LMDEPLOY_MODEL}"\\} 1$`, "m"),
    );
    assert.match(text, /^olla_system_status 2$/m);
  });

  test("olla_endpoint_up is 1 only when healthy; olla_endpoint_routable keeps olla-ts's meaning", async () => {
    const olla = fleet();
    olla.service.registry.applyProbe("lms", { status: "busy", latencyMs: 9000 });
    const text = await (await olla.request("/internal/metrics")).text();
    assert.match(text, /^olla_endpoint_up\{endpoint="lms",status="busy"\} 0$/m);
    assert.match(text, /^olla_endpoint_routable\{endpoint="lms",type="lm-studio"\} 1$/m);
  });

  test("the model label stays bounded: a client's random model name is not a series", async () => {
    const olla = fleet();
    await (await olla.request("/olla/lmdeploy/v1/chat/completions", chatRequest("no-such-model")))
      .text();
    const text = await (await olla.request("/internal/metrics")).text();
    assert.ok(!text.includes("no-such-model"));
  });
});
