/**
 * An Anthropic Messages request checked field by field, and turned into an OpenAI chat
 * completions request for engines that do not serve the Messages API themselves.
 *
 * Translated: `system` (a string or text blocks) as the system message; `text`, `image`
 * (base64 and URL) and text `document` blocks as content parts; `tool_use` / `tool_result`
 * blocks as `tool_calls` / `tool` messages with the same ids (tool results first, since
 * OpenAI wants them right after the assistant's calls); assistant `thinking` as
 * `reasoning_content`; `tools` as functions; `tool_choice` (`auto`, `any` -> `required`,
 * `tool` -> that function, `none`) and `disable_parallel_tool_use`; `stop_sequences`,
 * `temperature`, `top_p`, `top_k`, `max_tokens`, `metadata.user_id` -> `user`; `thinking`
 * as the chat template's `enable_thinking` switch, which vLLM, SGLang and LMDeploy pass to
 * reasoning models. A stream asks for `stream_options.include_usage`, so the final usage
 * is the engine's count rather than an estimate.
 *
 * Left out on purpose, because they mean nothing to a local engine: `cache_control`
 * hints, `service_tier`, `redacted_thinking` blocks (Anthropic's own encrypted data) and a
 * thinking block's `signature`. Anything else that cannot be expressed (a PDF document, a
 * server tool such as `web_search`, `mcp_servers`) is refused with a 400 naming the field:
 * a request is never changed silently.
 *
 * @module
 */
import { fail, isObject, type MessagesRequest } from "./anthropic_validate.ts";

type Json = Record<string, unknown>;

/** Text of a `system` value: a string, or its text blocks joined by blank lines. */
function systemText(system: unknown): string {
  if (system === undefined || system === null) return "";
  if (typeof system === "string") return system;
  if (!Array.isArray(system)) fail("system", "must be a string or a list of text blocks");
  return system.map((block, i) => {
    if (!isObject(block) || block.type !== "text" || typeof block.text !== "string") {
      fail(`system[${i}]`, "must be a text block");
    }
    return block.text;
  }).join("\n\n");
}

function blocksOf(content: unknown): unknown[] {
  return typeof content === "string" ? [{ type: "text", text: content }] : content as unknown[];
}

/** An image block as an OpenAI `image_url` part. */
function imagePart(block: Json, field: string): Json {
  const source = block.source;
  if (!isObject(source)) fail(`${field}.source`, "is required");
  if (source.type === "base64") {
    if (typeof source.media_type !== "string" || typeof source.data !== "string") {
      fail(`${field}.source`, "a base64 image needs media_type and data");
    }
    return {
      type: "image_url",
      image_url: { url: `data:${source.media_type};base64,${source.data}` },
    };
  }
  if (source.type === "url" && typeof source.url === "string") {
    return { type: "image_url", image_url: { url: source.url } };
  }
  return fail(
    `${field}.source.type`,
    `image sources of type ${JSON.stringify(source.type)} cannot be translated`,
  );
}

/** A document block as text: plain-text and content sources only. */
function documentText(block: Json, field: string): string {
  const source = block.source;
  if (!isObject(source)) fail(`${field}.source`, "is required");
  const title = typeof block.title === "string" ? `${block.title}\n\n` : "";
  if (source.type === "text" && typeof source.data === "string") return `${title}${source.data}`;
  if (source.type === "content") {
    const parts = blocksOf(source.content).map((item, i) => {
      if (!isObject(item) || item.type !== "text" || typeof item.text !== "string") {
        fail(`${field}.source.content[${i}]`, "only text blocks can be translated");
      }
      return item.text;
    });
    return `${title}${parts.join("\n")}`;
  }
  return fail(
    `${field}.source.type`,
    `a ${
      JSON.stringify(source.type)
    } document cannot be translated for this backend (send its text instead)`,
  );
}

