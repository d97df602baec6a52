/**
 * The client's answer from an endpoint's response: the backend's status and cleaned
 * headers, and its body either handed on whole (a complete, bounded, non-streamed
 * answer) or through the stream stage; and, when every attempt failed, the last
 * backend answer passed on as it was. Usage, outcome and bytes go into the record here.
 *
 * @module
 */
import { type Attempt, type AttemptResult, releaseAttempt } from "./attempt.ts";
import type { FailedAnswer } from "./attempt_failures.ts";
import { AttemptStop, bodyTimeout, clientClosed } from "./attempt_stop.ts";
import type { Bytes } from "./body_read.ts";
import { setClientResponseHeaders } from "./headers.ts";
import type { RequestRecord } from "./request_record.ts";
import type { LiveStreams } from "./live_streams.ts";
import { type StreamOutcome, teeBody } from "./stream_stage.ts";
import type { AnswerTranslation } from "./upstream_plan.ts";
import { observerFor } from "./usage.ts";
import type { Clock } from "../clock.ts";
import type { Deadlines } from "../deadlines.ts";
import { OllaError } from "../errors.ts";
import type { Registry } from "../registry/registry.ts";
import { describeFetchError } from "../upstream/fetch_errors.ts";

/** What the answer stage needs. */
export interface AnswerDeps {
  registry: Registry;
  clock: Clock;
  deadlines: Deadlines;
  /** Longest silence inside an answer (`proxy.read_timeout`); 0 disables. */
  readTimeoutMs: number;
  /**
   * Removes configured secrets from a backend's error body before it is handed on (a
   * backend that echoes request headers in its error must not leak the endpoint's token).
   */
  redact?: (text: string) => string;
  /** Streams in flight, for shutdown to end. */
  live?: LiveStreams;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** An error body with configured secrets removed; the same bytes when it holds none. */
function redactedBody(bytes: Bytes, redact: ((text: string) => string) | undefined): Bytes {
  if (!redact || bytes.byteLength === 0) return bytes;
  const text = decoder.decode(bytes);
  const clean = redact(text);
  return clean === text ? bytes : encoder.encode(clean);
}

/** Non-streamed answers up to this size are handed on whole rather than streamed. */
const MAX_WHOLE_BODY = 1024 * 1024;

/**
 * The client's answer for an endpoint's response: handed on whole when it is a bounded
 * non-SSE answer (whose broken body can still fail over), else through the stream stage.
 */
export function respond(
  deps: AnswerDeps,
  response: Response,
  attempt: Attempt,
): Promise<AttemptResult> | AttemptResult {
  const contentType = response.headers.get("content-type");
  const sse = contentType?.startsWith("text/event-stream") ?? false;
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  // Only a success is translated; an error answer is handed on (the route renders it).
  const translation = response.ok ? attempt.plan?.answer : undefined;
  if (
    !response.body || (!sse && Number.isFinite(length) && length <= MAX_WHOLE_BODY) ||
    (translation && !sse)
  ) {
    return answerWhole(deps, response, attempt, translation);
  }
  return {
    kind: "answered",
    response: answerStreamed(deps, response, response.body, attempt, translation),
  };
}

/** Client headers for a translated answer: the upstream's, with the new type and no length. */
function translatedHeaders(upstream: Headers, contentType: string): Headers {
  const headers = new Headers();
  setClientResponseHeaders(upstream, headers);
  headers.delete("content-length");
  headers.set("content-type", contentType);
  return headers;
}

/** The last backend answer, passed on (secrets removed) when every attempt failed. */
export function passOnFailedAnswer(
  record: RequestRecord,
  answer: FailedAnswer,
  redact?: (text: string) => string,
): Response {
  record.upstreamFailure = `every attempt failed; the last answer (${answer.status}) was passed on`;
  const body = redactedBody(answer.body, redact);
  const headers = new Headers(answer.headers);
  if (body !== answer.body) headers.delete("content-length");
  return new Response(body, { status: answer.status, headers });
}

/**
 * A complete, bounded answer (LMDeploy sends a non-streamed completion in one piece once
 * generation ends) is read whole and handed on as bytes: the client sees exactly the same
 * answer, it costs far less than a stream stage, and since nothing has reached the client
 * yet, a body that breaks or stalls fails over like a refused connection instead of
 * arriving truncated.
 */
async function answerWhole(
  deps: AnswerDeps,
  response: Response,
  attempt: Attempt,
  translation: AnswerTranslation | undefined,
): Promise<AttemptResult> {
  const { clock, registry } = deps;
  const { endpoint, record, clientSignal, controller, deadline } = attempt;
  const readTimeout = deps.readTimeoutMs || Infinity;
  const now = clock.now();
  const untilDeadline = (deadline ?? Infinity) - now;
  const wait = Math.min(readTimeout, untilDeadline);
  // Built only when the timer fires: an Error captures a stack, which is costly per request.
  const stopFor = () =>
    untilDeadline <= readTimeout
      ? new AttemptStop("deadline", "The request exceeded proxy.response_timeout")
      : bodyTimeout(endpoint.name);
  const timer = Number.isFinite(wait)
    ? deps.deadlines.after(wait, () => controller.abort(stopFor()), now)
    : undefined;
  let bytes: Bytes;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    releaseAttempt(attempt);
    if (clientSignal.aborted) {
      registry.reportAbandoned(endpoint.name);
      throw clientClosed(error);
    }
    const stop = controller.signal.reason instanceof AttemptStop
      ? controller.signal.reason
      : undefined;
    if (stop?.reason === "deadline") {
      registry.reportAbandoned(endpoint.name);
      throw new OllaError(504, stop.message, { code: "response_timeout", fault: "upstream" });
    }
    const message = stop
      ? stop.message
      : `The answer from endpoint "${endpoint.name}" broke off: ${describeFetchError(error)}`;
    registry.reportFailure(endpoint.name, stop ? "timeout" : "server_error", message);
    return {
      kind: "failover",
      reason: stop ? "body_timeout" : "body_broken",
      error: new OllaError(stop ? 504 : 502, message, {
        code: stop ? "body_timeout" : "upstream_body_error",
        fault: "upstream",
        cause: error,
      }),
    };
  } finally {
    timer?.cancel();
  }
  if (response.status >= 400) bytes = redactedBody(bytes, deps.redact);
  const upstreamBytes = bytes;
  if (translation) {
    try {
      bytes = translation.json(bytes);
    } catch (error) {
      settle(deps, attempt, "complete", 0);
      throw new OllaError(
        502,
        `Endpoint "${endpoint.name}" answered with JSON olla-ts cannot read: ${
          describeFetchError(error)
        }`,
        {
          code: "upstream_invalid_answer",
          fault: "upstream",
        },
      );
    }
  }
  settle(deps, attempt, "complete", bytes.byteLength);
  const observer = observerFor(response.headers.get("content-type"));
  if (observer) {
    // Usage is read after the answer has been handed to the runtime.
    record.finishesWith(
      Promise.resolve().then(() => {
        observer.push(upstreamBytes, record.upstreamHeadersAt ?? clock.now());
        record.usage = observer.finish();
      }),
    );
  }
  if (translation) {
    const headers = translatedHeaders(response.headers, translation.contentType);
    return {
      kind: "answered",
      response: new Response(bytes, { status: response.status, headers }),
    };
  }
  const answer = new Response(response.body ? bytes : null, { status: response.status });
  setClientResponseHeaders(response.headers, answer.headers);
  // An error body may have been redacted: its length is the runtime's to set.
  if (response.status >= 400) answer.headers.delete("content-length");
  return { kind: "answered", response: answer };
}

