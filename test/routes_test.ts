/** Each routes/ module through the app, without sockets. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FAKE_MODEL, inProcessOlla } from "./_harness.ts";
import { jsonResponse } from "./fakes/fetch.ts";

const CONFIG = `server:
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
discovery:
  static:
    endpoints:
      - { name: gpu-a, url: "http://gpu-a:23333", type: lmdeploy }
      - { name: vllm-1, url: "http://vllm-1:8000", type: vllm }
`;
const QWEN = "Qwen/Qwen2.5-7B-Instruct";

function fleet(extra = "") {
  const olla = inProcessOlla(
    CONFIG + extra,
    (call) => jsonResponse(200, { object: "chat.completion", upstream: new URL(call.url).host }),
  );
  olla.serve("gpu-a", [FAKE_MODEL]);
  olla.serve("vllm-1", [QWEN]);
  return olla;
}

describe("routes/internal.ts", () => {
  test("status JSON carries a weak ETag; a matching If-None-Match gets 304 until state changes", async () => {
    const olla = fleet();
    const path = "/internal/status/endpoints";
    const first = await olla.request(path);
    assert.equal(first.status, 200);
    const etag = first.headers.get("etag") ?? "";
    assert.match(etag, /^W\/"/);
    assert.equal((await first.json()).endpoints.length, 2);
    const again = await olla.request(path, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    olla.service.registry.applyProbe("gpu-a", { status: "offline", latencyMs: 1 });
    const changed = await olla.request(path, { headers: { "if-none-match": etag } });
    assert.equal(changed.status, 200, "a state change changes the ETag");
  });

  test("/internal/metrics is the Prometheus text format", async () => {
    const response = await fleet().request("/internal/metrics");
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await response.text();
    assert.match(text, /^olla_endpoint_routable\{endpoint="gpu-a",type="lmdeploy"\} 1$/m);
    // Olla's meaning and labels: 1 when the status is healthy.
    assert.match(text, /^olla_endpoint_up\{endpoint="gpu-a",status="healthy"\} 1$/m);
  });
});

describe("routes/models.ts", () => {
  test("an unknown ?format= is a 400 naming the formats", async () => {
    const response = await fleet().request("/olla/models?format=nope");
    assert.equal(response.status, 400);
    assert.match(
      (await response.json()).error.message,
      /invalid query parameter format=nope: unsupported format\. Supported formats: unified, openai/,
    );
  });

  test("/olla/models/{id} takes ids containing a slash", async () => {
    const olla = fleet();
    const found = await olla.request(`/olla/models/${QWEN}`);
    assert.equal(found.status, 200);
    assert.equal((await found.json()).id, QWEN);
    assert.equal((await olla.request("/olla/models/none/such")).status, 404);
  });
});

describe("routes/provider.ts", () => {
  test("a path the profile has with other methods is a 405 with Allow", async () => {
    const response = await fleet().request("/olla/lmdeploy/v1/chat/completions");
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "POST");
  });

  test("refusals, unknown paths and unknown providers never reach a backend", async () => {
    const olla = fleet();
    const post = { method: "POST", body: "{}" };
    const embeddings = await olla.request("/olla/lmdeploy/v1/embeddings", post);
    assert.equal(embeddings.status, 400);
    assert.match((await embeddings.json()).message, /pooling/);
    assert.equal((await olla.request("/olla/lmdeploy/no/such", post)).status, 404);
    assert.equal((await olla.request("/olla/nobody/v1/models")).status, 404);
    assert.equal((await olla.request("/olla/lmdeploy/v1%2fmodels")).status, 400);
    assert.equal(olla.upstream.calls.length, 0);
  });

  test("management routes are 403 unless enabled, then go to the named endpoint", async () => {
    const off = fleet();
    assert.equal((await off.request("/olla/lmdeploy/sleep", { method: "POST" })).status, 403);
    const on = fleet("proxy:\n  allow_management_routes: true\n");
    const unnamed = await on.request("/olla/lmdeploy/sleep", { method: "POST" });
    assert.equal(unnamed.status, 400);
    const named = await on.request("/olla/lmdeploy/sleep", {
      method: "POST",
      headers: { "x-olla-target-endpoint": "gpu-a" },
    });
    assert.equal(named.status, 200);
    assert.deepEqual(on.upstream.calls.map((call) => call.url), ["http://gpu-a:23333/sleep"]);
  });

  test("health and v1/models are answered from olla-ts's view of that type only", async () => {
    const olla = fleet();
    const health = await (await olla.request("/olla/vllm/health")).json();
    assert.deepEqual(health.endpoints, { total: 1, routable: 1, sleeping: 0, unavailable: 0 });
    const models = await (await olla.request("/olla/vllm/v1/models")).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), [QWEN]);
    assert.equal(olla.upstream.calls.length, 0);
  });
});

describe("routes/unified.ts", () => {
  test("v1/models lists every OpenAI-compatible endpoint's models", async () => {
    const models = await (await fleet().request("/olla/openai/v1/models")).json();
    assert.deepEqual(
      models.data.map((m: { id: string }) => m.id).sort(),
      [FAKE_MODEL, QWEN].sort(),
    );
  });

  test("routes by model across types and explains a path only a refusing profile has", async () => {
    const olla = fleet();
    const chat = (model: string) =>
      olla.request("/olla/proxy/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ model, messages: [] }),
      });
    assert.equal((await (await chat(QWEN)).json()).upstream, "vllm-1:8000");
    assert.equal((await (await chat(FAKE_MODEL)).json()).upstream, "gpu-a:23333");
    const embeddings = await olla.request("/olla/proxy/v1/embeddings", {
      method: "POST",
      body: JSON.stringify({ model: FAKE_MODEL, input: "x" }),
    });
    assert.equal(embeddings.status, 400, "the model lives only on LMDeploy, which refuses it");
    assert.equal((await olla.request("/olla/proxy/no/such", { method: "POST" })).status, 404);
  });
});
