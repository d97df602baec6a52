/**
 * Finds the top-level fields routing needs (`model`, `session_id`, `messages`) in a JSON
 * request body without parsing or copying it. Only the tiny `model` token is decoded, and
 * an alias rewrite splices in the new name, leaving every other byte as the client sent it.
 *
 * @module
 */
import type { Bytes } from "./body_read.ts";

/** A byte range `[start, end)` in the body. */
export type Range = readonly [number, number];

/** Top-level fields of a JSON object body that routing uses. */
export interface BodyFields {
  /** The `model` string, when it is a string. */
  model?: string;
  /** Range of the `model` value token, quotes included, for alias rewrites. */
  modelRange?: Range;
  /** LMDeploy's interactive `session_id` (absent, or -1, means none). */
  sessionId?: string;
  /** Range of the `messages` value (or `prompt` when there are no messages), for prefix hashing. */
  conversationRange?: Range;
  /** Whether the client asked for a stream (`"stream": true`). */
  stream?: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Index just past the string starting at `i` (a quote), or -1. */
function skipString(bytes: Uint8Array, i: number): number {
  for (let j = i + 1; j < bytes.length; j++) {
    const byte = bytes[j];
    if (byte === BACKSLASH) j++;
    else if (byte === QUOTE) return j + 1;
  }
  return -1;
}

/** Index just past the JSON value starting at `i`, or -1 when it is malformed. */
function skipValue(bytes: Uint8Array, i: number): number {
  const first = bytes[i];
  if (first === QUOTE) return skipString(bytes, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < bytes.length; j++) {
      const byte = bytes[j];
      if (byte === QUOTE) {
        j = skipString(bytes, j) - 1;
        if (j < 0) return -1;
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        depth++;
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (
    j < bytes.length && !isSpace(bytes[j]) && bytes[j] !== COMMA && bytes[j] !== CLOSE_BRACE &&
    bytes[j] !== CLOSE_BRACKET
  ) j++;
  return j > i ? j : -1;
}

/** The routing field a key names, or `undefined`; an escaped key is decoded first. */
const ROUTED_KEYS = new Set(["model", "session_id", "messages", "prompt", "stream"]);

function routedKey(bytes: Uint8Array, start: number, end: number): string | undefined {
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (bytes[i] === BACKSLASH) {
      escaped = true;
      break;
    }
  }
  if (escaped) {
    // `{"mod\u0065l": ...}` is the key "model" to every JSON parser the backend uses.
    try {
      const key = JSON.parse(decoder.decode(bytes.subarray(start, end)));
      return ROUTED_KEYS.has(key) ? key : undefined;
    } catch {
      return undefined;
    }
  }
  for (const key of ROUTED_KEYS) if (keyIs(bytes, start, end, key)) return key;
  return undefined;
}

function keyIs(bytes: Uint8Array, start: number, end: number, key: string): boolean {
  if (end - start !== key.length + 2) return false;
  for (let k = 0; k < key.length; k++) if (bytes[start + 1 + k] !== key.charCodeAt(k)) return false;
  return true;
}

const decoder = new TextDecoder();

/**
 * Finds the routing fields among the top-level keys of a JSON object, skipping nested
 * values without decoding them. Anything that is not a well-formed JSON object yields
 * no fields (the backend will answer the client's mistake itself).
 */
export function scanBody(bytes: Uint8Array): BodyFields {
  const fields: BodyFields = {};
  let i = 0;
  while (i < bytes.length && isSpace(bytes[i])) i++;
  if (bytes[i] !== OPEN_BRACE) return {};
  i++;
  let promptRange: Range | undefined;
  for (;;) {
    while (i < bytes.length && isSpace(bytes[i])) i++;
    if (bytes[i] === CLOSE_BRACE) break;
    if (bytes[i] !== QUOTE) return {};
    const keyStart = i;
    const keyEnd = skipString(bytes, i);
    if (keyEnd < 0) return {};
    i = keyEnd;
    while (i < bytes.length && isSpace(bytes[i])) i++;
    if (bytes[i] !== COLON) return {};
    i++;
    while (i < bytes.length && isSpace(bytes[i])) i++;
    const valueStart = i;
    const valueEnd = skipValue(bytes, i);
    if (valueEnd < 0) return {};
    const key = routedKey(bytes, keyStart, keyEnd);
    if (key === "model") {
      // A model that is not a string is the backend's to refuse; nothing routes on it.
      if (bytes[valueStart] !== QUOTE) {
        fields.model = undefined;
        fields.modelRange = undefined;
      } else {
        try {
          fields.model = JSON.parse(decoder.decode(bytes.subarray(valueStart, valueEnd)));
          fields.modelRange = [valueStart, valueEnd];
        } catch {
          return {};
        }
      }
    } else if (key === "session_id") {
      const text = decoder.decode(bytes.subarray(valueStart, valueEnd));
      if (text !== "-1" && text !== "null") fields.sessionId = text;
    } else if (key === "messages") {
      fields.conversationRange = [valueStart, valueEnd];
    } else if (key === "prompt") {
      promptRange = [valueStart, valueEnd];
    } else if (key === "stream") {
      fields.stream = valueEnd - valueStart === 4 && bytes[valueStart] === 0x74; // true
    }
    i = valueEnd;
    while (i < bytes.length && isSpace(bytes[i])) i++;
    if (bytes[i] === COMMA) {
      i++;
      continue;
    }
    if (bytes[i] === CLOSE_BRACE) break;
    return {};
  }
  fields.conversationRange ??= promptRange;
  return fields;
}

/** The body with the `model` value replaced; every other byte is unchanged. */
export function replaceModel(bytes: Uint8Array, range: Range, model: string): Bytes {
  const replacement = new TextEncoder().encode(JSON.stringify(model));
  const out = new Uint8Array(bytes.length - (range[1] - range[0]) + replacement.length);
  out.set(bytes.subarray(0, range[0]), 0);
  out.set(replacement, range[0]);
  out.set(bytes.subarray(range[1]), range[0] + replacement.length);
  return out;
}
