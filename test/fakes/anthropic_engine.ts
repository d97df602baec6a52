/**
 * A fake engine for the Anthropic routes: OpenAI chat completions with tool calls,
 * reasoning, streamed usage (when asked for) and an optional mid-stream death; and, when
 * `native` is set, LMDeploy 0.13+'s own Messages API (`/v1/messages`, which wants an
 * `anthropic-version` header, and `count_tokens`). Without `native`, `/v1/messages`
 * answers FastAPI's 404, as an older LMDeploy does. vLLM's `/tokenize` and LMDeploy's
 * `/v1/encode` count tokens.
 */
import { serve } from "../_serve.ts";

export interface AnthropicEngineOptions {
  models: string[];
  /** Serve the Messages API natively. */
  native?: boolean;
}

export interface AnthropicEngine {
  readonly url: string;
  readonly requests: { path: string; headers: Headers; body: Record<string, unknown> }[];
  /** Streams die after their second chunk while set. */
  dieMidStream: boolean;
  count(path: string): number;
  /** Requests olla-ts forwarded for a client (with its `x-request-id`), not its probes. */
  readonly forwarded: number;
  close(): Promise<void>;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const WORDS = ["Hi", " from", " the fake"];
const TOOL_ARGS = ['{"city": ', '"Paris"}'];

type Json = Record<string, unknown>;

function lastIsToolResult(messages: Json[]): boolean {
  const last = messages.at(-1);
  if (!last) return false;
  if (last.role === "tool") return true;
  return Array.isArray(last.content) &&
    (last.content as Json[]).some((block) => block.type === "tool_result");
}

function sse(frames: string[], die: boolean): Response {
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (die && i === 2) {
        // Let the first frames leave first (Bun's server holds the head of a fresh stream).
        await new Promise((resolve) => setTimeout(resolve, 50));
        controller.error(new Error("engine died"));
        return;
      }
      if (i >= frames.length) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(frames[i++]));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

function openAiChat(payload: Json, die: boolean): Response {
  const model = payload.model as string;
  const messages = (payload.messages ?? []) as Json[];
  const useTool = Array.isArray(payload.tools) && !lastIsToolResult(messages);
  const thinks = model.includes("think");
  const usage = { prompt_tokens: 21, completion_tokens: 7, total_tokens: 28 };
  const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model };
  if (payload.stream !== true) {
    return json({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1,
      model,
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: useTool ? null : WORDS.join(""),
          ...(thinks ? { reasoning_content: "Let me think." } : {}),
          ...(useTool
            ? {
              tool_calls: [{
                id: "call_1",
                type: "function",
                function: { name: "get_weather", arguments: TOOL_ARGS.join("") },
              }],
            }
            : {}),
        },
        finish_reason: useTool ? "tool_calls" : "stop",
      }],
      usage,
    });
  }
  const chunk = (delta: Json, finish: string | null = null) =>
    `data: ${
      JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] })
    }\n\n`;
  const frames = [chunk({ role: "assistant", content: "" })];
  if (thinks) frames.push(chunk({ reasoning_content: "Let me think." }));
  if (useTool) {
    frames.push(chunk({
      tool_calls: [{
        index: 0,
        id: "call_1",
        type: "function",
        function: { name: "get_weather", arguments: "" },
      }],
    }));
    for (const part of TOOL_ARGS) {
      frames.push(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }));
    }
    frames.push(chunk({}, "tool_calls"));
  } else {
    for (const word of WORDS) frames.push(chunk({ content: word }));
    frames.push(chunk({}, "stop"));
  }
  const options = payload.stream_options as Json | undefined;
  if (options?.include_usage) {
    frames.push(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
  }
  frames.push("data: [DONE]\n\n");
  return sse(frames, die);
}

function nativeMessage(payload: Json, die: boolean): Response {
  const model = payload.model as string;
  const messages = (payload.messages ?? []) as Json[];
  const useTool = Array.isArray(payload.tools) && !lastIsToolResult(messages);
  const content = useTool
    ? [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }]
    : [{ type: "text", text: WORDS.join("") }];
  const stopReason = useTool ? "tool_use" : "end_turn";
  if (payload.stream !== true) {
    return json({
      id: "msg_native",
      type: "message",
      role: "assistant",
      model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: 13, output_tokens: 5 },
    });
  }
  const event = (type: string, data: Json) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const frames = [
    event("message_start", {
      message: {
        id: "msg_native",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 13, output_tokens: 0 },
      },
    }),
  ];
  if (useTool) {
    frames.push(event("content_block_start", {
      index: 0,
      content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} },
    }));
    for (const part of TOOL_ARGS) {
      frames.push(event("content_block_delta", {
        index: 0,
        delta: { type: "input_json_delta", partial_json: part },
      }));
    }
  } else {
    frames.push(
      event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    );
    for (const word of WORDS) {
      frames.push(
        event("content_block_delta", { index: 0, delta: { type: "text_delta", text: word } }),
      );
    }
  }
  frames.push(event("content_block_stop", { index: 0 }));
  frames.push(event("message_delta", {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: 5 },
  }));
  frames.push(event("message_stop", {}));
  return sse(frames, die);
}

/** Starts the fake on a free port. */
export async function startAnthropicEngine(
  options: AnthropicEngineOptions,
): Promise<AnthropicEngine> {
  const requests: AnthropicEngine["requests"] = [];
  const state = { dieMidStream: false };
  const server = await serve(async (request) => {
    const path = new URL(request.url).pathname;
    const text = await request.text();
    const body = text ? JSON.parse(text) : {};
    requests.push({ path, headers: request.headers, body });
    if (path === "/health") return new Response("");
    if (path === "/v1/models") {
      return json({
        object: "list",
        data: options.models.map((id) => ({ id, object: "model", created: 1 })),
      });
    }
    if (typeof body.model === "string" && !options.models.includes(body.model)) {
      return path.startsWith("/v1/messages")
        ? json({
          type: "error",
          error: { type: "not_found_error", message: `model ${body.model} not found` },
        }, 404)
        : json({
          error: { message: `The model '${body.model}' does not exist.`, type: "NotFoundError" },
        }, 404);
    }
    if (path === "/v1/chat/completions") return openAiChat(body, state.dieMidStream);
    if (path === "/tokenize") return json({ count: 42, max_model_len: 4096, tokens: [] });
    if (path === "/v1/encode") return json({ input_ids: [], length: 17 });
    if (path.startsWith("/v1/messages") && !options.native) {
      return json({ detail: "Not Found" }, 404);
    }
    if (path.startsWith("/v1/messages") && !request.headers.get("anthropic-version")) {
      return json({
        type: "error",
        error: {
          type: "invalid_request_error",
          message: "Missing required header: anthropic-version",
        },
      }, 400);
    }
    if (path === "/v1/messages") return nativeMessage(body, state.dieMidStream);
    if (path === "/v1/messages/count_tokens") return json({ input_tokens: 11 });
    return json({ detail: "Not Found" }, 404);
  });
  return {
    url: server.url,
    requests,
    get dieMidStream() {
      return state.dieMidStream;
    },
    set dieMidStream(value: boolean) {
      state.dieMidStream = value;
    },
    count: (path) => requests.filter((request) => request.path === path).length,
    get forwarded() {
      return requests.filter((request) => request.headers.has("x-request-id")).length;
    },
    close: () => server.close(),
  };
}
