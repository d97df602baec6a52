/** Telemetry and the access log from finished requests, through the app without sockets. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FAKE_MODEL, inProcessOlla } from "./_harness.ts";
import { jsonResponse } from "./fakes/fetch.ts";

const CONFIG = `server:
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
proxy: { load_balancer: priority }
discovery:
  static:
    endpoints:
      - { name: "gpu:1", url: "http://gpu-1:23333", type: lmdeploy, priority: 100 }
      - { name: "gpu:2", url: "http://gpu-2:23333", type: lmdeploy, priority: 50 }
`;

function fleet() {
  const olla = inProcessOlla(
    CONFIG,
    (call) =>
      call.url.startsWith("http://gpu-1:")
        ? jsonResponse(502, { error: "bad gateway" })
        : jsonResponse(200, {
          object: "chat.completion",
          choices: [{ finish_reason: "stop" }],
          usage: { prompt_tokens: 7, completion_tokens: 3 },
        }),
  );
  olla.serve("gpu:1", [FAKE_MODEL]);
  olla.serve("gpu:2", [FAKE_MODEL]);
  return olla;
}

async function chatOnce(olla: ReturnType<typeof fleet>, model = FAKE_MODEL) {
  const response = await olla.request("/olla/lmdeploy/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model, messages: [] }),
  });
  await response.arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, 0));
  return response;
}

describe("Telemetry", () => {
  test("labels a failover with the endpoint's whole name, colons and all", async () => {
    const olla = fleet();
    const response = await chatOnce(olla);
    assert.equal(response.headers.get("x-olla-endpoint"), "gpu:2");
    const metrics = olla.service.telemetry.metrics.render();
    assert.match(metrics, /^olla_failovers_total\{endpoint="gpu:1",reason="upstream_502"\} 1$/m);
    assert.match(
      metrics,
      /^olla_tokens_total\{endpoint="gpu:2",model="internlm\/internlm2_5-7b-chat",type="prompt",estimated="false"\} 7$/m,
    );
  });

  test("the access log names the failover and usage; unknown models are a bounded label", async () => {
    const olla = fleet();
    await chatOnce(olla);
    await chatOnce(olla, "random-model-1");
    const [served, unknown] = olla.logs.filter((log) => log.msg === "access");
    assert.deepEqual(served.failover_reasons, ["gpu:1:upstream_502"]);
    assert.equal(served.prompt_tokens, 7);
    assert.equal(served.finish_reason, "stop");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.fault, "client");
    const metrics = olla.service.telemetry.metrics.render();
    assert.match(metrics, /olla_requests_total\{[^}]*model="unknown"[^}]*\} 1/);
    assert.doesNotMatch(metrics, /random-model-1/);
  });

  test("a request whose every attempt failed is the upstream's fault, with the reason logged", async () => {
    const olla = inProcessOlla(CONFIG, () => jsonResponse(503, { error: "busy" }));
    olla.serve("gpu:1", [FAKE_MODEL]);
    olla.serve("gpu:2", [FAKE_MODEL]);
    const response = await chatOnce(olla);
    assert.equal(response.status, 503);
    const line = olla.logs.findLast((log) => log.msg === "access");
    assert.equal(line?.fault, "upstream");
    assert.match(String(line?.error), /every attempt failed/);
  });
});
