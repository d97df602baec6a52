/**
 * Forwarding one request to the endpoints that may serve it, failing over before the
 * answer starts, never after.
 *
 * Before anything reached the client, an attempt that meets a refused or reset
 * connection, a connect or response-header timeout, a 502/503/504 or a 429 moves on to
 * the next candidate (a reset is first retried once on the same endpoint: it is usually
 * a pooled keep-alive connection the backend closed, and LMDeploy closes idle ones after
 * 5 s). The body is replayed from the one buffer read. A sleeping engine's 503 marks the
 * endpoint asleep, a connection failure marks it offline, a 429 keeps it out of rotation
 * for its `Retry-After`, all at once. Other 4xx answers and 5xx other than 502-504 are
 * returned as they are. When every attempt failed, the last backend answer is returned
 * as it was (so its status and body reach the client), or olla-ts's own 502/504.
 *
 * Once the answer's headers are returned, bytes stream through {@linkcode teeBody}, and
 * the endpoint's in-flight count and admission slot are held until the last byte.
 *
 * @module
 */
import type { Admission } from "./admission.ts";
import type { Balancer } from "../routing/balancer.ts";
import { type Bytes, replaceModel } from "./body.ts";
import type { Clock } from "../clock.ts";
import type { Deadlines } from "../deadlines.ts";
import type { Config } from "../config/schema.ts";
import { OllaError } from "../errors.ts";
import { setClientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import type { Logger } from "../log.ts";
import { parseRetryAfter } from "../health/probe.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import type { RequestRecord } from "./request_record.ts";
import type { Selection } from "../routing/candidates.ts";
import { type StreamOutcome, teeBody } from "./stream_stage.ts";
import {
  describeFetchError,
  isConnectionError,
  networkFailureKind,
} from "../upstream/fetch_errors.ts";
import { observerFor } from "./usage.ts";

/** What the proxy needs from the rest of olla-ts. */
export interface ProxyDeps {
  registry: Registry;
  balancer: Balancer;
  admissions: ReadonlyMap<string, Admission>;
  clock: Clock;
  deadlines: Deadlines;
  logger: Logger;
  fetch: typeof fetch;
  /** Whether a TCP connection to host:port opens within the time (the connect watchdog). */
  canConnect: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  proxy: Config["proxy"];
}

/** One request to forward. */
export interface ForwardRequest {
  record: RequestRecord;
  method: string;
  /** Path and query to request from the endpoint, starting with `/`. */
  upstreamPath: string;
  headers: Headers;
  body: Bytes | undefined;
  /** Range of the body's `model` token, for alias rewrites. */
  modelRange: readonly [number, number] | undefined;
  selection: Selection;
  /** Endpoint to try first (session affinity). */
  preferred: EndpointView | undefined;
  /** Called with the endpoint that answered, for affinity pinning. */
  onServed?: (endpoint: EndpointView) => void;
  forwarding: { clientIp: string; proto: string; host: string | null };
  /** The client's request signal: aborts when the client disconnects. */
  signal: AbortSignal;
  /** Send to the candidates whatever their health (management routes naming their target). */
  ignoreHealth?: boolean;
}

/** A failed attempt's backend answer, kept in case every attempt fails. */
interface FailedAnswer {
  status: number;
  headers: Headers;
  body: Bytes;
}

type AttemptResult =
  | { kind: "answered"; response: Response }
  | { kind: "failover"; reason: string; answer?: FailedAnswer; error?: OllaError }
  | { kind: "retry_same"; reason: string };

/** One attempt at one endpoint, as the stages after sending need it. */
interface Attempt {
  endpoint: EndpointView;
  request: ForwardRequest;
  controller: AbortController;
  deadline: number | undefined;
  /** Ends the attempt at the registry and frees its admission slot (idempotent). */
  finish: () => void;
  onClientAbort: () => void;
}

class AttemptStop extends Error {
  constructor(
    readonly reason: "header_timeout" | "connect_timeout" | "body_timeout" | "deadline",
    message: string,
  ) {
    super(message);
  }
}

const SLEEPING_REGEXP = /sleeping/i;
/** Non-streamed answers up to this size are handed on whole rather than streamed. */
const MAX_WHOLE_BODY = 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;

/** Forwards requests with failover; one instance serves the whole app. */
export class Proxy {
  readonly #deps: ProxyDeps;

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
  }

  /**
   * Forwards the request, trying candidates until one answers.
   *
   * @throws {OllaError} when nothing could be sent or every attempt failed without a
   * backend answer to pass on.
   */
  async forward(request: ForwardRequest): Promise<Response> {
    const { balancer, proxy } = this.#deps;
    const { record, selection } = request;
    const maxAttempts = Math.min(selection.candidates.length, proxy.max_retries + 1);
    const tried = new Set<string>();
    let lastAnswer: FailedAnswer | undefined;
    let lastError: OllaError | undefined;
    const deadline = proxy.response_timeout > 0
      ? record.startedAt + proxy.response_timeout
      : undefined;
    while (tried.size < maxAttempts) {
      const endpoint = this.#pick(request, tried);
      if (!endpoint) break;
      tried.add(endpoint.name);
      let result = await this.#attempt(endpoint, request, deadline);
      if (result.kind === "retry_same") {
        this.#deps.logger.debug("retrying on a fresh connection", {
          request_id: record.id,
          endpoint: endpoint.name,
        });
        result = await this.#attempt(endpoint, request, deadline, true);
      }
      if (result.kind === "answered") {
        request.onServed?.(endpoint);
        return result.response;
      }
      if (result.kind === "failover") {
        record.failovers.push(`${endpoint.name}:${result.reason}`);
        lastAnswer = result.answer ?? lastAnswer;
        lastError = result.error ?? lastError;
        this.#deps.logger.info("failing over", {
          request_id: record.id,
          endpoint: endpoint.name,
          reason: result.reason,
          tried: tried.size,
        });
      }
      if (deadline !== undefined && this.#deps.clock.now() >= deadline) break;
    }
    if (lastAnswer) {
      record.fault = "upstream";
      return new Response(lastAnswer.body, {
        status: lastAnswer.status,
        headers: lastAnswer.headers,
      });
    }
    throw lastError ??
      new OllaError(503, `No endpoint could take the request (${balancer.name} balancer)`, {
        code: "no_endpoint_available",
        fault: "upstream",
        retryAfterSeconds: 1,
      });
  }

  /** The preferred endpoint while it is untried and routable, else the balancer's pick. */
  #pick(request: ForwardRequest, tried: ReadonlySet<string>): EndpointView | undefined {
    const { registry, balancer, admissions } = this.#deps;
    const now = this.#deps.clock.now();
    const pool = request.selection.candidates.filter((endpoint) =>
      !tried.has(endpoint.name) && (request.ignoreHealth || registry.isRoutable(endpoint, now))
    );
    const preferred = request.preferred;
    if (preferred && pool.includes(preferred)) return preferred;
    // With admission limits, prefer endpoints that have a free slot now.
    const free = pool.filter((endpoint) => admissions.get(endpoint.name)?.hasFreeSlot ?? true);
    return balancer.pick(free.length > 0 ? free : pool);
  }

  async #attempt(
    endpoint: EndpointView,
    request: ForwardRequest,
    deadline: number | undefined,
    isRetry = false,
  ): Promise<AttemptResult> {
    const { registry, clock, proxy } = this.#deps;
    const { record } = request;
    const admission = this.#deps.admissions.get(endpoint.name);
    let release: () => void = () => {};
    try {
      if (admission) release = await admission.acquire(request.signal);
    } catch (error) {
      if (request.signal.aborted) throw clientClosed(error);
      throw error;
    }
    registry.beginAttempt(endpoint.name);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      registry.endAttempt(endpoint.name);
      release();
    };

    const controller = new AbortController();
    const onClientAbort = () => controller.abort(request.signal.reason);
    request.signal.addEventListener("abort", onClientAbort, { once: true });
    const attempt: Attempt = { endpoint, request, controller, deadline, finish, onClientAbort };
    const started = clock.now();
    const untilDeadline = deadline === undefined ? Infinity : deadline - started;
    const deadlineFirst = untilDeadline <= proxy.response_header_timeout;
    const headerTimer = this.#deps.deadlines.after(
      Math.min(proxy.response_header_timeout, untilDeadline),
      () =>
        controller.abort(
          deadlineFirst
            ? new AttemptStop(
              "deadline",
              "The request exceeded proxy.response_timeout before the backend answered",
            )
            : new AttemptStop(
              "header_timeout",
              `Endpoint "${endpoint.name}" sent no response headers within ${proxy.response_header_timeout}ms`,
            ),
        ),
    );
    const watchdog = this.#deps.deadlines.after(proxy.connection_timeout, async () => {
      // fetch cannot tell connecting from waiting for a slow prefill, so a quiet upstream
      // is checked with a separate TCP connect: unreachable means fail over now.
      if (controller.signal.aborted) return;
      const { hostname, port } = endpoint.address;
      const reachable = await this.#deps.canConnect(
        hostname,
        port,
        Math.min(proxy.connection_timeout, 5_000),
      );
      if (!reachable && !controller.signal.aborted) {
        controller.abort(
          new AttemptStop(
            "connect_timeout",
            `Endpoint "${endpoint.name}" is not reachable (connect timeout)`,
          ),
        );
      }
    });
    const clearTimers = () => {
      headerTimer.cancel();
      watchdog.cancel();
    };

    const model = request.selection.modelFor(endpoint);
    record.endpoint = endpoint.name;
    record.backendType = endpoint.type;
    record.upstreamModel = model;
    let body = request.body;
    if (body && request.modelRange && model !== undefined && model !== record.model) {
      // An alias: the chosen endpoint gets its real model name; nothing else changes.
      body = replaceModel(body, request.modelRange, model);
    }
    const headers = upstreamRequestHeaders(request.headers, {
      ...request.forwarding,
      endpointHeaders: endpoint.outboundHeaders,
    });
    headers["x-request-id"] = record.id;

    let response: Response;
    try {
      response = await this.#deps.fetch(`${endpoint.baseUrl}${request.upstreamPath}`, {
        method: request.method,
        headers,
        body: body && body.byteLength > 0 ? body : undefined,
        signal: controller.signal,
        redirect: "manual",
      });
    } catch (error) {
      clearTimers();
      this.#release(attempt);
      record.upstreamWaitMs += clock.now() - started;
      return this.#failedToConnect(endpoint, request, error, controller.signal, isRetry);
    }
    clearTimers();
    const now = clock.now();
    record.upstreamWaitMs += now - started;
    const failure = await this.#failedAnswer(endpoint, response);
    if (failure) {
      this.#release(attempt);
      return failure;
    }
    if (response.status >= 500) {
      registry.reportFailure(endpoint.name, "server_error", `answered ${response.status}`);
      record.fault = "upstream";
    } else {
      registry.reportSuccess(endpoint.name, now - started);
    }
    record.upstreamHeadersAt = now;
    return await this.#respond(response, attempt);
  }

  /** Classifies a fetch that threw: client gone, olla-ts's own timeout, or a network failure. */
  #failedToConnect(
    endpoint: EndpointView,
    request: ForwardRequest,
    error: unknown,
    signal: AbortSignal,
    isRetry: boolean,
  ): AttemptResult {
    const { registry } = this.#deps;
    if (request.signal.aborted) {
      registry.reportAbandoned(endpoint.name);
      throw clientClosed(error);
    }
    const stop = signal.reason instanceof AttemptStop ? signal.reason : undefined;
    if (stop?.reason === "deadline") {
      registry.reportAbandoned(endpoint.name);
      throw new OllaError(504, stop.message, { code: "response_timeout", fault: "upstream" });
    }
    if (stop) {
      registry.reportFailure(
        endpoint.name,
        stop.reason === "connect_timeout" ? "connection" : "timeout",
        stop.message,
      );
      return {
        kind: "failover",
        reason: stop.reason,
        error: new OllaError(504, stop.message, { code: stop.reason, fault: "upstream" }),
      };
    }
    const detail = describeFetchError(error);
    if (!isConnectionError(error)) {
      // Not the network: fetch refused the request itself. Nothing is wrong with the endpoint.
      registry.reportAbandoned(endpoint.name);
      throw new OllaError(
        502,
        `Cannot send the request to endpoint "${endpoint.name}": ${detail}`,
        {
          code: "upstream_request_invalid",
          fault: "proxy",
          cause: error,
        },
      );
    }
    const kind = networkFailureKind(error);
    if (kind === "reset" && !isRetry) return { kind: "retry_same", reason: "connection_reset" };
    registry.reportFailure(endpoint.name, "connection", detail);
    return {
      kind: "failover",
      reason: `connection_${kind}`,
      error: new OllaError(502, `Cannot reach endpoint "${endpoint.name}": ${detail}`, {
        code: "upstream_unreachable",
        fault: "upstream",
        cause: error,
      }),
    };
  }

  /** For 429, 502, 503 and 504: records what they mean and keeps the answer for the end. */
  async #failedAnswer(
    endpoint: EndpointView,
    response: Response,
  ): Promise<AttemptResult | undefined> {
    const status = response.status;
    if (status !== 429 && status !== 502 && status !== 503 && status !== 504) return undefined;
    const { registry } = this.#deps;
    const body = await readLimited(response, MAX_ERROR_BODY);
    const headers = new Headers();
    setClientResponseHeaders(response.headers, headers);
    const answer = { status, headers, body };
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after")) ?? 1_000;
      registry.reportRateLimited(endpoint.name, retryAfterMs);
      return { kind: "failover", reason: "rate_limited", answer };
    }
    if (status === 503 && SLEEPING_REGEXP.test(new TextDecoder().decode(body))) {
      registry.reportSleeping(endpoint.name);
      return { kind: "failover", reason: "sleeping", answer };
    }
    registry.reportFailure(endpoint.name, "server_error", `answered ${status}`);
    return { kind: "failover", reason: `upstream_${status}`, answer };
  }

  /**
   * The client's answer: the backend's status and cleaned headers, and its body either
   * handed on whole (a complete, bounded, non-streamed answer) or through the stream stage.
   */
  async #respond(response: Response, attempt: Attempt): Promise<AttemptResult> {
    const contentType = response.headers.get("content-type");
    const sse = contentType?.startsWith("text/event-stream") ?? false;
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    if (!response.body || (!sse && Number.isFinite(length) && length <= MAX_WHOLE_BODY)) {
      return await this.#answerWhole(response, attempt);
    }
    return { kind: "answered", response: this.#answerStreamed(response, response.body, attempt) };
  }

  /**
   * A complete, bounded answer (LMDeploy sends a non-streamed completion in one piece once
   * generation ends) is read whole and handed on as bytes: the client sees exactly the same
   * answer, it costs far less than a stream stage, and since nothing has reached the client
   * yet, a body that breaks or stalls fails over like a refused connection instead of
   * arriving truncated.
   */
  async #answerWhole(response: Response, attempt: Attempt): Promise<AttemptResult> {
    const { clock, deadlines, registry } = this.#deps;
    const { endpoint, request, controller, deadline } = attempt;
    const { record } = request;
    const readTimeout = this.#deps.proxy.read_timeout || Infinity;
    const untilDeadline = (deadline ?? Infinity) - clock.now();
    const wait = Math.min(readTimeout, untilDeadline);
    // Built only when the timer fires: an Error captures a stack, which is costly per request.
    const stopFor = () =>
      untilDeadline <= readTimeout
        ? new AttemptStop("deadline", "The request exceeded proxy.response_timeout")
        : new AttemptStop(
          "body_timeout",
          `Endpoint "${endpoint.name}" stopped sending its answer for longer than proxy.read_timeout`,
        );
    const timer = Number.isFinite(wait)
      ? deadlines.after(wait, () => controller.abort(stopFor()))
      : undefined;
    let bytes: Bytes;
    try {
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      this.#release(attempt);
      if (request.signal.aborted) {
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
    this.#settle(attempt, "complete", bytes.byteLength);
    const observer = observerFor(response.headers.get("content-type"));
    if (observer) {
      // Usage is read after the answer has been handed to the runtime.
      record.finishesWith(
        Promise.resolve().then(() => {
          observer.push(bytes, record.upstreamHeadersAt ?? clock.now());
          record.usage = observer.finish();
        }),
      );
    }
    const answer = new Response(response.body ? bytes : null, { status: response.status });
    setClientResponseHeaders(response.headers, answer.headers);
    return { kind: "answered", response: answer };
  }

  /** An answer of unknown or large size, or a stream: through the stream stage. */
  #answerStreamed(
    response: Response,
    body: ReadableStream<Uint8Array>,
    attempt: Attempt,
  ): Response {
    const { clock, deadlines } = this.#deps;
    const { record } = attempt.request;
    const contentType = response.headers.get("content-type");
    const observer = observerFor(contentType);
    let done: () => void = () => {};
    record.finishesWith(new Promise<void>((resolve) => done = resolve));
    const stream = teeBody(body, {
      clock,
      deadlines,
      idleTimeoutMs: this.#deps.proxy.read_timeout,
      deadline: attempt.deadline,
      sse: contentType?.startsWith("text/event-stream") ?? false,
      abortUpstream: (reason) => attempt.controller.abort(reason),
      onChunk: observer ? (chunk, now) => observer.push(chunk, now) : undefined,
      onEnd: (outcome, bytes, error) => {
        this.#settle(attempt, outcome, bytes, error);
        record.usage = observer?.finish();
        done();
      },
    });
    const answer = new Response(stream, { status: response.status });
    setClientResponseHeaders(response.headers, answer.headers);
    return answer;
  }

  /** Frees the attempt's admission slot and stops listening for the client's abort. */
  #release(attempt: Attempt): void {
    attempt.request.signal.removeEventListener("abort", attempt.onClientAbort);
    attempt.finish();
  }

  /** Records how an answered attempt ended; a broken answer counts against its endpoint. */
  #settle(attempt: Attempt, outcome: StreamOutcome, bytes: number, error?: unknown): void {
    this.#release(attempt);
    const { record } = attempt.request;
    record.outcome = outcome;
    record.bytesOut = bytes;
    record.endedAt = this.#deps.clock.now();
    if (outcome === "complete" || outcome === "client_cancelled") return;
    record.error = describeFetchError(error);
    record.fault = "upstream";
    if (outcome === "upstream_error") {
      this.#deps.registry.reportFailure(
        attempt.endpoint.name,
        "server_error",
        `answer broke: ${record.error}`,
      );
    }
  }
}

/** The client went away before an answer (nginx's 499). */
function clientClosed(cause: unknown): OllaError {
  return new OllaError(499, "The client closed the request", {
    code: "client_closed",
    fault: "client",
    cause,
  });
}

/** Reads at most `limit` bytes of a body and cancels the rest. */
async function readLimited(response: Response, limit: number): Promise<Bytes> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A broken error body still tells its status; keep what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(Math.min(size, limit));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - offset);
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
