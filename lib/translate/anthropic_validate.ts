/**
 * The checks every Anthropic Messages request passes, in both modes (passthrough and
 * translation), before it is routed: the fields olla-ts reads, with the field at fault
 * named in the refusal.
 *
 * @module
 */

/** A request refused before anything is sent: the field at fault and why. */
export class MessagesRequestError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = "MessagesRequestError";
  }
}

type Json = Record<string, unknown>;

/** The fields of a Messages request olla-ts reads; the rest is kept as sent. */
export interface MessagesRequest {
  readonly raw: Json;
  readonly model: string;
  readonly stream: boolean;
  readonly messages: readonly Json[];
}

export function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function fail(field: string, reason: string): never {
  throw new MessagesRequestError(field, reason);
}

function checkNumber(raw: Json, key: string, min: number, max: number, integer = false): void {
  const value = raw[key];
  if (value === undefined || value === null) return;
  if (
    typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value))
  ) {
    fail(key, `must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) {
    fail(
      key,
      `must be ${max === Infinity ? `at least ${min}` : `between ${min} and ${max}`}, got ${value}`,
    );
  }
}

/**
 * Checks what every Messages request must have, in both modes: a model, at least one
 * message with a `user` or `assistant` role, `max_tokens` of at least 1, and sampling
 * values in range (`temperature` 0..2, as Olla allows; `top_p` 0..1; `top_k` >= 0).
 *
 * @throws {MessagesRequestError} naming the first field at fault.
 */
export function parseMessagesRequest(body: unknown): MessagesRequest {
  if (!isObject(body)) fail("body", "must be a JSON object");
  const model = body.model;
  if (typeof model !== "string" || model === "") {
    fail("model", model === undefined ? "is required" : "must be a non-empty string");
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    fail("messages", "must be a non-empty list");
  }
  messages.forEach((message, i) => {
    if (!isObject(message)) fail(`messages[${i}]`, "must be an object");
    if (message.role !== "user" && message.role !== "assistant") {
      fail(
        `messages[${i}].role`,
        `must be "user" or "assistant", got ${JSON.stringify(message.role)}`,
      );
    }
    if (typeof message.content !== "string" && !Array.isArray(message.content)) {
      fail(`messages[${i}].content`, "must be a string or a list of content blocks");
    }
  });
  if (body.max_tokens === undefined) fail("max_tokens", "is required");
  checkNumber(body, "max_tokens", 1, Infinity, true);
  checkNumber(body, "temperature", 0, 2);
  checkNumber(body, "top_p", 0, 1);
  checkNumber(body, "top_k", 0, Infinity, true);
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    fail("stream", "must be true or false");
  }
  return { raw: body, model, stream: body.stream === true, messages: messages as Json[] };
}
