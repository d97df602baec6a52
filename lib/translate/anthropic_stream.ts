/**
 * An OpenAI chat completions stream turned into Anthropic's Messages events, chunk by
 * chunk: every upstream chunk is translated the moment it arrives and whatever events it
 * yields are handed back at once, so nothing waits for the rest of the answer.
 *
 * Events come in the order Anthropic's clients rely on: `message_start` (at the first
 * upstream chunk), then per block `content_block_start`, its deltas and
 * `content_block_stop` (a `ping` follows the first block's start, as Anthropic sends it);
 * blocks are `thinking` (from `reasoning_content`), `text`, and one `tool_use` per tool
 * call, each with its own index, its arguments as `input_json_delta`s as they arrive; at
 * the end `message_delta` with `stop_reason` and the engine's usage (the request asked
 * for `stream_options.include_usage`), then `message_stop`.
 *
 * An engine's error event, a backend that dies mid-stream, or tool-call arguments
 * interleaved between parallel calls (Anthropic's blocks cannot interleave) end the
 * stream with Anthropic's `error` event instead of a silent cut.
 *
 * @module
 */
import {
  type AnswerContext,
  anthropicId,
  anthropicUsage,
  stopReason,
} from "./anthropic_response.ts";
import { MAX_EVENT_CHARS, type UsageSummary } from "../proxy/usage.ts";

type Json = Record<string, unknown>;

interface ToolCall {
  id: string | undefined;
  name: string | undefined;
  /** Arguments received before the block could start (no name yet). */
  pending: string;
  block: number | undefined;
}

/** What the translator needs besides the answer context. */
export interface StreamContext extends AnswerContext {
  /** Input tokens for `message_start`, before the engine's count arrives at the end. */
  inputTokensEstimate: number;
}

/** Translates one stream; feed it upstream bytes in order. */
export class AnthropicStreamTranslator {
  readonly #context: StreamContext;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  #buffer = "";
  #out = "";
  #started = false;
  #ended = false;
  #pinged = false;
  #nextBlock = 0;
  #open: { kind: "text" | "thinking" | "tool"; index: number } | undefined;
  readonly #tools = new Map<number, ToolCall>();
  #finish: unknown;
  #matchedStop: unknown;
  #usage: Json | undefined;
  #generatedChars = 0;
  #now = 0;
  #firstTokenAt: number | undefined;
  #contentEvents = 0;
  #errorEvent = false;

  constructor(context: StreamContext) {
    this.#context = context;
  }

