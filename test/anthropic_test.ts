/**
 * The Anthropic Messages API end to end: the official `@anthropic-ai/sdk` against olla-ts
 * over real sockets, in front of fake engines. One fleet holds an engine serving Messages
 * natively (passthrough, LMDeploy 0.13+'s shape), one that needs translation (SGLang), an
 * LMDeploy too old for the native path, and a vLLM whose tokenizer counts tokens.
 */
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readText, startOlla, type TestOlla, until, untilObserved } from "./_harness.ts";
import { type AnthropicEngine, startAnthropicEngine } from "./fakes/anthropic_engine.ts";

const NATIVE = "lmd-model";
const TRANSLATED = "sg-model";
const THINKING = "sg-think";
const OLD = "old-model";
const VLLM = "vl-model";

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } } },
};

let olla: TestOlla;
let native: AnthropicEngine;
let translated: AnthropicEngine;
let old: AnthropicEngine;
let vllm: AnthropicEngine;
let client: Anthropic;

function endpoint(name: string, url: string, type: string): string {
  return `      - { name: ${name}, url: "${url}", type: ${type}, check_interval: 1s }\n`;
}

before(async () => {
  native = await startAnthropicEngine({ models: [NATIVE], native: true });
  translated = await startAnthropicEngine({ models: [TRANSLATED, THINKING] });
  old = await startAnthropicEngine({ models: [OLD] });
  vllm = await startAnthropicEngine({ models: [VLLM], native: true });
  olla = await startOlla(
    `server:
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
translators:
  anthropic:
    max_message_size: 4096
model_aliases:
  claude-sonnet-4-5: ["${TRANSLATED}"]
discovery:
  static:
    endpoints:
${endpoint("native", native.url, "lmdeploy")}${endpoint("translated", translated.url, "sglang")}${
      endpoint("old", old.url, "lmdeploy")
    }${endpoint("vllm", vllm.url, "vllm")}`,
  );
  await until(() => olla.service.registry.endpoints.every((e) => e.models?.size), 5_000);
  client = new Anthropic({
    baseURL: `${olla.url}/olla/anthropic`,
    apiKey: "sk-ant-test",
    maxRetries: 0,
  });
});

after(async () => {
  await olla.close();
  await Promise.all([native, translated, old, vllm].map((engine) => engine.close()));
});

function lastRequest(engine: AnthropicEngine, path: string) {
  const found = engine.requests.filter((request) => request.path === path).at(-1);
  assert.ok(found, `${path} was requested`);
  return found;
}

