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
import {
  failedAnswer,
  failedToConnect,
  type FailureOutcome,
  headBytes,
  malformedAnswer,
  MAX_ERROR_BODY,
  readLimited,
} from "./attempt_failures.ts";
import { AttemptStop, bodyTimeout, clientClosed } from "./attempt_stop.ts";
import type { Bytes } from "./body_read.ts";
import { replaceModel } from "./body_scan.ts";
import { upstreamRequestHeaders } from "./headers.ts";
import type { RequestRecord } from "./request_record.ts";
import { uploadBody } from "./upload_body.ts";
import type { PlanFor, UpstreamPlan } from "./upstream_plan.ts";

import type { Clock } from "../clock.ts";
import type { Deadlines } from "../deadlines.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import type { PickRequest } from "../routing/balancer.ts";
import type { Selection } from "../routing/candidates.ts";

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
  /**
   * Called with the endpoint that answered, for affinity pinning; the answer waits for a
   * promise it returns (a shared pin is stored before the client can send its next turn).
   */
  onServed?: (endpoint: EndpointView) => void | Promise<void>;
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
  /** `fetch` options for the retry after a reset: a new connection, never a pooled one. */
  freshConnection: RequestInit;
  /** Whether a TCP connection to host:port opens within the time (the connect watchdog). */
  canConnect: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  timeouts: {
    connectionMs: number;
    responseHeaderMs: number;
    /** Longest silence inside an answer; 0 disables. */
    readMs: number;
    /** `proxy.max_response_header_size`: a larger head is the endpoint's fault. */
    maxResponseHeaderBytes: number;
  };
  /** Bodies at least this large are uploaded as a stream (upload_body.ts). */
  streamUploadBytes: number;
}

/**
 * One attempt in flight, as the answer stage needs it. It lives as long as the answer
 * (a stream: minutes), so it holds what that stage reads and not the request: the body,
 * needed only until an answer is committed, is then left to be collected (measured on
 * Deno, 100 KB prompts: each live stream kept its prompt otherwise).
 */
export interface Attempt {
  endpoint: EndpointView;
  record: RequestRecord;
  /** The client's request signal (aborts when the client disconnects). */
  clientSignal: AbortSignal;
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
  | FailureOutcome
  | { kind: "answered"; response: Response }
  /** The engine lacks the native path the plan used: send again, translated. */
  | { kind: "replan" };

/** Frees the attempt's admission slot and stops listening for the client's abort. */
export function releaseAttempt(attempt: Attempt): void {
  attempt.clientSignal.removeEventListener("abort", attempt.onClientAbort);
  attempt.finish();
}

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
  // No closure here may name `request`: every closure of this function shares one
  // context, and any of them naming it would keep the body alive with the attempt.
  const clientSignal = request.signal;
  const onClientAbort = () => controller.abort(clientSignal.reason);
  clientSignal.addEventListener("abort", onClientAbort, { once: true });
  const attempt: Attempt = {
    endpoint,
    record,
    clientSignal,
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
    started,
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
  }, started);

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
    const init = {
      method: request.method,
      headers,
      body: uploadBody(body, deps.streamUploadBytes),
      signal: controller.signal,
      redirect: "manual",
      // Required by the standard for a stream body; nothing for a buffer.
      duplex: "half",
    } as RequestInit;
    // The pool may hold more connections the backend closed: the retry takes none of them.
    if (isRetry) Object.assign(init, deps.freshConnection);
    response = await deps.fetch(`${endpoint.baseUrl}${path}`, init);
  } catch (error) {
    headerTimer.cancel();
    watchdog.cancel();
    releaseAttempt(attempt);
    record.upstreamWaitMs += clock.now() - started;
    return failedToConnect(registry, endpoint, request.signal, error, controller.signal, isRetry);
  }
  headerTimer.cancel();
  watchdog.cancel();
  const now = clock.now();
  record.upstreamWaitMs += now - started;
  if (headBytes(response.headers) > timeouts.maxResponseHeaderBytes) {
    await response.body?.cancel().catch(() => {});
    releaseAttempt(attempt);
    return malformedAnswer(
      registry,
      endpoint,
      `response headers larger than proxy.max_response_header_size (${timeouts.maxResponseHeaderBytes} bytes)`,
    );
  }
  // An error answer whose body is read here may stall too: proxy.read_timeout bounds it.
  const errorBodyTimer = response.status >= 400 && timeouts.readMs > 0
    ? deps.deadlines.after(timeouts.readMs, () => controller.abort(bodyTimeout(endpoint.name)), now)
    : undefined;
  let failure: FailureOutcome | undefined;
  try {
    if (plan?.isMissingPath && (response.status === 404 || response.status === 405)) {
      const text = new TextDecoder().decode(
        await readLimited(response, MAX_ERROR_BODY, controller.signal),
      );
      if (plan.isMissingPath(response.status, text)) {
        releaseAttempt(attempt);
        return { kind: "replan" };
      }
      response = new Response(text, { status: response.status, headers: response.headers });
    }
    failure = await failedAnswer(registry, endpoint, response, controller.signal);
  } finally {
    errorBodyTimer?.cancel();
  }
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
