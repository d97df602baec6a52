/**
 * What a failed attempt means: a fetch that threw (the client gone, olla-ts's own
 * timeout, a network failure, an answer that is not HTTP), or a backend answer that calls
 * for failover (429, 502, 503, 504, an oversized head). Each is reported to the registry
 * as what it means for the endpoint, and the answer kept in case every attempt fails.
 *
 * @module
 */
import { AttemptStop, clientClosed } from "./attempt_stop.ts";
import type { Bytes } from "./body_read.ts";
import { headerEntries, setClientResponseHeaders } from "./headers.ts";
import { OllaError } from "../errors.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import {
  describeFetchError,
  isConnectionError,
  isMalformedAnswer,
  networkFailureKind,
} from "../upstream/fetch_errors.ts";
import { parseRetryAfter } from "../upstream/retry_after.ts";

/** A failed attempt's backend answer, kept in case every attempt fails. */
export interface FailedAnswer {
  status: number;
  headers: Headers;
  body: Bytes;
}

/** What a failure calls for: another endpoint, or the same one on a fresh connection. */
export type FailureOutcome =
  | { kind: "failover"; reason: string; answer?: FailedAnswer; error?: OllaError }
  | { kind: "retry_same"; reason: string };

const SLEEPING_REGEXP = /sleeping/i;
/** How much of a failed answer's body is kept. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Classifies a fetch that threw: client gone, olla-ts's own timeout, or a network failure. */
export function failedToConnect(
  registry: Registry,
  endpoint: EndpointView,
  clientSignal: AbortSignal,
  error: unknown,
  signal: AbortSignal,
  isRetry: boolean,
): FailureOutcome {
  if (clientSignal.aborted) {
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
  if (isMalformedAnswer(error)) {
    return malformedAnswer(registry, endpoint, detail);
  }
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

/** An answer that is not readable HTTP, or whose head is too large: the endpoint's fault. */
export function malformedAnswer(
  registry: Registry,
  endpoint: EndpointView,
  detail: string,
): FailureOutcome {
  registry.reportFailure(endpoint.name, "server_error", `malformed answer: ${detail}`);
  return {
    kind: "failover",
    reason: "malformed_answer",
    error: new OllaError(
      502,
      `Endpoint "${endpoint.name}" sent an answer that is not valid HTTP: ${detail}`,
      {
        code: "upstream_malformed_answer",
        fault: "upstream",
      },
    ),
  };
}

/** Bytes of a response head as its headers give them (names, values, separators). */
export function headBytes(headers: Headers): number {
  let total = 0;
  for (const [name, value] of headerEntries(headers)) total += name.length + value.length + 4;
  return total;
}

/** For 429, 502, 503 and 504: records what they mean and keeps the answer for the end. */
export async function failedAnswer(
  registry: Registry,
  endpoint: EndpointView,
  response: Response,
  signal: AbortSignal,
): Promise<FailureOutcome | undefined> {
  const status = response.status;
  if (status !== 429 && status !== 502 && status !== 503 && status !== 504) return undefined;
  const body = await readLimited(response, MAX_ERROR_BODY, signal);
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
 * Reads at most `limit` bytes of a body and cancels the rest; when `signal` aborts, keeps
 * what arrived. The read is cancelled here: on Deno the abort alone may not end a body
 * read through a reader (see `stop` in stream_stage.ts).
 */
export async function readLimited(
  response: Response,
  limit: number,
  signal: AbortSignal,
): Promise<Bytes> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const onAbort = () => reader.cancel(signal.reason).catch(() => {});
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
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
    signal.removeEventListener("abort", onAbort);
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