  /** Translates one upstream chunk; the events it completes, or `undefined` for none yet. */
  push(chunk: Uint8Array, now = 0): Uint8Array | undefined {
    if (this.#ended) return undefined;
    this.#now = now;
    const text = this.#decoder.decode(chunk, { stream: true });
    // The usual chunk is exactly one event: handled without touching the buffer.
    if (
      this.#buffer === "" && text.endsWith("\n\n") && text.indexOf("\n\n") === text.length - 2 &&
      !text.includes("\r")
    ) {
      this.#onEvent(text.slice(0, -2));
      return this.#flush();
    }
    this.#buffer += text;
    if (this.#buffer.includes("\r")) this.#buffer = this.#buffer.replaceAll("\r\n", "\n");
    let boundary = this.#buffer.indexOf("\n\n");
    while (boundary !== -1 && !this.#ended) {
      this.#onEvent(this.#buffer.slice(0, boundary));
      this.#buffer = this.#buffer.slice(boundary + 2);
      boundary = this.#buffer.indexOf("\n\n");
    }
    if (this.#buffer.length > MAX_EVENT_CHARS && !this.#ended) {
      // An event is translated whole, so one that never ends would be held whole: the
      // client gets an error event instead.
      this.#buffer = "";
      this.#error(
        `The backend sent an event longer than ${MAX_EVENT_CHARS} characters, which olla-ts does not translate`,
      );
    }
    return this.#flush();
  }

  /** The closing events once the upstream stream has ended (nothing if already ended). */
  end(): Uint8Array {
    if (!this.#ended) {
      if (this.#buffer.trim() !== "") this.#onEvent(this.#buffer);
      this.#buffer = "";
    }
    if (!this.#ended) this.#finishMessage();
    return this.#flush() ?? new Uint8Array(0);
  }

  /** The engine's usage and finish reason, or estimates from the events, once ended. */
  usage(): UsageSummary {
    const prompt = this.#usage?.prompt_tokens;
    const completion = this.#usage?.completion_tokens;
    return {
      promptTokens: typeof prompt === "number" ? prompt : undefined,
      completionTokens: typeof completion === "number"
        ? completion
        : this.#contentEvents > 0
        ? this.#contentEvents
        : undefined,
      estimated: typeof completion !== "number" && this.#contentEvents > 0,
      finishReason: typeof this.#finish === "string" ? this.#finish : undefined,
      firstTokenAt: this.#firstTokenAt,
      contentEvents: this.#contentEvents,
      errorEvent: this.#errorEvent,
    };
  }

  /** An `error` event for a stream cut short (after closing the open block). */
  fail(message: string, type = "api_error"): Uint8Array {
    if (!this.#ended) this.#error(message, type);
    return this.#flush() ?? new Uint8Array(0);
  }

  #flush(): Uint8Array | undefined {
    if (this.#out === "") return undefined;
    const bytes = this.#encoder.encode(this.#out);
    this.#out = "";
    return bytes;
  }

  #emit(type: string, data: Json): void {
    this.#out += `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  #onEvent(event: string): void {
    let data = "";
    if (event.startsWith("data: ") && !event.includes("\n")) data = event.slice(6);
    else {
      for (const line of event.split("\n")) {
        if (line.startsWith("data:")) data += line.slice(line[5] === " " ? 6 : 5);
      }
    }
    if (data === "" || data === "[DONE]") return;
    let chunk: Json;
    try {
      chunk = JSON.parse(data);
    } catch {
      return;
    }
    if (chunk.error !== undefined || chunk.object === "error") {
      const error = (chunk.error ?? chunk) as Json;
      this.#error(typeof error.message === "string" ? error.message : JSON.stringify(error));
      return;
    }
    this.#start();
    if (chunk.usage && typeof chunk.usage === "object") this.#usage = chunk.usage as Json;
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] as Json | undefined : undefined;
    if (!choice) return;
    const delta = (choice.delta ?? {}) as Json;
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === "string" && reasoning !== "") this.#textDelta("thinking", reasoning);
    if (typeof delta.content === "string" && delta.content !== "") {
      this.#textDelta("text", delta.content);
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls as Json[]) {
        this.#toolDelta(call);
        if (this.#ended) return;
      }
    }
    if (choice.finish_reason) this.#finish = choice.finish_reason;
    if (choice.stop_reason !== undefined && choice.stop_reason !== null) {
      this.#matchedStop = choice.stop_reason;
    }
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#emit("message_start", {
      type: "message_start",
      message: {
        id: anthropicId("msg"),
        type: "message",
        role: "assistant",
        model: this.#context.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: this.#context.inputTokensEstimate,
          output_tokens: 0,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
        },
      },
    });
  }

  #openBlock(kind: "text" | "thinking" | "tool", block: Json): number {
    this.#closeBlock();
    const index = this.#nextBlock++;
    this.#open = { kind, index };
    this.#emit("content_block_start", { type: "content_block_start", index, content_block: block });
    if (!this.#pinged) {
      this.#pinged = true;
      this.#emit("ping", { type: "ping" });
    }
    return index;
  }

  #closeBlock(): void {
    if (!this.#open) return;
    this.#emit("content_block_stop", { type: "content_block_stop", index: this.#open.index });
    this.#open = undefined;
  }

  #textDelta(kind: "text" | "thinking", text: string): void {
    if (this.#open?.kind !== kind) {
      this.#openBlock(
        kind,
        kind === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "" },
      );
    }
    this.#generatedChars += text.length;
    this.#contentEvents++;
    this.#firstTokenAt ??= this.#now;
    const index = (this.#open as { index: number }).index;
    this.#emit("content_block_delta", {
      type: "content_block_delta",
      index,
      delta: kind === "text"
        ? { type: "text_delta", text }
        : { type: "thinking_delta", thinking: text },
    });
  }

  #toolDelta(call: Json): void {
    const key = typeof call.index === "number" ? call.index : 0;
    let tool = this.#tools.get(key);
    if (!tool) {
      this.#tools.set(
        key,
        tool = { id: undefined, name: undefined, pending: "", block: undefined },
      );
    }
    const fn = (call.function ?? {}) as Json;
    if (typeof call.id === "string" && call.id !== "") tool.id ??= call.id;
    if (typeof fn.name === "string" && fn.name !== "") tool.name ??= fn.name;
    const args = typeof fn.arguments === "string" ? fn.arguments : "";
    this.#generatedChars += args.length;
    this.#contentEvents++;
    this.#firstTokenAt ??= this.#now;
    if (tool.block === undefined) {
      tool.pending += args;
      if (tool.name === undefined) return;
      tool.block = this.#openBlock("tool", {
        type: "tool_use",
        id: tool.id ?? anthropicId("toolu"),
        name: tool.name,
        input: {},
      });
      if (tool.pending !== "") this.#argsDelta(tool.block, tool.pending);
      tool.pending = "";
      return;
    }
    if (args === "") return;
    if (this.#open?.kind !== "tool" || this.#open.index !== tool.block) {
      this.#error(
        "the backend interleaved the arguments of parallel tool calls, which Anthropic's stream cannot express; retry with tool_choice.disable_parallel_tool_use",
      );
      return;
    }
    this.#argsDelta(tool.block, args);
  }

  #argsDelta(index: number, partial: string): void {
    this.#emit("content_block_delta", {
      type: "content_block_delta",
      index,
      delta: { type: "input_json_delta", partial_json: partial },
    });
  }

  #finishMessage(): void {
    this.#start();
    this.#closeBlock();
    const usage = this.#usage ? anthropicUsage(this.#usage) : {
      input_tokens: this.#context.inputTokensEstimate,
      output_tokens: this.#generatedChars === 0
        ? 0
        : Math.max(1, Math.round(this.#generatedChars / 4)),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    this.#emit("message_delta", {
      type: "message_delta",
      delta: stopReason(this.#finish, this.#matchedStop, this.#context.stopSequences),
      usage,
    });
    this.#emit("message_stop", { type: "message_stop" });
    this.#ended = true;
  }

  #error(message: string, type = "api_error"): void {
    this.#errorEvent = true;
    this.#closeBlock();
    this.#emit("error", { type: "error", error: { type, message } });
    this.#ended = true;
  }
}
