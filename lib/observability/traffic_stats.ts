/**
 * Olla's request statistics, accumulated from finished requests: totals and mean latency
 * of proxied requests, the same per endpoint (with minimum and maximum), bytes moved, and
 * the security counters (rate-limit and size-limit refusals, distinct rate-limited
 * clients). `/internal/status*` and Olla's Prometheus names read them.
 *
 * A *proxied request* is one that reached routing (it has a routing decision or an
 * endpoint); model lists, status routes and requests refused before routing are not.
 * It *failed* when it was the upstream's or olla-ts's fault, as in olla-ts's own error
 * counters; a client's 4xx is not a failure.
 *
 * @module
 */
import type { RequestRecord } from "../proxy/request_record.ts";

/** Distinct rate-limited clients remembered; beyond it the count stops growing. */
const MAX_TRACKED_CLIENTS = 10_000;

/** The percentage of requests that did not fail (0 without requests). */
export function successPercent(totals: { requests: number; failures: number }): number {
  return totals.requests === 0 ? 0 : ((totals.requests - totals.failures) / totals.requests) * 100;
}

/** Counters of one group of requests (all proxied requests, or one endpoint's). */
export class RequestTotals {
  requests = 0;
  failures = 0;
  bytes = 0;
  #latencySumMs = 0;
  minLatencyMs = 0;
  maxLatencyMs = 0;

  add(latencyMs: number, bytes: number, failed: boolean): void {
    this.requests++;
    if (failed) this.failures++;
    this.bytes += bytes;
    this.#latencySumMs += latencyMs;
    this.minLatencyMs = this.requests === 1 ? latencyMs : Math.min(this.minLatencyMs, latencyMs);
    this.maxLatencyMs = Math.max(this.maxLatencyMs, latencyMs);
  }

  /** Mean latency in whole ms, 0 without requests. */
  get avgLatencyMs(): number {
    return this.requests === 0 ? 0 : Math.round(this.#latencySumMs / this.requests);
  }
}

/** Refusals Olla counts as security violations. */
export interface SecurityCounters {
  rateLimits: number;
  sizeLimits: number;
  /** Distinct client addresses refused by the rate limiter. */
  blockedClients: number;
}

const SIZE_LIMIT_CODES = new Set(["request_too_large", "headers_too_large"]);

/** The statistics, fed one finished request at a time. */
export class TrafficStats {
  readonly proxied = new RequestTotals();
  readonly #endpoints = new Map<string, RequestTotals>();
  readonly #rateLimitedClients = new Set<string>();
  #rateLimits = 0;
  #sizeLimits = 0;

  observe(record: RequestRecord, latencyMs: number): void {
    const code = record.error?.code;
    if (code === "rate_limited") {
      this.#rateLimits++;
      if (this.#rateLimitedClients.size < MAX_TRACKED_CLIENTS) {
        this.#rateLimitedClients.add(record.clientIp);
      }
    } else if (code !== undefined && SIZE_LIMIT_CODES.has(code)) {
      this.#sizeLimits++;
    }
    if (record.routing === undefined && record.endpoint === undefined) return;
    const fault = record.fault;
    const failed = fault === "upstream" || fault === "proxy";
    const bytes = record.bytesIn + record.bytesOut;
    this.proxied.add(latencyMs, bytes, failed);
    if (record.endpoint === undefined) return;
    let totals = this.#endpoints.get(record.endpoint);
    if (!totals) this.#endpoints.set(record.endpoint, totals = new RequestTotals());
    totals.add(latencyMs, bytes, failed);
  }

  /** Forgets a removed endpoint's totals. */
  forget(endpoint: string): void {
    this.#endpoints.delete(endpoint);
  }

  /** One endpoint's totals (empty ones when it has served nothing). */
  endpoint(name: string): RequestTotals {
    return this.#endpoints.get(name) ?? new RequestTotals();
  }

  get security(): SecurityCounters {
    return {
      rateLimits: this.#rateLimits,
      sizeLimits: this.#sizeLimits,
      blockedClients: this.#rateLimitedClients.size,
    };
  }
}
