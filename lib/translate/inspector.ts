/**
 * Olla's Anthropic inspector (`translators.anthropic.inspector`), for debugging what a
 * client such as Claude Code sends and gets: one JSON line per entry in
 * `<output_dir>/<YYYY-MM-DD>/<session>.jsonl` (directories 0700, files 0600),
 * `{"type":"request"|"response","ts":<RFC 3339>,"model"?,"body":<JSON>}`. The session is
 * the `session_header` value, else `X-Request-ID`, else `default`; an id that is not
 * `[A-Za-z0-9_-]{1,64}` is `default` (it names a file). Requests are logged as received,
 * in both modes; responses only in translation, a stream rebuilt into one message
 * ({@linkcode MessageRebuilder}). The first entry logs a warning: bodies hold whatever the
 * client sent, secrets included. Off by default; writes never delay an answer (a failed
 * write is logged once and dropped).
 *
 * @module
 */
import { appendFile, mkdir } from "node:fs/promises";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";

const SESSION_REGEXP = /^[A-Za-z0-9_-]{1,64}$/;

/** Where an entry belongs: the client's session id, checked to be a safe file name. */
export function inspectorSession(headers: Headers, sessionHeader: string): string {
  const id = headers.get(sessionHeader) ?? headers.get("x-request-id") ?? "default";
  return SESSION_REGEXP.test(id) ? id : "default";
}

/** Options for {@linkcode Inspector}. */
export interface InspectorOptions {
  outputDir: string;
  clock: Clock;
  logger: Logger;
  /** Appends a line to a file, creating its directory; injectable for tests. */
  append?: (dir: string, file: string, line: string) => Promise<void>;
}

async function appendLine(dir: string, file: string, line: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await appendFile(`${dir}/${file}`, line, { mode: 0o600 });
}

/** Writes the inspector's entries. */
export class Inspector {
  readonly #options: InspectorOptions;
  #warned = false;
  #failed = false;
  /** Writes in order, one after another. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: InspectorOptions) {
    this.#options = options;
  }

  /** Logs one entry for `session`; returns once it is written (or dropped). */
  record(
    session: string,
    type: "request" | "response",
    body: unknown,
    model?: string,
  ): Promise<void> {
    const { clock, logger, outputDir } = this.#options;
    if (!this.#warned) {
      this.#warned = true;
      logger.warn(
        "the Anthropic inspector is on: request and response bodies are written to disk and may hold sensitive data",
        { output_dir: outputDir },
      );
    }
    const at = new Date(clock.now());
    const line = `${JSON.stringify({ type, ts: at.toISOString(), model, body })}\n`;
    const dir = `${outputDir}/${at.toISOString().slice(0, 10)}`;
    const append = this.#options.append ?? appendLine;
    this.#queue = this.#queue.then(() => append(dir, `${session}.jsonl`, line)).catch((error) => {
      if (this.#failed) return;
      this.#failed = true;
      logger.error("the Anthropic inspector cannot write", { dir, error: String(error) });
    });
    return this.#queue;
  }
}

interface RebuiltBlock {
  type: string;
  text?: string;
  thinking?: string;
  input?: unknown;
  partialJson?: string;
  [key: string]: unknown;
}

/**
 * Rebuilds one Anthropic message from the Messages events olla-ts's translation wrote,
 * fed the bytes as they went to the client.
 */
export class MessageRebuilder {
  #pending = "";
  #message: Record<string, unknown> = {};
  readonly #blocks: RebuiltBlock[] = [];
  readonly #decoder = new TextDecoder();

  push(bytes: Uint8Array): void {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    let end;
    while ((end = this.#pending.indexOf("\n\n")) !== -1) {
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end + 2);
      const data = event.split("\n").find((line) => line.startsWith("data: "));
      if (data) this.#apply(JSON.parse(data.slice(6)));
    }
  }

  #apply(event: Record<string, unknown>): void {
    const index = event.index as number;
    if (event.type === "message_start") this.#message = { ...(event.message as object) };
    else if (event.type === "content_block_start") {
      this.#blocks[index] = { ...(event.content_block as RebuiltBlock) };
    } else if (event.type === "content_block_delta") {
      const block = this.#blocks[index];
      const delta = event.delta as Record<string, string>;
      if (!block) return;
      if (delta.type === "text_delta") block.text = (block.text ?? "") + delta.text;
      if (delta.type === "thinking_delta") block.thinking = (block.thinking ?? "") + delta.thinking;
      if (delta.type === "input_json_delta") {
        block.partialJson = (block.partialJson ?? "") + delta.partial_json;
      }
    } else if (event.type === "content_block_stop") {
      const block = this.#blocks[index];
      if (block?.partialJson !== undefined) {
        try {
          block.input = JSON.parse(block.partialJson);
        } catch {
          block.input = block.partialJson;
        }
        delete block.partialJson;
      }
    } else if (event.type === "message_delta") {
      Object.assign(this.#message, event.delta as object);
      this.#message.usage = { ...(this.#message.usage as object), ...(event.usage as object) };
    } else if (event.type === "error") {
      this.#message.error = event.error;
    }
  }

  /** The message as the events built it. */
  message(): Record<string, unknown> {
    return { ...this.#message, content: this.#blocks.filter(Boolean) };
  }
}
