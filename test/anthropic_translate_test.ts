/**
 * The Anthropic translator without sockets: requests both ways as golden pairs (every
 * block type, tool round trips, refusals naming the field), answers (blocks, stop
 * reasons, usage), and the stream translator fed chunk by chunk, each event checked to
 * come out before the next chunk goes in.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_EVENT_CHARS } from "../lib/proxy/usage.ts";
import { anthropicErrorBody, anthropicErrorType } from "../lib/translate/anthropic_errors.ts";
import { toOpenAiChat } from "../lib/translate/anthropic_request.ts";
import { toAnthropicMessage } from "../lib/translate/anthropic_response.ts";
import { AnthropicStreamTranslator } from "../lib/translate/anthropic_stream.ts";
import { MessagesRequestError, parseMessagesRequest } from "../lib/translate/anthropic_validate.ts";
import { estimateInputTokens } from "../lib/translate/token_estimate.ts";

type Json = Record<string, unknown>;

function translate(body: Json, model = "m"): Json {
  return toOpenAiChat(parseMessagesRequest({ model: "m", max_tokens: 16, ...body }), model);
}

function refusedField(body: Json): string {
  try {
    translate(body);
  } catch (error) {
    assert.ok(error instanceof MessagesRequestError, String(error));
    return error.field;
  }
  assert.fail("expected a refusal");
}

describe("request: Anthropic -> OpenAI chat", () => {
  test("system as a string and as text blocks; text messages keep their roles", () => {
    assert.deepEqual(
      translate({
        system: [{ type: "text", text: "A" }, {
          type: "text",
          text: "B",
          cache_control: { type: "ephemeral" },
        }],
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
          { role: "user", content: [{ type: "text", text: "one" }, { type: "text", text: "two" }] },
        ],
      }).messages,
      [
        { role: "system", content: "A\n\nB" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "one\ntwo" },
      ],
    );
    assert.deepEqual(
      translate({ system: "S", messages: [{ role: "user", content: "x" }] }).messages,
      [{ role: "system", content: "S" }, { role: "user", content: "x" }],
    );
  });

  test("images (base64 and URL) and text documents become content parts", () => {
    const [message] = translate({
      messages: [{
        role: "user",
        content: [
          { type: "text", text: "Look" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBOR" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
          {
            type: "document",
            title: "Notes",
            source: { type: "text", media_type: "text/plain", data: "abc" },
          },
        ],
      }],
    }).messages as Json[];
    assert.deepEqual(message, {
      role: "user",
      content: [
        { type: "text", text: "Look" },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBOR" } },
        { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
        { type: "text", text: "Notes\n\nabc" },
      ],
    });
  });

  test("tool_use and tool_result round trip with matching ids, results first", () => {
    const chat = translate({
      tools: [{ name: "get_weather", description: "d", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hmm", signature: "sig" },
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Rome" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "18C" },
            {
              type: "tool_result",
              tool_use_id: "toolu_2",
              is_error: true,
              content: [{ type: "text", text: "timeout" }],
            },
            { type: "text", text: "and tomorrow?" },
          ],
        },
      ],
    });
    assert.deepEqual((chat.messages as Json[]).slice(1), [
      {
        role: "assistant",
        content: "Checking.",
        reasoning_content: "hmm",
        tool_calls: [
          {
            id: "toolu_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris"}' },
          },
          {
            id: "toolu_2",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Rome"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "toolu_1", content: "18C" },
      { role: "tool", tool_call_id: "toolu_2", content: "Error: timeout" },
      { role: "user", content: "and tomorrow?" },
    ]);
    assert.deepEqual(chat.tools, [{
      type: "function",
      function: { name: "get_weather", description: "d", parameters: { type: "object" } },
    }]);
  });

  test("an image inside a tool_result follows the tool messages as user content", () => {
    const messages = translate({
      messages: [{
        role: "user",
        content: [{
          type: "tool_result",
          tool_use_id: "t",
          content: [
            { type: "text", text: "screenshot" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AA" } },
          ],
        }],
      }],
    }).messages;
    assert.deepEqual(messages, [
      { role: "tool", tool_call_id: "t", content: "screenshot" },
      {
        role: "user",
        content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA" } }],
      },
    ]);
  });

  test("tool_choice: auto, any, tool, none and disable_parallel_tool_use", () => {
    const tools = [{ name: "f", input_schema: { type: "object" } }];
    const choice = (tool_choice: unknown) => {
      const chat = translate({ tools, tool_choice, messages: [{ role: "user", content: "x" }] });
      return [chat.tool_choice, chat.parallel_tool_calls];
    };
    assert.deepEqual(choice({ type: "auto" }), ["auto", undefined]);
    assert.deepEqual(choice({ type: "any", disable_parallel_tool_use: true }), ["required", false]);
    assert.deepEqual(choice({ type: "tool", name: "f" }), [{
      type: "function",
      function: { name: "f" },
    }, undefined]);
    assert.deepEqual(choice({ type: "none" }), ["none", undefined]);
    assert.deepEqual(choice(undefined), [undefined, undefined]);
  });

  test("sampling, stop sequences, metadata, thinking and streaming options", () => {
    const chat = translate({
      stream: true,
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ["END"],
      metadata: { user_id: "u-1" },
      thinking: { type: "enabled", budget_tokens: 2048 },
      messages: [{ role: "user", content: "x" }],
    }, "real-model");
    assert.deepEqual(chat, {
      model: "real-model",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      stop: ["END"],
      user: "u-1",
      chat_template_kwargs: { enable_thinking: true },
    });
  });

  test("what cannot be translated is refused, naming the field", () => {
    const user = (content: unknown) => ({ messages: [{ role: "user", content }] });
    assert.equal(
      refusedField(
        user([{
          type: "document",
          source: { type: "base64", media_type: "application/pdf", data: "x" },
        }]),
      ),
      "messages[0].content[0].source.type",
    );
    assert.equal(
      refusedField({ ...user("x"), tools: [{ type: "web_search_20250305", name: "web_search" }] }),
      "tools[0].type",
    );
    assert.equal(refusedField({ ...user("x"), mcp_servers: [{}] }), "mcp_servers");
    assert.equal(
      refusedField({ ...user("x"), tools: [{ name: "f" }], tool_choice: { type: "tool" } }),
      "tool_choice.name",
    );
    assert.equal(
      refusedField(user([{ type: "server_tool_use", id: "x" }])),
      "messages[0].content[0].type",
    );
  });

  test("the checks every request passes", () => {
    const field = (body: unknown) => {
      try {
        parseMessagesRequest(body);
      } catch (error) {
        return (error as MessagesRequestError).field;
      }
      return undefined;
    };
    const ok = { model: "m", max_tokens: 1, messages: [{ role: "user", content: "x" }] };
    assert.equal(field(ok), undefined);
    assert.equal(field({ ...ok, model: "" }), "model");
    assert.equal(field({ ...ok, messages: [] }), "messages");
    assert.equal(field({ ...ok, max_tokens: 0 }), "max_tokens");
    assert.equal(field({ ...ok, temperature: 3 }), "temperature");
    assert.equal(field({ ...ok, top_p: 2 }), "top_p");
    assert.equal(
      field({ ...ok, messages: [{ role: "system", content: "x" }] }),
      "messages[0].role",
    );
  });
});

describe("answer: OpenAI chat completion -> Anthropic message", () => {
  const context = { model: "asked", stopSequences: ["END"] };
  const completion = (message: Json, finish: string, extra: Json = {}) => ({
    id: "c",
    choices: [{ index: 0, message, finish_reason: finish, ...extra }],
    usage: { prompt_tokens: 10, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 6 } },
  });

  test("thinking, text and tool_use blocks; usage with cache reads; an msg_ id", () => {
    const message = toAnthropicMessage(
      completion({
        role: "assistant",
        content: "Sure.",
        reasoning_content: "why",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } },
          { id: "call_2", type: "function", function: { name: "g", arguments: "not json" } },
        ],
      }, "tool_calls"),
      context,
    );
    assert.match(message.id as string, /^msg_01[1-9A-HJ-NP-Za-km-z]{24}$/);
    assert.deepEqual({ ...message, id: undefined }, {
      id: undefined,
      type: "message",
      role: "assistant",
      model: "asked",
      content: [
        { type: "thinking", thinking: "why", signature: "" },
        { type: "text", text: "Sure." },
        { type: "tool_use", id: "call_1", name: "f", input: { a: 1 } },
        { type: "tool_use", id: "call_2", name: "g", input: { raw_arguments: "not json" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: {
        input_tokens: 10,
        output_tokens: 4,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 6,
      },
    });
  });

  test("stop reasons: stop, length, a matched stop sequence, content_filter, anything else", () => {
    const reason = (finish: string, extra: Json = {}) => {
      const message = toAnthropicMessage(
        completion({ role: "assistant", content: "x" }, finish, extra),
        context,
      );
      return [message.stop_reason, message.stop_sequence];
    };
    assert.deepEqual(reason("stop"), ["end_turn", null]);
    assert.deepEqual(reason("length"), ["max_tokens", null]);
    assert.deepEqual(reason("stop", { stop_reason: "END" }), ["stop_sequence", "END"]);
    assert.deepEqual(reason("content_filter"), ["refusal", null]);
    assert.deepEqual(reason("abort"), ["end_turn", null]);
  });

  test("an empty answer still has one text block", () => {
    assert.deepEqual(
      toAnthropicMessage(completion({ role: "assistant", content: "" }, "stop"), context).content,
      [{ type: "text", text: "" }],
    );
  });
});

/** Parses Anthropic SSE bytes into [event, data] pairs. */
function events(bytes: Uint8Array | undefined): [string, Json][] {
  if (!bytes) return [];
  return new TextDecoder().decode(bytes).split("\n\n").filter(Boolean).map((frame) => {
    const [eventLine, dataLine] = frame.split("\n");
    assert.match(eventLine, /^event: /);
    assert.match(dataLine, /^data: /);
    const data = JSON.parse(dataLine.slice(6));
    assert.equal(data.type, eventLine.slice(7), "the event line names the data's type");
    return [eventLine.slice(7), data];
  });
}