/** An answer of unknown or large size, or a stream: through the stream stage. */
function answerStreamed(
  deps: AnswerDeps,
  response: Response,
  body: ReadableStream<Uint8Array>,
  attempt: Attempt,
  translation: AnswerTranslation | undefined,
): Response {
  const { record } = attempt;
  const contentType = response.headers.get("content-type");
  // A translation reads every event anyway and reports the usage itself.
  const translate = translation?.stream();
  const observer = translate ? undefined : observerFor(contentType);
  let done: () => void = () => {};
  record.finishesWith(new Promise<void>((resolve) => done = resolve));
  const stream = teeBody(body, {
    clock: deps.clock,
    deadlines: deps.deadlines,
    idleTimeoutMs: deps.readTimeoutMs,
    deadline: attempt.deadline,
    sse: contentType?.startsWith("text/event-stream") ?? false,
    abortUpstream: (reason) => attempt.controller.abort(reason),
    onChunk: observer ? (chunk, now) => observer.push(chunk, now) : undefined,
    translate,
    errorTail: attempt.plan?.errorTail,
    live: deps.live,
    onEnd: (outcome, bytes, error) => {
      settle(deps, attempt, outcome, bytes, error);
      record.usage = translate ? translate.usage() : observer?.finish();
      done();
    },
  });
  if (translation) {
    const headers = translatedHeaders(response.headers, "text/event-stream");
    return new Response(stream, { status: response.status, headers });
  }
  const answer = new Response(stream, { status: response.status });
  setClientResponseHeaders(response.headers, answer.headers);
  return answer;
}

/** Records how an answered attempt ended; a broken answer counts against its endpoint. */
function settle(
  deps: AnswerDeps,
  attempt: Attempt,
  outcome: StreamOutcome,
  bytes: number,
  error?: unknown,
): void {
  releaseAttempt(attempt);
  const { record } = attempt;
  record.outcome = outcome;
  record.bytesOut = bytes;
  if (outcome === "complete") {
    deps.registry.recordAnswerTime(attempt.endpoint.name, deps.clock.now() - attempt.startedAt);
    return;
  }
  if (outcome === "client_cancelled") return;
  record.upstreamFailure = describeFetchError(error);
  if (outcome === "upstream_error") {
    deps.registry.reportFailure(
      attempt.endpoint.name,
      "server_error",
      `answer broke: ${record.upstreamFailure}`,
    );
  }
}

/**
 * An answer olla-ts made itself (a model list, a status page, an error), with its size in
 * `record.bytesOut` (the answer stage keeps every answer's size) and `Content-Length`:
 * such an answer is small and whole, so it is read once. Event streams
 * (`/internal/events`) never end and are passed as they are, as are HEAD answers.
 */
export async function measuredLocalAnswer(
  response: Response,
  record: RequestRecord,
): Promise<Response> {
  if (
    !response.body || record.method === "HEAD" ||
    response.headers.get("content-type")?.startsWith("text/event-stream")
  ) {
    return response;
  }
  const length = response.headers.get("content-length");
  if (length !== null) {
    record.bytesOut = Number(length);
    return response;
  }
  const bytes = await response.arrayBuffer();
  record.bytesOut = bytes.byteLength;
  const headers = new Headers(response.headers);
  headers.set("content-length", String(bytes.byteLength));
  return new Response(bytes, { status: response.status, statusText: response.statusText, headers });
}