describe("translation (an engine without the Messages API)", () => {
  test("plain: text, stop_reason, usage, an msg_ id, X-Olla-Mode: translation", async () => {
    const { data, response } = await client.messages.create({
      model: TRANSLATED,
      max_tokens: 64,
      system: "Be brief.",
      messages: [{ role: "user", content: "Hello" }],
    }).withResponse();
    assert.match(data.id, /^msg_/);
    assert.deepEqual(data.content, [{ type: "text", text: "Hi from the fake" }]);
    assert.equal(data.stop_reason, "end_turn");
    assert.equal(data.usage.input_tokens, 21);
    assert.equal(data.usage.output_tokens, 7);
    assert.equal(response.headers.get("x-olla-mode"), "translation");
    assert.equal(response.headers.get("x-olla-endpoint"), "translated");
    const sent = lastRequest(translated, "/v1/chat/completions").body;
    assert.deepEqual(sent.messages, [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
    ]);
    assert.equal(sent.max_tokens, 64);
  });

  test("streamed: Anthropic's events in order, with the engine's usage", async () => {
    const stream = client.messages.stream({
      model: TRANSLATED,
      max_tokens: 64,
      messages: [{ role: "user", content: "Hello" }],
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const message = await stream.finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: "Hi from the fake" }]);
    assert.equal(message.usage.output_tokens, 7);
    const sent = lastRequest(translated, "/v1/chat/completions").body;
    assert.deepEqual(sent.stream_options, { include_usage: true });
  });

  test("the raw stream carries a ping after the first block starts", async () => {
    const response = await fetch(`${olla.url}/olla/anthropic/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: TRANSLATED,
        max_tokens: 8,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      }),
    });
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const events = [...(await readText(response)).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(events.slice(0, 3), ["message_start", "content_block_start", "ping"]);
  });

  test("tools, plain: a tool_use block with parsed input; tools and tool_choice translated", async () => {
    const message = await client.messages.create({
      model: TRANSLATED,
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      tool_choice: { type: "tool", name: "get_weather" },
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    assert.equal(message.stop_reason, "tool_use");
    assert.deepEqual(message.content, [{
      type: "tool_use",
      id: "call_1",
      name: "get_weather",
      input: { city: "Paris" },
    }]);
    const sent = lastRequest(translated, "/v1/chat/completions").body;
    assert.deepEqual(sent.tools, [{
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather for a city",
        parameters: WEATHER_TOOL.input_schema,
      },
    }]);
    assert.deepEqual(sent.tool_choice, { type: "function", function: { name: "get_weather" } });
  });

  test("tools, streamed: input_json_delta as the arguments arrive", async () => {
    const stream = client.messages.stream({
      model: TRANSLATED,
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    const partials: string[] = [];
    stream.on("inputJson", (partial) => partials.push(partial));
    const message = await stream.finalMessage();
    assert.deepEqual(partials, ['{"city": ', '"Paris"}']);
    assert.equal(message.stop_reason, "tool_use");
    assert.deepEqual((message.content[0] as { input: unknown }).input, { city: "Paris" });
  });

  test("a tool_result round trip: tool_calls and a tool message with the same id", async () => {
    const message = await client.messages.create({
      model: TRANSLATED,
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [{
            type: "tool_use",
            id: "toolu_9",
            name: "get_weather",
            input: { city: "Paris" },
          }],
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "toolu_9", content: "18C and sunny" }],
        },
      ],
    });
    assert.deepEqual(message.content, [{ type: "text", text: "Hi from the fake" }]);
    const sent = lastRequest(translated, "/v1/chat/completions").body;
    assert.deepEqual((sent.messages as unknown[]).slice(1), [
      {
        role: "assistant",
        content: null,
        tool_calls: [{
          id: "toolu_9",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        }],
      },
      { role: "tool", tool_call_id: "toolu_9", content: "18C and sunny" },
    ]);
  });

  test("reasoning becomes a thinking block", async () => {
    const message = await client.messages.create({
      model: THINKING,
      max_tokens: 64,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: "Hello" }],
    });
    assert.equal(message.content[0].type, "thinking");
    assert.equal((message.content[0] as { thinking: string }).thinking, "Let me think.");
    const sent = lastRequest(translated, "/v1/chat/completions").body;
    assert.deepEqual(sent.chat_template_kwargs, { enable_thinking: true });
  });

  test("an alias reaches its model; the answer names the model asked for", async () => {
    const message = await client.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 16,
      messages: [{ role: "user", content: "Hello" }],
    });
    assert.equal(message.model, "claude-sonnet-4-5");
    assert.equal(lastRequest(translated, "/v1/chat/completions").body.model, TRANSLATED);
  });

  test("a backend that dies mid-stream ends with Anthropic's error event", async () => {
    translated.dieMidStream = true;
    try {
      const stream = client.messages.stream({
        model: TRANSLATED,
        max_tokens: 64,
        messages: [{ role: "user", content: "Hello" }],
      });
      await assert.rejects(stream.finalMessage(), (error: Error) => {
        assert.match(error.message, /lost in the middle of the answer/);
        return true;
      });
    } finally {
      translated.dieMidStream = false;
    }
  });

  test("an untranslatable request is a typed 400 naming the field", async () => {
    await assert.rejects(
      client.messages.create({
        model: TRANSLATED,
        max_tokens: 16,
        messages: [{
          role: "user",
          content: [{
            type: "document",
            source: { type: "base64", media_type: "application/pdf", data: "JVBE" },
          }],
        }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.BadRequestError, String(error));
        assert.match(error.message, /messages\[0\]\.content\[0\]\.source\.type/);
        return true;
      },
    );
  });
});

describe("passthrough (an engine serving the Messages API)", () => {
  test("plain: the body arrives byte for byte, with anthropic-version added", async () => {
    const body =
      `{"model":"${NATIVE}","max_tokens":32,  "messages":[{"role":"user","content":"Hi"}],"x_extra":1}`;
    const response = await fetch(`${olla.url}/olla/anthropic/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-ant-secret" },
      body,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-olla-mode"), "passthrough");
    const answer = await response.json();
    assert.equal(answer.id, "msg_native");
    const sent = lastRequest(native, "/v1/messages");
    assert.deepEqual(sent.body, JSON.parse(body));
    assert.equal(sent.headers.get("anthropic-version"), "2023-06-01");
    assert.equal(sent.headers.get("x-api-key"), null, "the client's key never reaches a backend");
  });

  test("streamed through the SDK, and usage counted from Anthropic's events", async () => {
    const before = olla.service.telemetry.totals.requests;
    const stream = client.messages.stream({
      model: NATIVE,
      max_tokens: 32,
      messages: [{ role: "user", content: "Hi" }],
    });
    const message = await stream.finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: "Hi from the fake" }]);
    // The client's own anthropic-version passes through unchanged.
    assert.match(
      lastRequest(native, "/v1/messages").headers.get("anthropic-version") ?? "",
      /^\d{4}-/,
    );
    await untilObserved(olla, before + 1);
    const line = olla.logs.filter((log) => log.msg === "access" && log.model === NATIVE).at(-1);
    assert.equal(line?.prompt_tokens, 13);
    assert.equal(line?.completion_tokens, 5);
  });

  test("tools pass through natively", async () => {
    const message = await client.messages.create({
      model: NATIVE,
      max_tokens: 32,
      tools: [WEATHER_TOOL],
      messages: [{ role: "user", content: "Weather?" }],
    });
    assert.deepEqual(message.content[0], {
      type: "tool_use",
      id: "toolu_1",
      name: "get_weather",
      input: { city: "Paris" },
    });
  });

  test("a passed-through stream cut off mid-way ends with Anthropic's error event", async () => {
    native.dieMidStream = true;
    try {
      const stream = client.messages.stream({
        model: NATIVE,
        max_tokens: 32,
        messages: [{ role: "user", content: "Hi" }],
      });
      await assert.rejects(stream.finalMessage(), /lost in the middle of the answer/);
    } finally {
      native.dieMidStream = false;
    }
  });

  test("an engine too old for the native path is translated, and remembered", async () => {
    for (let i = 0; i < 2; i++) {
      const { data, response } = await client.messages.create({
        model: OLD,
        max_tokens: 16,
        messages: [{ role: "user", content: "Hello" }],
      }).withResponse();
      assert.deepEqual(data.content, [{ type: "text", text: "Hi from the fake" }]);
      assert.equal(response.headers.get("x-olla-mode"), "translation");
    }
    assert.equal(old.count("/v1/messages"), 1, "the native path is tried once");
    assert.equal(old.count("/v1/chat/completions"), 2);
  });
});