/** The content of a `tool_result`: text, plus any images it carried. */
function toolResultContent(block: Json, field: string): { text: string; images: Json[] } {
  const content = block.content;
  let text = "";
  const images: Json[] = [];
  if (typeof content === "string") text = content;
  else if (Array.isArray(content)) {
    const texts: string[] = [];
    content.forEach((item, i) => {
      const itemField = `${field}.content[${i}]`;
      if (!isObject(item)) fail(itemField, "must be a content block");
      if (item.type === "text" && typeof item.text === "string") texts.push(item.text);
      else if (item.type === "image") images.push(imagePart(item, itemField));
      else if (item.type === "document") texts.push(documentText(item, itemField));
      else {fail(
          `${itemField}.type`,
          `${JSON.stringify(item.type)} cannot be translated inside a tool_result`,
        );}
    });
    text = texts.join("\n");
  } else if (content !== undefined && content !== null) {
    text = JSON.stringify(content);
  }
  if (block.is_error === true && !/^error/i.test(text)) text = `Error: ${text}`;
  return { text, images };
}

/** One user message: its tool results as `tool` messages first, then its other content. */
function userMessages(content: unknown, index: number): Json[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const tools: Json[] = [];
  const parts: Json[] = [];
  (content as unknown[]).forEach((block, j) => {
    const field = `messages[${index}].content[${j}]`;
    if (!isObject(block)) fail(field, "must be a content block");
    switch (block.type) {
      case "text":
        if (typeof block.text !== "string") fail(`${field}.text`, "must be a string");
        parts.push({ type: "text", text: block.text });
        break;
      case "image":
        parts.push(imagePart(block, field));
        break;
      case "document":
        parts.push({ type: "text", text: documentText(block, field) });
        break;
      case "tool_result": {
        if (typeof block.tool_use_id !== "string") fail(`${field}.tool_use_id`, "is required");
        const result = toolResultContent(block, field);
        tools.push({ role: "tool", tool_call_id: block.tool_use_id, content: result.text });
        parts.push(...result.images);
        break;
      }
      default:
        fail(
          `${field}.type`,
          `${JSON.stringify(block.type)} blocks cannot be translated in a user message`,
        );
    }
  });
  const out = [...tools];
  if (parts.length > 0) {
    const textOnly = parts.every((part) => part.type === "text");
    out.push({
      role: "user",
      content: textOnly ? parts.map((part) => part.text).join("\n") : parts,
    });
  }
  return out;
}

