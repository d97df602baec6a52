/**
 * What olla-ts learns about one request while serving it: route, model, endpoint,
 * routing decision, failovers, timings, bytes and usage. When the answer has been sent
 * completely (for a stream, its last byte) the record is finished exactly once, and the
 * access log, metrics and statistics read it then; its fields also become the `X-Olla-*`
 * headers of the answer.
 *
 * Every field has one writer, named in its group below: the request context (server),
 * the guard, the dispatcher or the proxy. Whose fault a failure was is derived, not
 * stored twice. Authorization is not in here: it lives in the request context.
 *
 * @module
 */
import type { StreamOutcome } from "./stream_stage.ts";
import type { TranslationFallback } from "./upstream_plan.ts";
import type { UsageSummary } from "./usage.ts";
import type { Fault } from "../errors.ts";
import type { RoutingDecision } from "../routing/candidates.ts";
import type { KeySource } from "../routing/sticky.ts";

/** Sticky-session outcome, reported in `X-Olla-Sticky-Session`. */
export type StickyOutcome = "hit" | "miss" | "repin" | "disabled";

/** One abandoned attempt: the endpoint and why the request moved on from it. */
export interface Failover {
  readonly endpoint: string;
  readonly reason: string;
}

/** One request's record. */
export class RequestRecord {
  // --- written by the request context (server/request_context.ts) ----------------------

  /** Route template (`/olla/lmdeploy/v1/chat/completions`, never the raw path), for metrics. */
  route = "unmatched";
  status = 0;
  /** When the answer's headers were handed to the runtime. */
  respondedAt: number | undefined;
  /** When the answer's last byte was handed to the runtime. */
  endedAt: number | undefined;
  /** An error olla-ts answered itself: whose fault it was, its code and its message. */
  error: { readonly fault: Fault; readonly code: string; readonly message: string } | undefined;

  // --- written by the guard (server/guard.ts) ------------------------------------------

  /** Name of the inbound API key used, when `server.auth` is on. */
  keyName: string | undefined;

  // --- written by the dispatcher (proxy/dispatch.ts) -----------------------------------

  /** The model the client asked for. */
  model: string | undefined;
  /** Whether the client asked for a streamed answer. */
  stream = false;
  bytesIn = 0;
  /** Time spent reading the request body from the client, ms. */
  bodyReadMs = 0;
  routing: RoutingDecision | undefined;
  sticky: { outcome: StickyOutcome; source?: KeySource } | undefined;
  sessionHeader: string | undefined;

  // --- written by the proxy: the attempt (attempt.ts), the loop (forward.ts: failovers)
  // and the answer stage (answer.ts: outcome, bytesOut, usage, upstreamFailure) -------------

  endpoint: string | undefined;
  backendType: string | undefined;
  /** How the request reached the endpoint when adapted per endpoint (`X-Olla-Mode`). */
  mode: "passthrough" | "translation" | undefined;
  /** Why it was translated rather than passed through. */
  modeFallback: TranslationFallback | undefined;
  /** The model name sent to the endpoint (an alias resolves to it). */
  upstreamModel: string | undefined;
  /** Why each failed attempt was abandoned for the next endpoint. */
  readonly failovers: Failover[] = [];
  /** Time spent waiting for upstream response headers, all attempts together, ms. */
  upstreamWaitMs = 0;
  /** When the chosen endpoint's response headers arrived. */
  upstreamHeadersAt: number | undefined;
  outcome: StreamOutcome | undefined;
  bytesOut = 0;
  usage: UsageSummary | undefined;
  /**
   * What went wrong upstream when the client got a backend's failure rather than an
   * error of olla-ts's own: every attempt failed and the last answer was passed on, or
   * the answer broke off after it started.
   */
  upstreamFailure: string | undefined;
  #pending: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly method: string,
    readonly clientIp: string,
    readonly startedAt: number,
    /** Path with secret-looking query values redacted, for the access log. */
    readonly safePath: string,
  ) {}

  /** Whose fault a failure was, or `undefined` when the request succeeded. */
  get fault(): Fault | undefined {
    if (this.error) return this.error.fault;
    if (this.upstreamFailure !== undefined || this.status >= 500) return "upstream";
    if (this.status >= 400) return "client";
    return undefined;
  }

  /** Time olla-ts itself spent before answering: total minus upstream and body waits, ms. */
  get overheadMs(): number | undefined {
    if (this.respondedAt === undefined) return undefined;
    return Math.max(0, this.respondedAt - this.startedAt - this.upstreamWaitMs - this.bodyReadMs);
  }

  /** Time until the endpoint's headers arrived, as Olla's `X-Olla-Response-Time` reports it. */
  get responseTimeMs(): number | undefined {
    return this.upstreamHeadersAt === undefined
      ? undefined
      : this.upstreamHeadersAt - this.startedAt;
  }

  /** A handler whose answer finishes later (a stream) says when. */
  finishesWith(done: Promise<void>): void {
    this.#pending = done;
  }

  /** Resolves when the answer has been sent completely. */
  get finished(): Promise<void> {
    return this.#pending ?? Promise.resolve();
  }
}
