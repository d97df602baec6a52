/**
 * The response stage every proxied answer passes through. Bytes go to the client as
 * they arrive (each chunk is enqueued before anything else happens to it, never held
 * back for the next), while the stage:
 *
 * - hands each chunk to an observer (usage and time-to-first-token) after forwarding it;
 * - ends a stream that stays silent longer than the idle timeout, or outlives the
 *   response deadline, by aborting the upstream request;
 * - when the upstream dies or is cut off mid-stream, finishes an SSE answer with a final
 *   `data: {"error": ...}` event and `data: [DONE]` (LMDeploy's own mid-stream error
 *   shape, which OpenAI SDKs raise as an error) instead of a silent truncation;
 * - when the client goes away, cancels the upstream body, which closes the upstream
 *   connection so the engine stops generating;
 * - reports exactly once how the answer ended.
 *
 * Built on `pipeTo` into a `TransformStream`, so backpressure flows from the client to
 * the upstream socket and nothing is buffered beyond the streams' own queues.
 *
 * @module
 */
import type { Clock, TimerId } from "./clock.ts";

/** How an answer ended. */
export type StreamOutcome =
  | "complete"
  | "upstream_error"
  | "idle_timeout"
  | "deadline"
  | "client_cancelled";

/** Options for {@linkcode teeBody}. */
export interface TeeOptions {
  clock: Clock;
  /** Longest silence between chunks; 0 disables. */
  idleTimeoutMs: number;
  /** Absolute time (clock ms) the whole answer must end by; `undefined` for none. */
  deadline: number | undefined;
  /** Whether the answer is an SSE stream (so an error can be appended as an event). */
  sse: boolean;
  /** Aborts the upstream request (and so its body). */
  abortUpstream: (reason: unknown) => void;
  /** Sees every chunk after it was forwarded. */
  onChunk?: (chunk: Uint8Array, now: number) => void;
  /** Called once with how the answer ended and how many bytes reached the stage. */
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
};

/** The closing SSE events for an answer cut short. */
export function sseErrorTail(outcome: keyof typeof ERROR_MESSAGES): Uint8Array {
  const [code, message] = ERROR_MESSAGES[outcome];
  const error = { message, type: "server_error", code, param: null, object: "error" };
  return new TextEncoder().encode(`data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`);
}

/** Passes `body` through the stage; returns the stream to send to the client. */
export function teeBody(
  body: ReadableStream<Uint8Array>,
  options: TeeOptions,
): ReadableStream<Uint8Array> {
  const { clock, idleTimeoutMs, deadline, onChunk } = options;
  let bytes = 0;
  let lastChunkAt = clock.now();
  let ended = false;
  let timer: TimerId | undefined;
  /** Set when olla-ts itself cut the upstream off, so that is not mistaken for a failure. */
  let stoppedFor: "idle_timeout" | "deadline" | undefined;
  const stop = (outcome: "idle_timeout" | "deadline") => {
    stoppedFor = outcome;
    options.abortUpstream(new Error(`stream ended by olla-ts: ${outcome}`));
  };

  const end = (outcome: StreamOutcome, error?: unknown) => {
    if (ended) return;
    ended = true;
    if (timer !== undefined) clock.clearTimeout(timer);
    options.onEnd(outcome, bytes, error);
  };

  const stage = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      const now = clock.now();
      lastChunkAt = now;
      bytes += chunk.byteLength;
      onChunk?.(chunk, now);
    },
    // Runs when the client goes away, and also when olla-ts aborts the writable side
    // below after an upstream failure (by then the stream has already ended).
    cancel(reason) {
      if (ended) return;
      options.abortUpstream(reason);
      end("client_cancelled", reason);
    },
  });

  const arm = () => {
    const idleAt = idleTimeoutMs > 0 ? lastChunkAt + idleTimeoutMs : Infinity;
    const fireAt = Math.min(idleAt, deadline ?? Infinity);
    if (fireAt === Infinity) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      if (ended) return;
      const now = clock.now();
      if (deadline !== undefined && now >= deadline) stop("deadline");
      else if (idleTimeoutMs > 0 && now - lastChunkAt >= idleTimeoutMs) stop("idle_timeout");
      else arm();
    }, Math.max(0, fireAt - clock.now()));
  };
  arm();

  body.pipeTo(stage.writable, { preventClose: true, preventAbort: true }).then(
    () => {
      if (ended) return;
      stage.writable.close().catch(() => {});
      end("complete");
    },
    (error) => {
      if (ended) return;
      const outcome = stoppedFor ?? "upstream_error";
      const writer = stage.writable.getWriter();
      if (options.sse) {
        writer.write(sseErrorTail(outcome))
          .then(() => writer.close())
          .catch(() => {})
          .finally(() => end(outcome, error));
      } else {
        // End first: aborting the writable side also runs the transformer's cancel.
        end(outcome, error);
        writer.abort(error).catch(() => {});
      }
    },
  );
  return stage.readable;
}
