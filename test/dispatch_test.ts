/** The dispatcher through the app, without sockets: body, model routing, aliases, refusals. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { collectGarbage } from "./_gc.ts";
import { FAKE_MODEL, inProcessOlla } from "./_harness.ts";
import { jsonResponse } from "./fakes/fetch.ts";

const CONFIG = `server:
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
  request_limits: { max_body_size: 1KB }
discovery:
  static:
    endpoints:
      - { name: gpu-a, url: "http://gpu-a:23333", type: lmdeploy }
      - { name: gpu-b, url: "http://gpu-b:23333", type: lmdeploy }
model_aliases:
  chat: [not-served, ${FAKE_MODEL}]
`;

function fleet() {
  const olla = inProcessOlla(
    CONFIG,
    (call) => jsonResponse(200, { object: "chat.completion", sent: JSON.parse(call.body ?? "{}") }),
  );
  olla.serve("gpu-a", [FAKE_MODEL]);
  olla.serve("gpu-b", ["other/model"]);
  return olla;
}

const chat = (olla: ReturnType<typeof fleet>, body: string) =>
  olla.request("/olla/lmdeploy/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });

describe("Dispatcher", () => {
  test("sends a model only to the endpoint that lists it", async () => {
    const olla = fleet();
    for (let i = 0; i < 4; i++) {
      const response = await chat(olla, JSON.stringify({ model: "other/model", messages: [] }));
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-b");
      assert.equal(response.headers.get("x-olla-routing-reason"), "model_found");
    }
    assert.ok(olla.upstream.calls.every((call) => call.url.startsWith("http://gpu-b:23333/")));
  });

  test("an alias reaches the endpoint serving one of its names, with only model rewritten", async () => {
    const olla = fleet();
    const sent = '{"model":"chat","messages":[{"role":"user","content":"caf\\u00e9"}],"x":1}';
    const response = await chat(olla, sent);
    assert.equal(response.headers.get("x-olla-endpoint"), "gpu-a");
    assert.equal(response.headers.get("x-olla-routing-reason"), "alias_resolved");
    assert.equal(olla.upstream.calls[0].body, sent.replace('"chat"', JSON.stringify(FAKE_MODEL)));
  });

  test("an unknown model is a 404 and a known one with no routable endpoint a 503 with Retry-After", async () => {
    const olla = fleet();
    const unknown = await chat(olla, JSON.stringify({ model: "nobody/serves", messages: [] }));
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "model_not_found");
    olla.service.registry.applyProbe("gpu-b", { status: "offline", latencyMs: 1 });
    const down = await chat(olla, JSON.stringify({ model: "other/model", messages: [] }));
    assert.equal(down.status, 503);
    assert.ok(Number(down.headers.get("retry-after")) >= 1);
    assert.match((await down.json()).error.message, /gpu-b: offline/);
    assert.equal(olla.upstream.calls.length, 0);
  });

  test("a body over max_body_size is a 413 and nothing is sent", async () => {
    const olla = fleet();
    const response = await chat(
      olla,
      JSON.stringify({ model: FAKE_MODEL, pad: "x".repeat(2_000) }),
    );
    assert.equal(response.status, 413);
    assert.equal(olla.upstream.calls.length, 0);
  });
});

describe("Dispatcher, memory", () => {
  // On Bun 1.4 the buffer outlives forced collections even after the answer has ended, with
  // nothing holding it: the heap snapshot (Bun.generateHeapSnapshot) shows no path to it but
  // through the WeakRef. The check is made where the collector takes what is unreachable.
  const onBun = "Bun" in globalThis;
  test("a stream being answered does not keep the request body alive", {
    skip: onBun && "Bun's collector keeps this unreachable buffer (see above)",
  }, async () => {
    let bodyRef: WeakRef<ArrayBufferLike> | undefined;
    let stream!: ReadableStreamDefaultController<Uint8Array>;
    const upstream = (input: RequestInfo | URL, init?: RequestInit) => {
      const body = init?.body;
      if (String(input).endsWith("/v1/chat/completions") && body instanceof Uint8Array) {
        bodyRef = new WeakRef(body.buffer);
      }
      const events = new ReadableStream<Uint8Array>({ start: (c) => void (stream = c) });
      return Promise.resolve(
        new Response(events, { headers: { "content-type": "text/event-stream" } }),
      );
    };
    const olla = inProcessOlla(CONFIG.replace("max_body_size: 1KB", "max_body_size: 1MB"), () => {
      throw new Error("not called");
    }, { fetch: upstream as typeof fetch });
    olla.serve("gpu-a", [FAKE_MODEL]);
    const body = JSON.stringify({
      model: FAKE_MODEL,
      stream: true,
      messages: [{ role: "user", content: "x".repeat(256 * 1024) }],
    });
    // With its length declared, as a client over a socket sends it.
    const response = await olla.request("/olla/lmdeploy/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    assert.ok(response.body);
    const reader = response.body.getReader();
    stream.enqueue(new TextEncoder().encode('data: {"choices":[]}\n\n'));
    assert.equal((await reader.read()).done, false);
    assert.ok(bodyRef, "the body reached the upstream as bytes");
    // deref() keeps its target alive to the end of the job, so it is only asked once, after.
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      collectGarbage();
    }
    assert.equal(bodyRef.deref(), undefined, "the 256 KB body is still reachable mid-stream");
    stream.enqueue(new TextEncoder().encode("data: [DONE]\n\n"));
    stream.close();
    while (!(await reader.read()).done);
  });
});
