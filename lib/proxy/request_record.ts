/**
 * What olla-ts learns about one request while serving it: route, model, endpoint,
 * routing decision, failovers, timings, bytes and usage. Handlers fill it in; when the
 * answer has been sent completely (for a stream, its last byte) it is finished exactly
 * once, and the access log, metrics and statistics read it then. Its fields also become
 * the `X-Olla-*` headers of the answer.
 *
 * @module
 */
import type { Fault } from "../errors.ts";
import type { RoutingDecision } from "../routing/candidates.ts";
import type { KeySource } from "../routing/sticky.ts";
import type { StreamOutcome } from "./stream_stage.ts";
import type { UsageSummary } from "./usage.ts";

/** The parts of a request URL, split without parsing it. */
export interface RequestTarget {
  /** `http` or `https`. */
  readonly proto: string;
  /** Path as sent (percent-encoding kept). */
  readonly path: string;
  /** Query string with its `?`, or "". */
  readonly search: string;
}

/**
 * Splits a request URL into protocol, path and query by position. A URL built from a
 * client's absurd `Host` header (`evil:99999`) does not parse with `new URL`, so olla-ts
 * never parses the request URL.
 */
export function splitTarget(url: string): RequestTarget {
  const schemeEnd = url.indexOf("://");
  const pathStart = url.indexOf("/", schemeEnd + 3);
  const target = pathStart === -1 ? "/" : url.slice(pathStart);
  const question = target.indexOf("?");
  return {
    proto: url.slice(0, Math.max(0, schemeEnd)) || "http",
    path: question === -1 ? target : target.slice(0, question),
    search: question === -1 ? "" : target.slice(question),
  };
}

/** Sticky-session outcome, reported in `X-Olla-Sticky-Session`. */
export type StickyOutcome = "hit" | "miss" | "repin" | "disabled";

/** One request's record. */
export class RequestRecord {
  /** Route template (`/olla/lmdeploy/v1/chat/completions`, never the raw path), for metrics. */
  route = "unmatched";
  /** The provider (profile name) or `unified`, when the route is a proxy route. */
  provider: string | undefined;
  /** The model the client asked for. */
  model: string | undefined;
  /** The model name sent to the endpoint (an alias resolves to it). */
  upstreamModel: string | undefined;
  endpoint: string | undefined;
  backendType: string | undefined;
  routing: RoutingDecision | undefined;
  sticky: { outcome: StickyOutcome; source?: KeySource } | undefined;
  sessionHeader: string | undefined;
  /** Why each failed attempt was abandoned for the next endpoint. */
  readonly failovers: string[] = [];
  /** Name of the inbound API key used, when `server.auth` is on. */
  keyName: string | undefined;
  /** Whether that key is an admin key. */
  admin = false;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Time spent reading the request body from the client, ms. */
  bodyReadMs = 0;
  /** Time spent waiting for upstream response headers, all attempts together, ms. */
  upstreamWaitMs = 0;
  /** When the chosen endpoint's response headers arrived. */
  upstreamHeadersAt: number | undefined;
  /** When the answer's headers were handed to the runtime. */
  respondedAt: number | undefined;
  endedAt: number | undefined;
  outcome: StreamOutcome | undefined;
  usage: UsageSummary | undefined;
  /** Whose fault an error was (olla-ts's own errors and failed upstream answers). */
  fault: Fault | undefined;
  error: string | undefined;
  #pending: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly method: string,
    readonly clientIp: string,
    readonly startedAt: number,
    /** Path with secret-looking query values redacted, for the access log. */
    readonly safePath: string,
  ) {}

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
