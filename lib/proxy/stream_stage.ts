/**
 * The response stage every proxied answer passes through. Bytes go to the client as
 * they arrive (each chunk is handed on before anything else happens to it, never held
 * back for the next), while the stage:
 *
 * - hands each chunk to an observer (usage and time-to-first-token) after forwarding it;
 * - ends a stream that stays silent longer than the idle timeout, outlives the
 *   response deadline, or is still open when shutdown's time is up, by aborting the
 *   upstream request;
 * - when the upstream dies or is cut off mid-stream, finishes an SSE answer with a final
 *   `data: {"error": ...}` event and `data: [DONE]` (LMDeploy's own mid-stream error
 *   shape, which OpenAI SDKs raise as an error) instead of a silent truncation;
 * - when the client goes away, cancels the upstream body, which closes the upstream
 *   connection so the engine stops generating;
 * - reports exactly once how the answer ended.
 *
 * It is a pull-driven `ReadableStream` with no queue of its own (high-water mark 0): it
 * reads the next upstream chunk only when the client side asks for one, so backpressure
 * reaches the upstream socket and nothing is buffered. (A `TransformStream` fed by
 * `pipeTo` behaves the same but costs about three times as much per answer on Deno 2.9.)
 *
 * @module
 */
import type { LiveStreams } from "./live_streams.ts";
import type { StreamTranslation } from "./upstream_plan.ts";
import type { Clock } from "../clock.ts";
import type { Deadline, Deadlines } from "../deadlines.ts";

/** How an answer ended. */
export type StreamOutcome =
  | "complete"
  | "upstream_error"
  | "idle_timeout"
  | "deadline"
  | "shutdown"
  | "client_cancelled";

/** Options for {@linkcode teeBody}. */
export interface TeeOptions {
  clock: Clock;
  deadlines: Deadlines;
  /** Longest silence between chunks; 0 disables. */
  idleTimeoutMs: number;
  /** Absolute time (clock ms) the whole answer must end by; `undefined` for none. */
  deadline: number | undefined;
  /** Whether the answer is an SSE stream (so an error can be appended as an event). */
  sse: boolean;
  /** Aborts the upstream request (and so its body). */
  abortUpstream: (reason: unknown) => void;
  /**
   * Sees every upstream chunk after it was forwarded. A chunk is never a view into a
   * reused buffer, so the observer may keep it.
   */
  onChunk?: (chunk: Uint8Array, now: number) => void;
  /**
   * Turns upstream bytes into the client's (a translated answer); each chunk's output is
   * forwarded as soon as the chunk is translated, and an answer cut short ends with the
   * translation's own error event.
   */
  translate?: StreamTranslation;
  /** The closing bytes for an SSE answer cut short, when not the OpenAI-style default. */
  errorTail?: (message: string) => Uint8Array;
  /** Where shutdown finds the stream to end it (with its error event) when time is up. */
  live?: LiveStreams;
  /** Called once with how the answer ended and how many bytes reached the client side. */
  onEnd: (outcome: StreamOutcome, bytes: number, error?: unknown) => void;
}

const ERROR_MESSAGES: Readonly<
  Record<Exclude<StreamOutcome, "complete" | "client_cancelled">, [number, string]>
> = {
  upstream_error: [502, "The backend connection was lost in the middle of the answer"],
  idle_timeout: [
    504,
    "The backend sent nothing for longer than proxy.read_timeout; the answer was ended",
  ],
  deadline: [504, "The answer took longer than proxy.response_timeout; it was ended"],
  shutdown: [
    503,
    "olla-ts is shutting down and server.shutdown_timeout ran out; the answer was ended",
  ],
};

/** The closing SSE events for an answer cut short. */
export function sseErrorTail(outcome: keyof typeof ERROR_MESSAGES): Uint8Array {
  const [code, message] = ERROR_MESSAGES[outcome];
  const error = { message, type: "server_error", code, param: null, object: "error" };
  return new TextEncoder().encode(`data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`);
}

/** One chunk at a time from an upstream body. */
interface ChunkReader {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(reason: unknown): Promise<void>;
}

/** The buffer a byte stream is read into at first: a few SSE frames' worth. */
export const FIRST_READ_BYTES = 4 * 1024;
/** The largest it grows to, for a body that arrives faster than it is read. */
export const LARGEST_READ_BYTES = 64 * 1024;

/**
 * Reads `body` chunk by chunk. Where the body is a byte stream (Deno's `fetch`), it is
 * read into one buffer owned by the stream and each chunk is copied out at its own size:
 * the default reader allocates 64 KiB per read, so every SSE frame of a few hundred bytes
 * would hold 64 KiB until it is collected (Deno 2.9, 2,000 paced streams: peak RSS 640 MB
 * -> 330 MB with a 16 KiB buffer).
 *
 * A waiting read holds its buffer for as long as the stream is silent, which for a token
 * stream is most of its life, so the buffer starts small (4 KiB: 2,000 streams held 24 MB
 * less than with 16 KiB) and grows fourfold each time a read fills it, up to 64 KiB:
 * a large body (embeddings, a long answer read after a slow start) is then read in big
 * reads, not thousands of small ones. Other bodies (Bun's fetch) use the default reader.
 */