const encode = (text: string) => new TextEncoder().encode(text);
const chunk = (delta: Json, extra: Json = {}) =>
  encode(
    `data: ${
      JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null, ...extra }] })
    }\n\n`,
  );

describe("stream: OpenAI chunks -> Anthropic events, one chunk at a time", () => {
  const context = { model: "asked", stopSequences: [], inputTokensEstimate: 9 };

  test("each chunk's events come out before the next chunk goes in", () => {
    const translator = new AnthropicStreamTranslator(context);
    const first = events(translator.push(chunk({ role: "assistant", content: "" })));
    assert.deepEqual(first.map(([type]) => type), ["message_start"]);
    assert.equal((first[0][1].message as Json).model, "asked");
    assert.deepEqual(((first[0][1].message as Json).usage as Json).input_tokens, 9);

    assert.deepEqual(
      events(translator.push(chunk({ content: "Hel" }))).map((
        [type, data],
      ) => [type, data.delta ?? data.content_block]),
      [
        ["content_block_start", { type: "text", text: "" }],
        ["ping", undefined],
        ["content_block_delta", { type: "text_delta", text: "Hel" }],
      ],
    );
    assert.deepEqual(
      events(translator.push(chunk({ content: "lo" }))).map(([, data]) => data.delta),
      [
        { type: "text_delta", text: "lo" },
      ],
    );
    assert.deepEqual(events(translator.push(chunk({}, { finish_reason: "stop" }))), []);
    const usage = encode(
      `data: ${
        JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 2 } })
      }\n\n`,
    );
    assert.deepEqual(events(translator.push(usage)), []);
    assert.deepEqual(events(translator.push(encode("data: [DONE]\n\n"))), []);
    const end = events(translator.end());
    assert.deepEqual(end.map(([type]) => type), [
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.deepEqual(end[1][1].delta, { stop_reason: "end_turn", stop_sequence: null });
    assert.equal((end[1][1].usage as Json).input_tokens, 12);
    assert.equal((end[1][1].usage as Json).output_tokens, 2);
  });

  test("an event split across chunks comes out when its end arrives", () => {
    const translator = new AnthropicStreamTranslator(context);
    const bytes = chunk({ content: "whole" });
    assert.equal(translator.push(bytes.subarray(0, 10)), undefined);
    const out = events(translator.push(bytes.subarray(10)));
    assert.deepEqual(out.at(-1)?.[1].delta, { type: "text_delta", text: "whole" });
  });

  test("thinking, then text, then two tool calls: each its own block and index", () => {
    const translator = new AnthropicStreamTranslator(context);
    const all: [string, Json][] = [];
    const push = (bytes: Uint8Array) => all.push(...events(translator.push(bytes)));
    push(chunk({ reasoning_content: "think" }));
    push(chunk({ content: "answer" }));
    push(
      chunk({ tool_calls: [{ index: 0, id: "call_a", function: { name: "f", arguments: "" } }] }),
    );
    push(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"x":' } }] }));
    push(chunk({ tool_calls: [{ index: 0, function: { arguments: "1}" } }] }));
    push(chunk({ tool_calls: [{ index: 1, function: { name: "g", arguments: "{}" } }] }));
    push(chunk({}, { finish_reason: "tool_calls" }));
    all.push(...events(translator.end()));
    assert.deepEqual(
      all.filter(([type]) => type !== "ping").map((
        [type, data],
      ) => [type, data.index, data.content_block ?? data.delta]),
      [
        ["message_start", undefined, undefined],
        ["content_block_start", 0, { type: "thinking", thinking: "" }],
        ["content_block_delta", 0, { type: "thinking_delta", thinking: "think" }],
        ["content_block_stop", 0, undefined],
        ["content_block_start", 1, { type: "text", text: "" }],
        ["content_block_delta", 1, { type: "text_delta", text: "answer" }],
        ["content_block_stop", 1, undefined],
        ["content_block_start", 2, { type: "tool_use", id: "call_a", name: "f", input: {} }],
        ["content_block_delta", 2, { type: "input_json_delta", partial_json: '{"x":' }],
        ["content_block_delta", 2, { type: "input_json_delta", partial_json: "1}" }],
        ["content_block_stop", 2, undefined],
        [
          "content_block_start",
          3,
          {
            type: "tool_use",
            id: (all.find(([, d]) => d.index === 3)?.[1].content_block as Json).id,
            name: "g",
            input: {},
          },
        ],
        ["content_block_delta", 3, { type: "input_json_delta", partial_json: "{}" }],
        ["content_block_stop", 3, undefined],
        ["message_delta", undefined, { stop_reason: "tool_use", stop_sequence: null }],
        ["message_stop", undefined, undefined],
      ],
    );
  });

  test("arguments interleaved between parallel tool calls end with an error event", () => {
    const translator = new AnthropicStreamTranslator(context);
    translator.push(
      chunk({ tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{" } }] }),
    );
    translator.push(
      chunk({ tool_calls: [{ index: 1, id: "b", function: { name: "g", arguments: "{" } }] }),
    );
    const out = events(
      translator.push(chunk({ tool_calls: [{ index: 0, function: { arguments: "}" } }] })),
    );
    assert.deepEqual(out.map(([type]) => type), ["content_block_stop", "error"]);
    assert.match((out[1][1].error as Json).message as string, /interleaved/);
    assert.deepEqual(events(translator.end()), [], "nothing after the error");
  });

  test("an engine's error event, and a cut-off stream, end with Anthropic's error event", () => {
    const engineError = new AnthropicStreamTranslator(context);
    engineError.push(chunk({ content: "a" }));
    const out = events(
      engineError.push(encode(`data: {"error":{"message":"out of memory","code":500}}\n\n`)),
    );
    assert.deepEqual(out.map(([type]) => type), ["content_block_stop", "error"]);
    assert.deepEqual(out[1][1].error, { type: "api_error", message: "out of memory" });

    const cut = new AnthropicStreamTranslator(context);
    cut.push(chunk({ content: "a" }));
    assert.deepEqual(events(cut.fail("the backend went away")).map(([type]) => type), [
      "content_block_stop",
      "error",
    ]);
  });

  test("an event that grows past MAX_EVENT_CHARS unended is an error event, not held", () => {
    const translator = new AnthropicStreamTranslator(context);
    translator.push(chunk({ content: "a" }));
    const piece = encode(`data: {"choices":[{"index":0,"delta":{"content":"${"x".repeat(65_536)}`);
    const tail = encode("x".repeat(65_536));
    let out: Uint8Array | undefined = translator.push(piece);
    for (
      let sent = piece.length;
      out === undefined && sent <= MAX_EVENT_CHARS;
      sent += tail.length
    ) {
      out = translator.push(tail);
    }
    const failed = events(out);
    assert.deepEqual(failed.map(([type]) => type), ["content_block_stop", "error"]);
    assert.match(String((failed[1][1].error as Json).message), /longer than 1048576 characters/);
    assert.equal(translator.push(tail), undefined, "nothing after the error");
  });

  test("without the engine's usage, output tokens are estimated from the text", () => {
    const translator = new AnthropicStreamTranslator(context);
    translator.push(chunk({ content: "12345678" }));
    const end = events(translator.end());
    assert.equal(((end.at(-2)?.[1].usage) as Json).output_tokens, 2);
    assert.equal(((end.at(-2)?.[1].usage) as Json).input_tokens, 9);
  });
});

describe("errors and the token estimate", () => {
  test("status -> Anthropic error type", () => {
    const types = [400, 401, 403, 404, 413, 429, 500, 503, 504, 529].map(anthropicErrorType);
    assert.deepEqual(types, [
      "invalid_request_error",
      "authentication_error",
      "permission_error",
      "not_found_error",
      "request_too_large",
      "rate_limit_error",
      "api_error",
      "overloaded_error",
      "timeout_error",
      "overloaded_error",
    ]);
    assert.deepEqual(JSON.parse(anthropicErrorBody(404, "no", "req-1")), {
      type: "error",
      error: { type: "not_found_error", message: "no" },
      request_id: "req-1",
    });
  });

  test("a quarter of the bytes the model reads, at least 1", () => {
    assert.equal(estimateInputTokens({ messages: [{ role: "user", content: "x" }] }), 1);
    assert.equal(
      estimateInputTokens({
        system: "12345678",
        messages: [{ role: "user", content: [{ type: "text", text: "12345678" }] }],
      }),
      4,
    );
  });
});
