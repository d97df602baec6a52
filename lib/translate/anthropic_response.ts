/**
 * An OpenAI chat completion turned into an Anthropic message: `thinking` from the
 * engine's `reasoning_content` (or `reasoning`), a `text` block, one `tool_use` block per
 * tool call with its arguments parsed, `stop_reason` from `finish_reason`, `usage` from
 * the token counts, and an id of the form `msg_...`.
 *
 * @module
 */

type Json = Record<string, unknown>;

const ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** A fresh id in Anthropic's style: the prefix and 24 base-58 characters. */
export function anthropicId(prefix: "msg" | "toolu"): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let id = `${prefix}_01`;
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

/**
 * Anthropic's `stop_reason` for an OpenAI `finish_reason`: `stop` is `end_turn`, or
 * `stop_sequence` when the engine says which stop string ended it (vLLM's and LMDeploy's
 * `stop_reason`, when it is one of the request's `stop_sequences`); `length` is
 * `max_tokens`, `tool_calls` (and `function_call`) `tool_use`, `content_filter`
 * `refusal`, anything else `end_turn`.
 */
export function stopReason(
  finish: unknown,
  matched: unknown,
  stopSequences: readonly string[],
): { stop_reason: string; stop_sequence: string | null } {
  if (typeof matched === "string" && stopSequences.includes(matched)) {
    return { stop_reason: "stop_sequence", stop_sequence: matched };
  }
  switch (finish) {
    case "length":
      return { stop_reason: "max_tokens", stop_sequence: null };
    case "tool_calls":
    case "function_call":
      return { stop_reason: "tool_use", stop_sequence: null };
    case "content_filter":
      return { stop_reason: "refusal", stop_sequence: null };
    default:
      return { stop_reason: "end_turn", stop_sequence: null };
  }
}

/** Tool arguments as an object: parsed JSON, else what LMDeploy sends for text that is not. */
export function toolInput(argumentsText: unknown): Json {
  if (typeof argumentsText !== "string" || argumentsText.trim() === "") return {};
  try {
    const value = JSON.parse(argumentsText);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
    return { value };
  } catch {
    return { raw_arguments: argumentsText };
  }
}

/** Anthropic's usage from OpenAI's (cached prompt tokens as cache reads). */
export function anthropicUsage(usage: unknown): Json {
  const counts = (usage ?? {}) as Json;
  const details = (counts.prompt_tokens_details ?? {}) as Json;
  const number = (value: unknown) => (typeof value === "number" ? value : 0);
  return {
    input_tokens: number(counts.prompt_tokens),
    output_tokens: number(counts.completion_tokens),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: number(details.cached_tokens),
  };
}

/** What the translation of an answer needs to know about its request. */
export interface AnswerContext {
  /** The model name the client asked for (an alias stays the alias). */
  model: string;
  stopSequences: readonly string[];
}

/** The Anthropic message for a parsed OpenAI chat completion. */
export function toAnthropicMessage(completion: Json, context: AnswerContext): Json {
  const choices = Array.isArray(completion.choices) ? completion.choices as Json[] : [];
  const choice = choices[0] ?? {};
  const message = (choice.message ?? {}) as Json;
  const content: Json[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === "string" && reasoning !== "") {
    content.push({ type: "thinking", thinking: reasoning, signature: "" });
  }
  if (typeof message.content === "string" && message.content !== "") {
    content.push({ type: "text", text: message.content });
  }
  const toolCalls = Array.isArray(message.tool_calls) ? message.tool_calls as Json[] : [];
  for (const call of toolCalls) {
    const fn = (call.function ?? {}) as Json;
    content.push({
      type: "tool_use",
      id: typeof call.id === "string" && call.id !== "" ? call.id : anthropicId("toolu"),
      name: fn.name,
      input: toolInput(fn.arguments),
    });
  }
  if (content.length === 0) content.push({ type: "text", text: "" });
  return {
    id: anthropicId("msg"),
    type: "message",
    role: "assistant",
    model: context.model,
    content,
    ...stopReason(choice.finish_reason, choice.stop_reason, context.stopSequences),
    usage: anthropicUsage(completion.usage),
  };
}
