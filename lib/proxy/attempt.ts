/**
 * One attempt at one endpoint: take an admission slot, send the request with its
 * response-header timeout and connect watchdog, and classify what came back. A refused
 * or reset connection, a connect or response-header timeout, a 502/503/504 and a 429
 * are failovers (a reset is first retried once on the same endpoint: it is usually a
 * pooled keep-alive connection the backend closed, and LMDeploy closes idle ones after
 * 5 s); each is reported to the registry as what it means (offline, asleep, rate-limited,
 * failing). Anything else is an answer for the answer stage (answer.ts).
 *
 * @module
 */
import type { Admission } from "./admission.ts";
import type { Bytes } from "./body_read.ts";
import { replaceModel } from "./body_scan.ts";
import { setClientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import type { RequestRecord } from "./request_record.ts";
import type { PlanFor, UpstreamPlan } from "./upstream_plan.ts";
import type { Clock } from "../clock.ts";
import type { Deadlines } from "../deadlines.ts";
import { OllaError } from "../errors.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import type { PickRequest } from "../routing/balancer.ts";
import type { Selection } from "../routing/candidates.ts";
import {
  describeFetchError,
  isConnectionError,
  networkFailureKind,
} from "../upstream/fetch_errors.ts";
import { parseRetryAfter } from "../upstream/retry_after.ts";

/** One request to forward. */
export interface ForwardRequest {
  record: RequestRecord;
  method: string;
  /**
   * Path and query to request from the endpoint, starting with `/`; a function where it
   * depends on the endpoint (a unified route reaching Lemonade's `/api/v1/...`).
   */
  upstreamPath: string | ((endpoint: EndpointView) => string);
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
  /** A request adapted per endpoint (upstream_plan.ts); replaces `upstreamPath` and `body`. */
  planFor?: PlanFor;
  /** What the balancer may know of the request (the cache-aware one reads the prompt). */
  pickRequest?: PickRequest;
}

/** What an attempt needs from the rest of olla-ts. */
export interface AttemptDeps {
  registry: Registry;
  admissions: ReadonlyMap<string, Admission>;
  clock: Clock;
  deadlines: Deadlines;
  fetch: typeof fetch;
  /** Whether a TCP connection to host:port opens within the time (the connect watchdog). */
  canConnect: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  timeouts: {
    connectionMs: number;
    responseHeaderMs: number;
    /** Longest silence inside an answer; 0 disables. */
    readMs: number;
  };
}

/** A failed attempt's backend answer, kept in case every attempt fails. */
export interface FailedAnswer {
  status: number;
  headers: Headers;
  body: Bytes;
}

/** One attempt in flight, as the answer stage needs it. */
export interface Attempt {
  endpoint: EndpointView;
  request: ForwardRequest;
  controller: AbortController;
  /** Absolute time (clock ms) the whole request must end by. */
  deadline: number | undefined;
  /** Ends the attempt at the registry and frees its admission slot (idempotent). */
  finish: () => void;
  onClientAbort: () => void;
  /** The request as adapted for this endpoint, when it is. */
  plan: UpstreamPlan | undefined;
  /** When the request was sent to the endpoint (clock ms). */
  startedAt: number;
}

/** What an attempt came to. */
export type AttemptResult =
  | { kind: "answered"; response: Response }
  | { kind: "failover"; reason: string; answer?: FailedAnswer; error?: OllaError }
  | { kind: "retry_same"; reason: string }
  /** The engine lacks the native path the plan used: send again, translated. */
  | { kind: "replan" };

/** Why olla-ts itself stopped an attempt. */
export class AttemptStop extends Error {
  constructor(
    readonly reason: "header_timeout" | "connect_timeout" | "body_timeout" | "deadline",
    message: string,
  ) {
    super(message);
  }
}

/** The client went away before an answer (nginx's 499). */
export function clientClosed(cause: unknown): OllaError {
  return new OllaError(499, "The client closed the request", {
    code: "client_closed",
    fault: "client",
    cause,
  });
}

/** Frees the attempt's admission slot and stops listening for the client's abort. */
export function releaseAttempt(attempt: Attempt): void {
  attempt.request.signal.removeEventListener("abort", attempt.onClientAbort);
  attempt.finish();
}

const SLEEPING_REGEXP = /sleeping/i;
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Sends the request to `endpoint` and classifies the outcome. An answer to hand on is
 * returned with its attempt still open (its slot is held until the answer ends).
 */
export async function sendAttempt(
  deps: AttemptDeps,
  endpoint: EndpointView,
  request: ForwardRequest,
  deadline: number | undefined,
  isRetry: boolean,
  translate = false,
): Promise<AttemptResult | { kind: "sent"; response: Response; attempt: Attempt }> {
  const { registry, clock, timeouts } = deps;
  const { record } = request;
  // Planned before a slot is taken: a request that cannot be adapted fails here, holding nothing.
  const model = request.selection.modelFor(endpoint);
  const plan = request.planFor?.(endpoint, model, translate);
  const admission = deps.admissions.get(endpoint.name);
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
  const attempt: Attempt = {
    endpoint,
    request,
    controller,
    deadline,
    finish,
    onClientAbort,
    plan,
    startedAt: clock.now(),
  };
  const started = attempt.startedAt;
  const untilDeadline = deadline === undefined ? Infinity : deadline - started;
  const deadlineFirst = untilDeadline <= timeouts.responseHeaderMs;
  const headerTimer = deps.deadlines.after(
    Math.min(timeouts.responseHeaderMs, untilDeadline),
    () =>
      controller.abort(
        deadlineFirst
          ? new AttemptStop(
            "deadline",
            "The request exceeded proxy.response_timeout before the backend answered",
          )
          : new AttemptStop(
            "header_timeout",
            `Endpoint "${endpoint.name}" sent no response headers within ${timeouts.responseHeaderMs}ms`,
          ),
      ),
  );
  const watchdog = deps.deadlines.after(timeouts.connectionMs, async () => {
    // fetch cannot tell connecting from waiting for a slow prefill, so a quiet upstream
    // is checked with a separate TCP connect: unreachable means fail over now.
    if (controller.signal.aborted) return;
    const { hostname, port } = endpoint.address;
    const reachable = await deps.canConnect(
      hostname,
      port,
      Math.min(timeouts.connectionMs, 5_000),
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

  record.endpoint = endpoint.name;
  record.backendType = endpoint.type;
  record.upstreamModel = model;
  record.mode = plan?.mode;
  record.modeFallback = plan?.fallback;
  let body = plan ? plan.body : request.body;
  if (!plan && body && request.modelRange && model !== undefined && model !== record.model) {
    // An alias: the chosen endpoint gets its real model name; nothing else changes.
    body = replaceModel(body, request.modelRange, model);
  }
  const headers = upstreamRequestHeaders(request.headers, {
    ...request.forwarding,
    endpointHeaders: plan?.headers
      ? [...Object.entries(plan.headers), ...endpoint.outboundHeaders]
      : endpoint.outboundHeaders,
  });
  headers["x-request-id"] = record.id;

  let response: Response;
  try {
    const path = plan
      ? plan.path
      : typeof request.upstreamPath === "string"
      ? request.upstreamPath
      : request.upstreamPath(endpoint);
    response = await deps.fetch(`${endpoint.baseUrl}${path}`, {
      method: request.method,
      headers,
      body: body && body.byteLength > 0 ? body : undefined,
      signal: controller.signal,
      redirect: "manual",
    });
  } catch (error) {
    headerTimer.cancel();
    watchdog.cancel();
    releaseAttempt(attempt);
    record.upstreamWaitMs += clock.now() - started;
    return failedToConnect(registry, endpoint, request, error, controller.signal, isRetry);
  }
  headerTimer.cancel();
  watchdog.cancel();
  const now = clock.now();
  record.upstreamWaitMs += now - started;
  if (plan?.isMissingPath && (response.status === 404 || response.status === 405)) {
    const text = new TextDecoder().decode(await readLimited(response, MAX_ERROR_BODY));
    if (plan.isMissingPath(response.status, text)) {
      releaseAttempt(attempt);
      return { kind: "replan" };
    }
    response = new Response(text, { status: response.status, headers: response.headers });
  }
  const failure = await failedAnswer(registry, endpoint, response);
  if (failure) {
    releaseAttempt(attempt);
    return failure;
  }
  if (response.status >= 500) {
    registry.reportFailure(endpoint.name, "server_error", `answered ${response.status}`);
  } else {
    registry.reportSuccess(endpoint.name, now - started);
  }
  record.upstreamHeadersAt = now;
  return { kind: "sent", response, attempt };
}

/** Classifies a fetch that threw: client gone, olla-ts's own timeout, or a network failure. */
function failedToConnect(
  registry: Registry,
  endpoint: EndpointView,
  request: ForwardRequest,
  error: unknown,
  signal: AbortSignal,
  isRetry: boolean,
): AttemptResult {
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
      { code: "upstream_request_invalid", fault: "proxy", cause: error },
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
async function failedAnswer(
  registry: Registry,
  endpoint: EndpointView,
  response: Response,
): Promise<AttemptResult | undefined> {
  const status = response.status;
  if (status !== 429 && status !== 502 && status !== 503 && status !== 504) return undefined;
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
