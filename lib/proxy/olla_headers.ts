/**
 * The `X-Olla-*` and `Server-Timing` headers of every answer (streamed, buffered and
 * olla-ts's own errors alike), set from the request record: Olla's names, and one
 * function that writes them.
 *
 * @module
 */
import type { RequestRecord } from "./request_record.ts";

/** The `X-Olla-*` headers olla-ts sets (Olla's names). */
export const OLLA = {
  endpoint: "x-olla-endpoint",
  model: "x-olla-model",
  backendType: "x-olla-backend-type",
  requestId: "x-olla-request-id",
  responseTime: "x-olla-response-time",
  routingStrategy: "x-olla-routing-strategy",
  routingDecision: "x-olla-routing-decision",
  routingReason: "x-olla-routing-reason",
  stickySession: "x-olla-sticky-session",
  stickyKeySource: "x-olla-sticky-key-source",
  sessionId: "x-olla-session-id",
  failovers: "x-olla-failovers",
  targetEndpoint: "x-olla-target-endpoint",
  mode: "x-olla-mode",
  tokenCount: "x-olla-token-count",
} as const;

/** Milliseconds with at most three decimals and no trailing zeros (`12.5`, `8`). */
function ms(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/**
 * A client-supplied string made safe for a header value: printable ASCII is kept as it is
 * (every real model id), anything else is percent-encoded, and the length is bounded.
 */
function headerSafe(value: string): string {
  const safe = /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
  return safe.length > 256 ? safe.slice(0, 256) : safe;
}

/**
 * Sets the `X-Olla-*` and `Server-Timing` headers the record supports. `routeBackendType`
 * names the backend type of a provider route that answered without reaching an endpoint.
 */
export function applyOllaHeaders(
  headers: Headers,
  record: RequestRecord,
  routeBackendType?: string,
): void {
  headers.set(OLLA.requestId, record.id);
  if (record.endpoint) headers.set(OLLA.endpoint, record.endpoint);
  if (record.model) headers.set(OLLA.model, headerSafe(record.model));
  const backendType = record.backendType ?? routeBackendType;
  if (backendType) headers.set(OLLA.backendType, backendType);
  const responseTime = record.responseTimeMs;
  if (responseTime !== undefined) headers.set(OLLA.responseTime, `${Math.round(responseTime)}ms`);
  if (record.routing) {
    headers.set(OLLA.routingStrategy, record.routing.strategy);
    headers.set(OLLA.routingDecision, record.routing.decision);
    headers.set(OLLA.routingReason, record.routing.reason);
  }
  if (record.sticky) {
    headers.set(OLLA.stickySession, record.sticky.outcome);
    if (record.sticky.source) headers.set(OLLA.stickyKeySource, record.sticky.source);
  }
  if (record.sessionHeader) headers.set(OLLA.sessionId, record.sessionHeader);
  if (record.failovers.length > 0) headers.set(OLLA.failovers, String(record.failovers.length));
  if (record.mode) headers.set(OLLA.mode, record.mode);
  const overhead = record.overheadMs;
  if (overhead !== undefined) {
    const upstream = record.upstreamWaitMs > 0 ? `, upstream;dur=${ms(record.upstreamWaitMs)}` : "";
    headers.set("server-timing", `olla;desc="proxy overhead";dur=${ms(overhead)}${upstream}`);
  }
}