/** One assistant message: text, reasoning and tool calls. */
function assistantMessage(content: unknown, index: number): Json | undefined {
  if (typeof content === "string") return { role: "assistant", content };
  const texts: string[] = [];
  const reasoning: string[] = [];
  const toolCalls: Json[] = [];
  (content as unknown[]).forEach((block, j) => {
    const field = `messages[${index}].content[${j}]`;
    if (!isObject(block)) fail(field, "must be a content block");
    switch (block.type) {
      case "text":
        if (typeof block.text !== "string") fail(`${field}.text`, "must be a string");
        texts.push(block.text);
        break;
      case "thinking":
        if (typeof block.thinking === "string") reasoning.push(block.thinking);
        break;
      case "redacted_thinking":
        break;
      case "tool_use":
        if (typeof block.id !== "string" || typeof block.name !== "string") {
          fail(field, "a tool_use block needs an id and a name");
        }
        toolCalls.push({
          id: block.id,
          type: "function",
          function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
        });
        break;
      default:
        fail(
          `${field}.type`,
          `${JSON.stringify(block.type)} blocks cannot be translated in an assistant message`,
        );
    }
  });
  if (texts.length === 0 && toolCalls.length === 0 && reasoning.length === 0) return undefined;
  return {
    role: "assistant",
    content: texts.length > 0 ? texts.join("") : null,
    ...(reasoning.length > 0 ? { reasoning_content: reasoning.join("") } : {}),
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
}

/** Tools as OpenAI functions; server tools (web search, code execution) cannot be. */
function functions(tools: unknown): Json[] {
  if (!Array.isArray(tools)) fail("tools", "must be a list");
  return tools.map((tool, i) => {
    if (!isObject(tool)) fail(`tools[${i}]`, "must be an object");
    if (tool.type !== undefined && tool.type !== "custom") {
      fail(
        `tools[${i}].type`,
        `the server tool ${JSON.stringify(tool.type)} cannot be run by this backend`,
      );
    }
    if (typeof tool.name !== "string" || tool.name === "") fail(`tools[${i}].name`, "is required");
    return {
      type: "function",
      function: {
        name: tool.name,
        ...(typeof tool.description === "string" ? { description: tool.description } : {}),
        parameters: isObject(tool.input_schema)
          ? tool.input_schema
          : { type: "object", properties: {} },
      },
    };
  });
}

function toolChoice(choice: unknown): { tool_choice?: unknown; parallel_tool_calls?: boolean } {
  if (choice === undefined || choice === null) return {};
  const type = typeof choice === "string" ? choice : isObject(choice) ? choice.type : undefined;
  const parallel = isObject(choice) && choice.disable_parallel_tool_use === true
    ? { parallel_tool_calls: false }
    : {};
  switch (type) {
    case "auto":
      return { tool_choice: "auto", ...parallel };
    case "any":
      return { tool_choice: "required", ...parallel };
    case "none":
      return { tool_choice: "none" };
    case "tool": {
      const name = isObject(choice) ? choice.name : undefined;
      if (typeof name !== "string" || name === "") {
        fail("tool_choice.name", "is required for type tool");
      }
      return { tool_choice: { type: "function", function: { name } }, ...parallel };
    }
    default:
      return fail(
        "tool_choice.type",
        `must be auto, any, tool or none, got ${JSON.stringify(type)}`,
      );
  }
}

/** Top-level fields a local engine cannot honour; refused rather than ignored. */
const UNTRANSLATABLE = ["mcp_servers", "container"];

/**
 * The OpenAI chat completions request for `request`, for the model name the chosen
 * endpoint knows (`model`, after alias resolution).
 *
 * @throws {MessagesRequestError} naming the field that cannot be translated.
 */
export function toOpenAiChat(request: MessagesRequest, model: string): Json {
  const raw = request.raw;
  for (const key of UNTRANSLATABLE) {
    if (raw[key] !== undefined) fail(key, "cannot be translated for this backend");
  }
  const messages: Json[] = [];
  const system = systemText(raw.system);
  if (system !== "") messages.push({ role: "system", content: system });
  request.messages.forEach((message, i) => {
    if (message.role === "user") messages.push(...userMessages(message.content, i));
    else {
      const assistant = assistantMessage(message.content, i);
      if (assistant) messages.push(assistant);
    }
  });
  const out: Json = { model, messages, max_tokens: raw.max_tokens };
  if (request.stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  if (raw.temperature !== undefined) out.temperature = raw.temperature;
  if (raw.top_p !== undefined) out.top_p = raw.top_p;
  if (raw.top_k !== undefined) out.top_k = raw.top_k;
  if (raw.stop_sequences !== undefined) {
    if (
      !Array.isArray(raw.stop_sequences) || raw.stop_sequences.some((s) => typeof s !== "string")
    ) {
      fail("stop_sequences", "must be a list of strings");
    }
    if (raw.stop_sequences.length > 0) out.stop = raw.stop_sequences;
  }
  if (isObject(raw.metadata) && typeof raw.metadata.user_id === "string") {
    out.user = raw.metadata.user_id;
  }
  if (raw.tools !== undefined) {
    const tools = functions(raw.tools);
    if (tools.length > 0) {
      out.tools = tools;
      Object.assign(out, toolChoice(raw.tool_choice));
    }
  }
  if (isObject(raw.thinking)) {
    if (
      raw.thinking.type !== "enabled" && raw.thinking.type !== "disabled" &&
      raw.thinking.type !== "adaptive"
    ) {
      fail(
        "thinking.type",
        `must be enabled or disabled, got ${JSON.stringify(raw.thinking.type)}`,
      );
    }
    out.chat_template_kwargs = { enable_thinking: raw.thinking.type !== "disabled" };
  }
  return out;
}