function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream.
  }
  if (!byob) {
    const reader = body.getReader();
    return { read: () => reader.read(), cancel: (reason) => reader.cancel(reason) };
  }
  const bytes = byob;
  let buffer = new ArrayBuffer(FIRST_READ_BYTES);
  return {
    async read() {
      const result = await bytes.read(new Uint8Array(buffer));
      if (result.done || !result.value) return { done: true, value: undefined };
      // The read handed the buffer over; take the bytes out and keep it for the next read.
      const chunk = result.value.slice();
      const size = result.value.buffer.byteLength;
      buffer = chunk.byteLength === size && size < LARGEST_READ_BYTES
        ? new ArrayBuffer(size * 4)
        : result.value.buffer;
      return { done: false, value: chunk };
    },
    cancel: (reason) => bytes.cancel(reason),
  };
}

/** Passes `body` through the stage; returns the stream to send to the client. */
export function teeBody(
  body: ReadableStream<Uint8Array>,
  options: TeeOptions,
): ReadableStream<Uint8Array> {
  const { clock, deadlines, idleTimeoutMs, deadline, onChunk, translate } = options;
  const reader = chunkReader(body);
  let bytes = 0;
  let lastChunkAt = clock.now();
  let ended = false;
  let timer: Deadline | undefined;
  /** Set when olla-ts itself cut the upstream off, so that is not mistaken for a failure. */
  let stopped: { reason: "idle_timeout" | "deadline" | "shutdown"; error: Error } | undefined;
  /**
   * Cuts the upstream off: aborts the request and cancels the read. The abort alone is not
   * enough on Deno 2.9, whose fetch ends a body on abort through the `Request` it builds
   * inside, with a signal that follows the caller's only weakly (a dependent signal, as
   * the DOM standard has `AbortSignal.any` hold them). Nothing keeps that `Request` once
   * the headers are in; after the next garbage collection the abort no longer reaches a
   * body read through a reader, and the read waits for the backend's next byte (measured:
   * 6 of 6 aborts lost after a forced collection; Bun 0 of 6; `arrayBuffer()` and `text()`
   * are not affected). Shutdown then exited with such a stream still open, its error
   * event never written.
   */
  const stop = (reason: "idle_timeout" | "deadline" | "shutdown") => {
    const error = new Error(`stream ended by olla-ts: ${reason}`);
    stopped = { reason, error };
    options.abortUpstream(error);
    reader.cancel(error).catch(() => {});
  };
  const untrack = options.live?.track(() => {
    if (!ended) stop("shutdown");
  });

  const end = (outcome: StreamOutcome, error?: unknown) => {
    if (ended) return;
    ended = true;
    timer?.cancel();
    untrack?.();
    options.onEnd(outcome, bytes, error);
  };

  const arm = () => {
    const idleAt = idleTimeoutMs > 0 ? lastChunkAt + idleTimeoutMs : Infinity;
    const fireAt = Math.min(idleAt, deadline ?? Infinity);
    if (fireAt === Infinity) return;
    // One deadline per stream, re-armed only when it fires early (a chunk came since).
    timer = deadlines.after(fireAt - clock.now(), () => {
      timer = undefined;
      if (ended) return;
      const now = clock.now();
      if (deadline !== undefined && now >= deadline) stop("deadline");
      else if (idleTimeoutMs > 0 && now - lastChunkAt >= idleTimeoutMs) stop("idle_timeout");
      else arm();
    });
  };
  arm();

  /** Ends an answer cut short: an SSE answer with its error event, any other with an error. */
  const cutShort = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    outcome: Exclude<StreamOutcome, "complete" | "client_cancelled">,
    error: unknown,
  ) => {
    if (translate || options.sse) {
      const message = ERROR_MESSAGES[outcome][1];
      const tail = translate
        ? translate.fail(message)
        : options.errorTail
        ? options.errorTail(message)
        : sseErrorTail(outcome);
      bytes += tail.byteLength;
      if (tail.byteLength > 0) controller.enqueue(tail);
      controller.close();
    } else {
      controller.error(error);
    }
    end(outcome, error);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A translated chunk may complete no event yet: read on until something is sent.
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          if (!ended) cutShort(controller, stopped?.reason ?? "upstream_error", error);
          return;
        }
        if (ended) return;
        if (stopped) {
          // The read olla-ts cancelled ends as if the body had: it is cut short all the same.
          cutShort(controller, stopped.reason, stopped.error);
          return;
        }
        if (result.done) {
          const tail = translate?.end();
          if (tail && tail.byteLength > 0) {
            bytes += tail.byteLength;
            controller.enqueue(tail);
          }
          controller.close();
          end("complete");
          return;
        }
        const chunk = result.value;
        const now = clock.now();
        const out = translate ? translate.push(chunk, now) : chunk;
        if (out) controller.enqueue(out);
        lastChunkAt = now;
        if (out) bytes += out.byteLength;
        onChunk?.(chunk, now);
        if (out) return;
      }
    },
    cancel(reason) {
      if (ended) return;
      options.abortUpstream(reason);
      reader.cancel(reason).catch(() => {});
      end("client_cancelled", reason);
    },
  }, { highWaterMark: 0 });
}
