/**
 * Forwarding one request to the endpoints that may serve it, failing over before the
 * answer starts, never after.
 *
 * Candidates are tried one at a time (the session-affine one first, then the balancer's
 * pick among those not tried yet, preferring a free admission slot), up to
 * `proxy.max_retries` extra attempts; each attempt is sent and classified by attempt.ts
 * and its answer shaped by answer.ts. The body is replayed from the one buffer read.
 * When every attempt failed, the last backend answer is returned as it was (so its
 * status and body reach the client), or olla-ts's own 502/504.
 *
 * @module
 */
import type { Admission } from "./admission.ts";
import { type AnswerDeps, passOnFailedAnswer, respond } from "./answer.ts";
import { type AttemptDeps, type ForwardRequest, sendAttempt } from "./attempt.ts";
import type { FailedAnswer } from "./attempt_failures.ts";
import type { LiveStreams } from "./live_streams.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Deadlines } from "../deadlines.ts";
import { OllaError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import { isRoutable } from "../registry/endpoint_state.ts";
import type { Registry } from "../registry/registry.ts";
import type { Balancer } from "../routing/balancer.ts";

/** What the proxy needs from the rest of olla-ts. */
export interface ProxyDeps {
  registry: Registry;
  balancer: Balancer;
  admissions: ReadonlyMap<string, Admission>;
  clock: Clock;
  deadlines: Deadlines;
  logger: Logger;
  fetch: typeof fetch;
  /** `fetch` options for a request that must not reuse a pooled connection. @default {{}} */
  freshConnection?: RequestInit;
  /** Whether a TCP connection to host:port opens within the time (the connect watchdog). */
  canConnect: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Removes configured secrets from relayed error bodies. */
  redact?: (text: string) => string;
  /** Streams in flight, for shutdown to end. */
  live?: LiveStreams;
  /** Bodies at least this large are uploaded as a stream (upload_body.ts). @default {Infinity} */
  streamUploadBytes?: number;
  proxy: Pick<
    Config["proxy"],
    | "max_retries"
    | "response_timeout"
    | "connection_timeout"
    | "response_header_timeout"
    | "read_timeout"
    | "retry"
    | "max_response_header_size"
  >;
}

/**
 * How many endpoints one request may be tried on: `proxy.max_retries` + 1, unless Olla's
 * `proxy.retry` block is present: then 1 when disabled, `max_attempts`, or with 0 every
 * candidate once (Olla's meaning of 0).
 */
export function attemptLimit(proxy: Pick<Config["proxy"], "max_retries" | "retry">): number {
  if (!proxy.retry) return proxy.max_retries + 1;
  if (!proxy.retry.enabled) return 1;
  return proxy.retry.max_attempts === 0 ? Infinity : proxy.retry.max_attempts;
}

/** Forwards requests with failover; one instance serves the whole app. */
export class Proxy {
  readonly #deps: ProxyDeps;
  readonly #attempts: AttemptDeps;
  readonly #answers: AnswerDeps;

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
    const { registry, admissions, clock, deadlines, fetch, canConnect, proxy } = deps;
    this.#attempts = {
      registry,
      admissions,
      clock,
      deadlines,
      fetch,
      freshConnection: deps.freshConnection ?? {},
      canConnect,
      streamUploadBytes: deps.streamUploadBytes ?? Infinity,
      timeouts: {
        connectionMs: proxy.connection_timeout,
        responseHeaderMs: proxy.response_header_timeout,
        readMs: proxy.read_timeout,
        maxResponseHeaderBytes: proxy.max_response_header_size,
      },
    };
    this.#answers = {
      registry,
      clock,
      deadlines,
      readTimeoutMs: proxy.read_timeout,
      redact: deps.redact,
      live: deps.live,
    };
  }

  /**
   * Forwards the request, trying candidates until one answers.
   *
   * @throws {OllaError} when nothing could be sent or every attempt failed without a
   * backend answer to pass on.
   */
  async forward(request: ForwardRequest): Promise<Response> {
    const { balancer, proxy, clock, logger } = this.#deps;
    const { record, selection } = request;
    const maxAttempts = Math.min(selection.candidates.length, attemptLimit(proxy));
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
      if (logger.enabled("debug")) {
        logger.debug("routed", {
          request_id: record.id,
          endpoint: endpoint.name,
          balancer: balancer.name,
          routing: `${selection.routing.decision}:${selection.routing.reason}`,
          candidates: selection.candidates.map((candidate) => candidate.name).join(","),
          attempt: tried.size,
        });
      }
      let result = await sendAttempt(this.#attempts, endpoint, request, deadline, false);
      if (result.kind === "retry_same") {
        logger.debug("retrying on a fresh connection", {
          request_id: record.id,
          endpoint: endpoint.name,
        });
        result = await sendAttempt(this.#attempts, endpoint, request, deadline, true);
      }
      if (result.kind === "replan") {
        logger.info("endpoint lacks the native path; translating", {
          request_id: record.id,
          endpoint: endpoint.name,
        });
        result = await sendAttempt(this.#attempts, endpoint, request, deadline, false, true);
      }
      if (result.kind === "sent") {
        result = await respond(this.#answers, result.response, result.attempt);
      }
      if (result.kind === "answered") {
        const pinned = request.onServed?.(endpoint);
        if (pinned) await pinned;
        balancer.served?.(endpoint, request.pickRequest);
        return result.response;
      }
      if (result.kind === "failover") {
        if (
          proxy.retry?.on_connection_failure === false && result.reason.startsWith("connection")
        ) {
          throw result.error;
        }
        record.failovers.push({ endpoint: endpoint.name, reason: result.reason });
        lastAnswer = result.answer ?? lastAnswer;
        lastError = result.error ?? lastError;
        logger.info("failing over", {
          request_id: record.id,
          endpoint: endpoint.name,
          reason: result.reason,
          tried: tried.size,
        });
      }
      if (deadline !== undefined && clock.now() >= deadline) break;
    }
    if (lastAnswer) return passOnFailedAnswer(record, lastAnswer, this.#deps.redact);
    throw lastError ??
      new OllaError(503, `No endpoint could take the request (${balancer.name} balancer)`, {
        code: "no_endpoint_available",
        fault: "upstream",
        retryAfterSeconds: 1,
      });
  }

  /** The preferred endpoint while it is untried and routable, else the balancer's pick. */
  #pick(request: ForwardRequest, tried: ReadonlySet<string>): EndpointView | undefined {
    const { balancer, admissions, clock } = this.#deps;
    const now = clock.now();
    const pool = request.selection.candidates.filter((endpoint) =>
      !tried.has(endpoint.name) && (request.ignoreHealth || isRoutable(endpoint, now))
    );
    const preferred = request.preferred;
    if (preferred && pool.includes(preferred)) return preferred;
    // With admission limits, prefer endpoints that have a free slot now.
    const free = pool.filter((endpoint) => admissions.get(endpoint.name)?.hasFreeSlot ?? true);
    return balancer.pick(free.length > 0 ? free : pool, request.pickRequest);
  }
}
