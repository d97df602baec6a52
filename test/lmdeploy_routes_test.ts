// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import {
  configYaml,
  endpointYaml,
  type OllaWithFakes,
  post,
  readChunks,
  readText,
  startOlla,
  startOllaWithFakes,
  type TestOlla,
  until,
} from "./_harness.ts";
import { IS_BUN } from "./_olla_process.ts";
import { rawGet, rawRequest } from "./_raw_http.ts";
import { type FakeLmdeploy, LMDEPLOY_CARD_KEYS, startFakeLmdeploy } from "./fakes/lmdeploy.ts";

const MODEL_A = "internlm/internlm2_5-7b-chat";
const MODEL_B = "Qwen/Qwen2.5-7B-Instruct";

describe("/olla/lmdeploy/ routes", () => {
  let fleet: OllaWithFakes;
  let a: FakeLmdeploy;
  let b: FakeLmdeploy;
  let olla: TestOlla;

  before(async () => {
    fleet = await startOllaWithFakes([
      { modelName: MODEL_A, adapters: ["my-lora"], apiKeys: ["sk-gpu-a-0001"] },
      { modelName: MODEL_B, rewardModel: true },
    ], ([urlA, urlB]) =>
      configYaml([
        endpointYaml("gpu-a", urlA, "        auth: { type: bearer, token: sk-gpu-a-0001 }\n"),
        endpointYaml("gpu-b", urlB),
      ]));
    ({ olla, fakes: [a, b] } = fleet);
  });
  after(() => fleet.close());

  describe("answered by olla-ts", () => {
    test("GET health reports healthy with counts, without calling a backend", async () => {
      const before = a.count("/health") + b.count("/health");
      const response = await fetch(`${olla.url}/olla/lmdeploy/health`);
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.status, "healthy");
      assert.equal(typeof body.message, "string");
      assert.deepEqual(body.endpoints, { total: 2, routable: 2, sleeping: 0, unavailable: 0 });
      assert.ok(
        a.count("/health") + b.count("/health") - before <= 2,
        "only the background probes",
      );
    });

    test("GET v1/models lists the union of discovered models in LMDeploy's card shape", async () => {
      const response = await fetch(`${olla.url}/olla/lmdeploy/v1/models`);
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.object, "list");
      assert.deepEqual(body.data.map((card: { id: string }) => card.id), [
        MODEL_A,
        "my-lora",
        MODEL_B,
      ]);
      for (const card of body.data) {
        assert.deepEqual(Object.keys(card), LMDEPLOY_CARD_KEYS);
        assert.equal(card.owned_by, "lmdeploy");
        assert.equal(card.parent, null);
        assert.equal(card.permission.length, 1);
      }
    });

    test("GET is_sleeping answers from olla-ts's view with a per-endpoint map", async () => {
      const response = await fetch(`${olla.url}/olla/lmdeploy/is_sleeping`);
      assert.deepEqual(await response.json(), {
        is_sleeping: false,
        endpoints: { "gpu-a": false, "gpu-b": false },
      });
    });

    test("POST v1/embeddings is refused with a pointer to pooling and never reaches a backend", async () => {
      const before = a.count("/v1/embeddings") + b.count("/v1/embeddings");
      const response = await post(olla, "/olla/lmdeploy/v1/embeddings", {
        model: MODEL_A,
        input: "hi",
      });
      assert.equal(response.status, 400);
      const body = await response.json();
      assert.match(body.message, /\/olla\/lmdeploy\/pooling/);
      assert.equal(body.error.message, body.message);
      assert.equal(body.code, 400);
      assert.equal(a.count("/v1/embeddings") + b.count("/v1/embeddings"), before);
    });

    test("HEAD answers wherever GET does, with GET's status and headers and no body", async () => {
      const port = Number(new URL(olla.url).port);
      const before = a.forwarded + b.forwarded;
      for (
        const path of [
          "/olla/lmdeploy/health",
          "/olla/lmdeploy/v1/models",
          `/olla/lmdeploy/v1/models/${encodeURIComponent(MODEL_A)}`,
          "/olla/openai/v1/models",
          `/olla/openai/v1/models/${encodeURIComponent(MODEL_B)}`,
        ]
      ) {
        const got = await rawGet(port, path);
        const head = await rawRequest(
          port,
          `HEAD ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
        );
        assert.equal(got.status, 200, `GET ${path}`);
        assert.equal(head.status, 200, `HEAD ${path}`);
        assert.equal(head.headers["content-type"], got.headers["content-type"], path);
        assert.equal(head.body, "", `HEAD ${path} has no body`);
      }
      assert.equal(a.forwarded + b.forwarded, before, "answered by olla-ts");
      const forwardedPath = "/olla/lmdeploy/anthropic/v1/models";
      const head = await rawRequest(
        port,
        `HEAD ${forwardedPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
      assert.ok(head.headers["x-olla-endpoint"], "a forwarded GET route's HEAD is forwarded");
      assert.equal(head.body, "");
      const sent = [...a.requests, ...b.requests].filter((r) => r.path === "/anthropic/v1/models");
      assert.deepEqual(sent.map((r) => r.method), ["HEAD"], "as HEAD");
      const post = await fetch(`${olla.url}/olla/lmdeploy/health`, { method: "POST" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
    });

    test("paths outside the profile answer 404 from olla-ts and never reach a backend", async () => {
      const before = a.forwarded + b.forwarded;
      for (const path of ["v1/unknown", "docs", "openapi.json", "v1/chat/interactive"]) {
        const response = await fetch(`${olla.url}/olla/lmdeploy/${path}`, { method: "POST" });
        assert.equal(response.status, 404, path);
        const body = await response.json();
        assert.equal(body.error.code, "route_not_found");
        assert.ok(response.headers.get("x-olla-request-id"));
      }
      assert.equal(a.forwarded + b.forwarded, before);
    });

    test("a known path with the wrong method answers 405 with Allow", async () => {
      const response = await fetch(`${olla.url}/olla/lmdeploy/v1/chat/completions`);
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "POST");
      await response.body?.cancel();
    });

    test("management routes are refused with 403 naming the option that enables them", async () => {
      const before = a.count("/sleep") + b.count("/sleep");
      for (
        const path of [
          "sleep",
          "wakeup",
          "abort_request",
          "update_weights",
          "distserve/p2p_connect",
        ]
      ) {
        const response = await post(olla, `/olla/lmdeploy/${path}`, {});
        assert.equal(response.status, 403, path);
        assert.match((await response.json()).message, /proxy\.allow_management_routes/);
      }
      for (const path of ["terminate", "metrics"]) {
        const response = await fetch(`${olla.url}/olla/lmdeploy/${path}`);
        assert.equal(response.status, 403, path);
        await response.body?.cancel();
      }
      assert.equal(a.count("/sleep") + b.count("/sleep"), before);
    });

    test("encoded and dot-segment paths never escape the prefix or reach a backend", async () => {
      const port = Number(new URL(olla.url).port);
      const before = a.forwarded + b.forwarded;
      // Bun normalises plain and encoded dot segments before olla-ts sees them (a browser
      // would too), so some of these land on olla-ts's own routes or none; Deno hands them
      // over as sent and olla-ts refuses them with 400. None may reach a backend.
      // Expected statuses: [GET, POST] on Deno, then on Bun.
      const expected: [string, [number, number], [number, number]][] = [
        ["/olla/lmdeploy/../../v1/models", [400, 400], [404, 404]],
        ["/olla/lmdeploy/%2e%2e/%2e%2e/internal/health", [400, 400], [200, 200]], // /internal/health answers any method, as Olla's does,
        ["/olla/lmdeploy/v1/..%2fmodels", [400, 400], [400, 400]],
        ["/olla/lmdeploy/v1%2fchat%2fcompletions", [400, 400], [400, 400]],
        ["/olla/lmdeploy/v1/chat/completions/..%2f..%2f..%2fsleep", [400, 400], [400, 400]],
        ["/olla/lmdeploy/%2e%2e%2fsleep", [400, 400], [400, 400]],
        ["/olla/lmdeploy//v1/models", [404, 404], [404, 404]],
        ["/olla/lmdeploy/./v1/models", [400, 400], [200, 405]],
        ["/olla/lmdeploy/v1/models%00", [400, 400], [400, 400]],
        ["/olla/lmdeploy/..\\..\\etc/passwd", [400, 400], [404, 404]],
      ];
      for (const [path, onDeno, onBun] of expected) {
        for (const [i, method] of ["GET", "POST"].entries()) {
          const response = await rawRequest(
            port,
            `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
          );
          assert.equal(
            response.headers["x-olla-endpoint"],
            undefined,
            `${method} ${path} was proxied`,
          );
          assert.equal(response.status, (IS_BUN ? onBun : onDeno)[i], `${method} ${path}`);
        }
      }
      for (const path of ["/olla/lmdeploy/v1/..%2fmodels", "/olla/lmdeploy/%2e%2e%2fsleep"]) {
        assert.equal((await rawGet(port, path)).status, 400, path);
      }
      assert.equal(a.forwarded + b.forwarded, before);
    });
  });

  describe("forwarded", () => {
    test("chat completions are routed by model, with X-Olla headers", async () => {
      for (
        const [model, endpoint] of [[MODEL_A, "gpu-a"], [MODEL_B, "gpu-b"], ["my-lora", "gpu-a"]]
      ) {
        const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
          model,
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(response.status, 200);
        const body = await response.json();
        assert.equal(body.object, "chat.completion");
        assert.equal(body.model, model);
        assert.equal(response.headers.get("x-olla-endpoint"), endpoint);
        assert.equal(response.headers.get("x-olla-model"), model);
        assert.equal(response.headers.get("x-olla-backend-type"), "lmdeploy");
        assert.match(response.headers.get("x-olla-response-time") ?? "", /^\d+ms$/);
        assert.equal(response.headers.get("x-olla-routing-reason"), "model_found");
        assert.match(response.headers.get("via") ?? "", /olla-ts/);
        assert.match(
          response.headers.get("server-timing") ?? "",
          /olla;desc="proxy overhead";dur=[\d.]+/,
        );
      }
    });

    test("request bodies reach the backend byte for byte, unknown fields and spacing kept", async () => {
      const sent =
        `{ "model" : "${MODEL_B}",\n  "messages":[{"role":"user","content":"caf\\u00e9 \u2603"}],\n  "x_unknown": {"deep": [1, 2.50, null]}, "stream":false }`;
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", sent);
      assert.equal(response.status, 200);
      await response.body?.cancel();
      const received = b.requests.findLast((r) => r.path === "/v1/chat/completions");
      assert.deepEqual(received?.body, new TextEncoder().encode(sent));
    });

    test("responses reach the client byte for byte, streamed and not", async () => {
      for (const stream of [false, true]) {
        const body = { prompt: "Hello", max_tokens: 5, stream, model: MODEL_B };
        const direct = await fetch(`${b.url}/generate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const viaOlla = await post(olla, "/olla/lmdeploy/generate", body);
        assert.equal(viaOlla.status, direct.status);
        assert.equal(viaOlla.headers.get("content-type"), direct.headers.get("content-type"));
        assert.deepEqual(
          new Uint8Array(await viaOlla.arrayBuffer()),
          new Uint8Array(await direct.arrayBuffer()),
        );
      }
    });

    test("SSE arrives incrementally: each event reaches the client without waiting for the next", async () => {
      const started = performance.now();
      const response = await post(
        olla,
        "/olla/lmdeploy/v1/chat/completions",
        { model: MODEL_A, messages: [{ role: "user", content: "count" }], stream: true },
        { "x-fake-itl-ms": "150", "x-fake-tokens": "5" },
      );
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-a");
      const chunks = await readChunks(response);
      const total = performance.now() - started;
      const events = chunks.map((c) => c.text).join("").split("\n\n").filter((e) =>
        e.startsWith("data: ")
      );
      assert.equal(events.length, 7, "5 tokens, the finish chunk and [DONE]");
      // The first token is sent at once and the rest every 150 ms: if olla-ts held chunks
      // back, they would arrive together at the end.
      assert.ok(
        chunks[0].at - started < total / 3,
        `first chunk at ${chunks[0].at - started}ms of ${total}ms`,
      );
      const distinct = chunks.filter((c, i) => i === 0 || c.at - chunks[i - 1].at > 75).length;
      assert.ok(distinct >= 5, `only ${distinct} separate arrivals`);
    });

    test("completions stream and not", async () => {
      const plain = await post(olla, "/olla/lmdeploy/v1/completions", {
        model: MODEL_A,
        prompt: "Once",
      });
      assert.equal((await plain.json()).object, "text_completion");
      const streamed = await post(olla, "/olla/lmdeploy/v1/completions", {
        model: MODEL_A,
        prompt: "Once",
        stream: true,
      });
      const text = await readText(streamed);
      assert.match(text, /"object": "text_completion"/);
      assert.match(text, /data: \[DONE\]\n\n$/);
    });

    test("v1/encode is routed by model when given, else to any endpoint", async () => {
      const routed = await post(olla, "/olla/lmdeploy/v1/encode", { model: MODEL_B, input: "hi" });
      assert.equal(routed.headers.get("x-olla-endpoint"), "gpu-b");
      assert.deepEqual(await routed.json(), { input_ids: [1, 104, 105], length: 3 });
      const any = await post(olla, "/olla/lmdeploy/v1/encode", { input: ["a", "bc"] });
      assert.equal(any.status, 200);
      assert.ok(["gpu-a", "gpu-b"].includes(any.headers.get("x-olla-endpoint") ?? ""));
      assert.equal(any.headers.get("x-olla-routing-reason"), "no_model");
    });

    test("generate goes to any endpoint without a model and by model with one", async () => {
      const any = await post(olla, "/olla/lmdeploy/generate", { prompt: "Hello", max_tokens: 3 });
      assert.equal(any.status, 200);
      assert.deepEqual(Object.keys(await any.json()), ["text", "output_ids", "meta_info"]);
      const routed = await post(olla, "/olla/lmdeploy/generate", {
        prompt: "Hello",
        model: MODEL_A,
      });
      assert.equal(routed.headers.get("x-olla-endpoint"), "gpu-a");
      await routed.body?.cancel();
    });

    test("pooling is routed by model", async () => {
      const response = await post(olla, "/olla/lmdeploy/pooling", {
        model: MODEL_B,
        input: ["a", "b"],
      });
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.data[0].object, "pooling");
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-b");
    });

    test("get_ppl, v1/responses, v1/messages, count_tokens and anthropic/v1/models are forwarded", async () => {
      for (const path of ["get_ppl", "v1/responses", "v1/messages", "v1/messages/count_tokens"]) {
        const response = await post(olla, `/olla/lmdeploy/${path}`, { model: MODEL_B, input: "x" });
        assert.equal(response.status, 200, path);
        await response.body?.cancel();
        assert.ok(b.count(`/${path}`) >= 1, path);
      }
      const models = await fetch(`${olla.url}/olla/lmdeploy/anthropic/v1/models`);
      assert.equal(models.status, 200);
      await models.body?.cancel();
    });

    test("query strings are forwarded", async () => {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions?trace=1&x=y", {
        model: MODEL_B,
        messages: [{ role: "user", content: "q" }],
      });
      await response.body?.cancel();
      assert.equal(
        b.requests.findLast((r) => r.path === "/v1/chat/completions")?.search,
        "?trace=1&x=y",
      );
    });

    test("errors from LMDeploy pass through unchanged with their status", async () => {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: MODEL_B,
        messages: [{ role: "user", content: "x" }],
        temperature: 3,
      });
      assert.equal(response.status, 400);
      assert.equal(
        await response.text(),
        JSON.stringify({
          message: "The temperature 3 must be in [0, 2]",
          type: "invalid_request_error",
          code: 400,
          param: null,
          object: "error",
        }),
      );
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-b");
    });

    test("a mid-stream LMDeploy error event passes through as it is", async () => {
      const response = await post(
        olla,
        "/olla/lmdeploy/v1/chat/completions",
        { model: MODEL_A, messages: [{ role: "user", content: "x" }], stream: true },
        { "x-fake-fault": "midstream-error", "x-fake-tokens": "2" },
      );
      const text = await readText(response);
      assert.match(
        text,
        /data: \{"error": \{"message": "The inference engine is unavailable\."|data: \{"error":/,
      );
      assert.match(text, /data: \[DONE\]\n\n$/);
    });

    test("an unknown model is a 404 from olla-ts in the shared envelope, with X-Olla headers", async () => {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: "nope/model",
        messages: [],
      });
      assert.equal(response.status, 404);
      const body = await response.json();
      assert.deepEqual(Object.keys(body).sort(), [
        "code",
        "error",
        "message",
        "object",
        "param",
        "type",
      ]);
      assert.equal(body.object, "error");
      assert.equal(body.code, 404);
      assert.equal(body.type, "not_found_error");
      assert.equal(body.error.code, "model_not_found");
      assert.equal(body.error.param, "model");
      assert.equal(response.headers.get("x-olla-model"), "nope/model");
      assert.equal(response.headers.get("x-olla-routing-decision"), "rejected");
      assert.equal(response.headers.get("x-olla-routing-reason"), "model_not_found");
      assert.ok(response.headers.get("x-olla-request-id"));
    });
    test("an unknown model of megabytes is quoted cut short, in the answer and the access line", async () => {
      const model = `${MODEL_A}-${"x".repeat(2_000_000)}`;
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", { model });
      assert.equal(response.status, 404);
      const body = await response.json();
      assert.equal(body.error.code, "model_not_found");
      assert.ok(
        body.message.startsWith(
          `The model '${model.slice(0, 128)}...' (${model.length} characters)`,
        ),
        body.message.slice(0, 200),
      );
      assert.ok(body.message.length < 500, `message of ${body.message.length} characters`);
      const line = olla.rawLogs.findLast((text) => text.includes(body.message.slice(0, 60)));
      assert.ok(line && line.length < 2_000, `access line of ${line?.length} characters`);
    });
  });

  describe("paths of a megabyte", () => {
    test("are clipped in the 404 and the access line", async () => {
      const long = "a".repeat(1_000_000);
      for (const path of [`/v9/${long}`, `/olla/${long}/v1/models`, `/olla/openai/${long}`]) {
        // In process: no runtime header limit stands in the way.
        const response = await olla.service.fetch(new Request(`http://127.0.0.1${path}`), {
          remoteAddr: "127.0.0.1",
        });
        assert.equal(response.status, 404, path.slice(0, 20));
        const body = await response.json();
        assert.match(body.message, /\.\.\. \(\d+ characters\)/);
        assert.ok(body.message.length < 1_000, `message of ${body.message.length} characters`);
        const id = response.headers.get("x-olla-request-id")!;
        await until(() => olla.rawLogs.some((text) => text.includes(id)));
        const line = olla.rawLogs.findLast((text) => text.includes(id))!;
        assert.ok(line.length < 5_000, `access line of ${line.length} characters`);
      }
    });
  });

  describe("header hygiene", () => {
    test("client credentials and hop-by-hop headers never reach the backend; forwarding headers and endpoint auth do", async () => {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: MODEL_A,
        messages: [],
      }, {
        authorization: "Bearer client-secret-key",
        cookie: "session=abc",
        "x-api-key": "client-api-key",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        connection: "x-hop-me",
        "x-hop-me": "1",
        "x-custom": "kept",
        "x-olla-endpoint": "spoofed",
        "x-forwarded-for": "203.0.113.9",
      });
      await response.body?.cancel();
      const seen = a.requests.findLast((r) => r.path === "/v1/chat/completions")!.headers;
      assert.equal(seen.get("authorization"), "Bearer sk-gpu-a-0001", "the endpoint's own key");
      for (
        const name of ["cookie", "x-api-key", "proxy-authorization", "x-hop-me", "x-olla-endpoint"]
      ) {
        assert.equal(seen.get(name), null, name);
      }
      assert.equal(seen.get("x-custom"), "kept");
      assert.equal(seen.get("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
      assert.equal(seen.get("x-forwarded-proto"), "http");
      assert.equal(seen.get("x-forwarded-host"), new URL(olla.url).host);
      assert.match(seen.get("via") ?? "", /1\.1 olla-ts/);
    });

    test("upstream Set-Cookie, X-Olla-* and hop-by-hop headers never reach the client", async () => {
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: MODEL_B,
        messages: [],
      }, {
        "x-fake-response-headers": JSON.stringify({
          "set-cookie": "tracking=1",
          "x-olla-endpoint": "evil",
          "x-olla-injected": "1",
          "x-backend-note": "kept",
        }),
      });
      await response.body?.cancel();
      assert.equal(response.headers.get("set-cookie"), null);
      assert.equal(response.headers.get("x-olla-injected"), null);
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-b");
      assert.equal(response.headers.get("x-backend-note"), "kept");
    });

    test("X-Request-ID is reused when sane and replaced otherwise", async () => {
      const sane = await post(olla, "/olla/lmdeploy/v1/encode", { input: "a" }, {
        "x-request-id": "trace-abc-123",
      });
      assert.equal(sane.headers.get("x-olla-request-id"), "trace-abc-123");
      await sane.body?.cancel();
      assert.equal(
        a.requests.concat(b.requests).some((r) =>
          r.headers.get("x-request-id") === "trace-abc-123"
        ),
        true,
      );
      const port = Number(new URL(olla.url).port);
      const long = await rawGet(
        port,
        "/olla/lmdeploy/health",
        `X-Request-ID: ${"x".repeat(200)}\r\n`,
      );
      assert.match(long.headers["x-olla-request-id"], /^[0-9a-f-]{36}$/);
    });
  });

  describe("client aborts", () => {
    test("a client that leaves mid-stream aborts the upstream request at once", async () => {
      const abortedBefore = a.aborted;
      const controller = new AbortController();
      const response = await post(
        olla,
        "/olla/lmdeploy/v1/chat/completions",
        { model: MODEL_A, messages: [{ role: "user", content: "long" }], stream: true },
        { "x-fake-itl-ms": "200", "x-fake-tokens": "50" },
      );
      const reader = response.body!.getReader();
      await reader.read();
      controller.abort();
      await reader.cancel();
      const deadline = Date.now() + 2_000;
      while (a.aborted === abortedBefore && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(a.aborted, abortedBefore + 1);
      assert.equal(a.active, 0);
    });

    test("a client that leaves before the answer starts aborts the upstream request", async () => {
      const abortedBefore = b.aborted;
      const controller = new AbortController();
      const pending = fetch(`${olla.url}/olla/lmdeploy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-fake-ttft-ms": "3000" },
        body: JSON.stringify({ model: MODEL_B, messages: [] }),
        signal: controller.signal,
      }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      controller.abort();
      await pending;
      const deadline = Date.now() + 2_000;
      while (b.aborted === abortedBefore && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(b.aborted, abortedBefore + 1);
    });
  });

  describe("the official openai client against /olla/lmdeploy/v1", () => {
    const client = () =>
      new OpenAI({ baseURL: `${olla.url}/olla/lmdeploy/v1`, apiKey: "unused", maxRetries: 0 });

    test("chat, streaming and not", async () => {
      const completion = await client().chat.completions.create({
        model: MODEL_A,
        messages: [{ role: "user", content: "Hello" }],
      });
      assert.equal(completion.choices[0].message.role, "assistant");
      assert.match(completion.choices[0].message.content ?? "", /Hello/);
      const stream = await client().chat.completions.create({
        model: MODEL_A,
        messages: [{ role: "user", content: "Hello" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let usage;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        usage = chunk.usage ?? usage;
      }
      assert.equal(text, "Hello from a fake LMDeploy engine on port");
      assert.equal(usage?.completion_tokens, 8);
    });

    test("completions, streaming and not", async () => {
      const completion = await client().completions.create({ model: MODEL_B, prompt: "Once" });
      assert.equal(completion.object, "text_completion");
      const stream = await client().completions.create({
        model: MODEL_B,
        prompt: "Once",
        stream: true,
      });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
      assert.equal(text, "Hello from a fake LMDeploy engine on port");
    });

    test("models list and errors surface through the SDK", async () => {
      const ids = [];
      for await (const model of client().models.list()) ids.push(model.id);
      assert.deepEqual(ids, [MODEL_A, "my-lora", MODEL_B]);
      await assert.rejects(
        client().chat.completions.create({
          model: "missing",
          messages: [{ role: "user", content: "x" }],
        }),
        (error: { status?: number; message?: string }) =>
          error.status === 404 && /missing/.test(error.message ?? ""),
      );
    });
  });
});

describe("/olla/lmdeploy/ health and sleep views", () => {
  test("health says sleeping when every live endpoint sleeps, 503 when none is usable; is_sleeping agrees", async () => {
    const a = await startFakeLmdeploy({ sleeping: true });
    const b = await startFakeLmdeploy({ sleeping: true, modelName: MODEL_B });
    const olla = await startOlla(configYaml([endpointYaml("a", a.url), endpointYaml("b", b.url)]));
    try {
      const sleeping = await fetch(`${olla.url}/olla/lmdeploy/health`);
      assert.equal(sleeping.status, 200);
      assert.equal((await sleeping.json()).status, "sleeping");
      assert.deepEqual(await (await fetch(`${olla.url}/olla/lmdeploy/is_sleeping`)).json(), {
        is_sleeping: true,
        endpoints: { a: true, b: true },
      });
      await a.close();
      await b.close();
      const deadline = Date.now() + 3_000;
      while (
        olla.service.registry.endpoints.some((e) => e.status !== "offline") && Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const down = await fetch(`${olla.url}/olla/lmdeploy/health`);
      assert.equal(down.status, 503);
      assert.equal((await down.json()).status, "unhealthy");
    } finally {
      await olla.close();
    }
  });

  test("an LMDeploy v0.13 engine with an empty /health body is healthy and serves", async () => {
    const old = await startFakeLmdeploy({ version: "0.13" });
    const olla = await startOlla(configYaml([endpointYaml("old", old.url)]));
    try {
      assert.equal(olla.service.registry.get("old")?.status, "healthy");
      const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", {
        model: old.modelName,
        messages: [],
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      await olla.close();
      await old.close();
    }
  });

  test("management routes, when enabled, reach only the endpoint named in X-Olla-Target-Endpoint", async () => {
    const a = await startFakeLmdeploy();
    const b = await startFakeLmdeploy();
    const olla = await startOlla(
      configYaml(
        [endpointYaml("a", a.url), endpointYaml("b", b.url)],
        "proxy:\n  allow_management_routes: true\n",
      ),
    );
    try {
      const missing = await post(olla, "/olla/lmdeploy/sleep", "");
      assert.equal(missing.status, 400);
      assert.match((await missing.json()).message, /X-Olla-Target-Endpoint/i);
      const slept = await post(olla, "/olla/lmdeploy/sleep?level=1", "", {
        "x-olla-target-endpoint": "b",
      });
      assert.equal(slept.status, 200);
      assert.equal(b.sleeping, true);
      assert.equal(a.sleeping, false);
      assert.equal(b.requests.findLast((r) => r.path === "/sleep")?.search, "?level=1");
      // A sleeping endpoint is not routable, yet wakeup must reach it.
      const woke = await post(olla, "/olla/lmdeploy/wakeup", "", { "x-olla-target-endpoint": "b" });
      assert.equal(woke.status, 200);
      assert.equal(b.sleeping, false);
      // One engine's own /metrics, as LMDeploy serves it.
      const before = b.count("/metrics");
      const metrics = await fetch(`${olla.url}/olla/lmdeploy/metrics`, {
        headers: { "x-olla-target-endpoint": "b" },
      });
      assert.equal(metrics.status, 200);
      await metrics.body?.cancel();
      assert.equal(b.count("/metrics"), before + 1);
    } finally {
      await olla.close();
      await a.close();
      await b.close();
    }
  });

  test("HEAD/unknown providers and the root answer JSON 404s", async () => {
    const olla = await startOlla(configYaml([endpointYaml("a", "http://127.0.0.1:1")]), {
      waitForHealthy: false,
    });
    try {
      const response = await fetch(`${olla.url}/olla/nosuch/v1/models`);
      assert.equal(response.status, 404);
      assert.equal((await response.json()).error.code, "provider_not_found");
      const raw = await rawRequest(
        Number(new URL(olla.url).port),
        "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      assert.equal(raw.status, 404);
      assert.match(raw.headers["content-type"], /application\/json/);
    } finally {
      await olla.close();
    }
  });
});
