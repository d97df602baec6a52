/**
 * The input-token estimate for a Messages request, Olla's rule: a quarter of the UTF-8
 * bytes of the text the model reads (system text, text blocks, tool results, each
 * tool_use's name and input, each tool's name, description and schema), at least 1.
 * Images and thinking count nothing. Used where no tokenizer is reachable, and for
 * `message_start` before the engine's own count arrives.
 *
 * @module
 */

const encoder = new TextEncoder();

function textBytes(value: unknown): number {
  if (typeof value === "string") return encoder.encode(value).byteLength;
  if (!Array.isArray(value)) return 0;
  let bytes = 0;
  for (const block of value) {
    if (block === null || typeof block !== "object") continue;
    const item = block as Record<string, unknown>;
    if (item.type === "text") bytes += textBytes(item.text);
    else if (item.type === "tool_result") bytes += textBytes(item.content);
    else if (item.type === "tool_use") {
      bytes += textBytes(item.name) + encoder.encode(JSON.stringify(item.input ?? {})).byteLength;
    } else if (item.type === "document") {
      const source = item.source as Record<string, unknown> | undefined;
      if (source?.type === "text") bytes += textBytes(source.data);
    }
  }
  return bytes;
}

/** Estimated input tokens of a parsed Messages (or count_tokens) request. */
export function estimateInputTokens(request: Record<string, unknown>): number {
  let bytes = textBytes(request.system);
  if (Array.isArray(request.messages)) {
    for (const message of request.messages) {
      bytes += textBytes((message as Record<string, unknown> | null)?.content);
    }
  }
  if (Array.isArray(request.tools)) {
    for (const tool of request.tools) {
      const item = (tool ?? {}) as Record<string, unknown>;
      bytes += textBytes(item.name) + textBytes(item.description) +
        encoder.encode(JSON.stringify(item.input_schema ?? {})).byteLength;
    }
  }
  return Math.max(1, Math.floor(bytes / 4));
}