describe("count_tokens, models and errors", () => {
  test("count_tokens: native, the engine's tokenizer, or an estimate marked as such", async () => {
    const count = async (model: string) => {
      const { data, response } = await client.messages.countTokens({
        model,
        messages: [{ role: "user", content: "How many tokens is this?" }],
      }).withResponse();
      return [data.input_tokens, response.headers.get("x-olla-token-count")];
    };
    assert.deepEqual(await count(NATIVE), [11, "native"]);
    assert.deepEqual(await count(VLLM), [42, "tokenizer"]);
    assert.deepEqual(await count(TRANSLATED), [6, "estimate"]);
    assert.deepEqual(lastRequest(vllm, "/tokenize").body.messages, [
      { role: "user", content: "How many tokens is this?" },
    ]);
  });

  test("an unknown model is a typed 404", async () => {
    await assert.rejects(
      client.messages.create({
        model: "no-such-model",
        max_tokens: 16,
        messages: [{ role: "user", content: "Hello" }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.NotFoundError, String(error));
        const body = error.error as { error: { type: string; message: string } };
        assert.equal(body.error.type, "not_found_error");
        assert.match(body.error.message, /GET \/olla\/anthropic\/v1\/models lists the models/);
        return true;
      },
    );
  });

  test("a body over max_message_size is a 413 in Anthropic's envelope, reaching no backend", async () => {
    const before = translated.forwarded + native.forwarded;
    const response = await fetch(`${olla.url}/olla/anthropic/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: TRANSLATED,
        max_tokens: 16,
        messages: [{ role: "user", content: "x".repeat(5_000) }],
      }),
    });
    assert.equal(response.status, 413);
    const body = await response.json();
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "request_too_large");
    assert.equal(translated.forwarded + native.forwarded, before);
  });

  test("invalid requests are 400s naming the field, before routing", async () => {
    await assert.rejects(
      client.messages.create({
        model: TRANSLATED,
        max_tokens: 0,
        messages: [{ role: "user", content: "x" }],
      }),
      (error: unknown) =>
        error instanceof Anthropic.BadRequestError && /max_tokens/.test(error.message),
    );
  });

  test("GET /v1/models lists every servable model in Anthropic's shape", async () => {
    const page = await client.models.list();
    const ids = page.data.map((model) => model.id).sort();
    assert.deepEqual(ids, [NATIVE, OLD, TRANSLATED, THINKING, VLLM].sort());
    assert.equal(page.data[0].type, "model");
    assert.match(page.data[0].created_at, /^\d{4}-\d\d-\d\dT/);
  });

  test("/internal/stats/translators counts requests by mode", async () => {
    const body = await (await fetch(`${olla.url}/internal/stats/translators`)).json();
    const anthropic = body.translators[0];
    assert.equal(anthropic.translator_name, "anthropic");
    assert.ok(anthropic.passthrough_requests >= 3);
    assert.ok(anthropic.translation_requests >= 8);
    assert.ok(anthropic.streaming_requests >= 4);
    assert.ok(anthropic.fallback_no_compatible_endpoints >= 1);
    assert.ok(anthropic.fallback_cannot_passthrough >= 1);
    assert.equal(body.summary.total_requests, anthropic.total_requests);
  });
});

describe("translators.anthropic.enabled: false", () => {
  test("the routes are gone", async () => {
    const off = await startOlla(
      "translators:\n  anthropic:\n    enabled: false\ndiscovery:\n  static:\n    endpoints: []\n",
    );
    try {
      const response = await fetch(`${off.url}/olla/anthropic/v1/messages`, {
        method: "POST",
        body: "{}",
      });
      assert.equal(response.status, 404);
      await response.body?.cancel();
    } finally {
      await off.close();
    }
  });
});
