/**
 * The bodies of `/internal/status` and `/internal/status/endpoints`: Olla's shape (its
 * keys, its text formats, its ordering and verdicts) with olla-ts's own fields beside
 * them where the names do not clash. Where they clash Olla's meaning wins, so a script
 * written for Olla reads these answers unchanged:
 *
 * - `success_rate` is Olla's text (`"99.5%"`, `"N/A"` before traffic);
 * - `last_model_sync` is relative (`"2m ago"`), with `last_model_sync_at` beside it;
 * - `requests` in `/internal/status` counts requests the endpoint answered, while in
 *   `/internal/status/endpoints` (olla-ts's field, beside Olla's `request_count`) it counts
 *   attempts, failed-over ones included.
 *
 * No secret reaches these answers: URLs are shown without credentials or query, header
 * values never appear, and error texts pass through the redactor.
 *
 * @module
 */
import { displayUrl, endpointIds } from "./endpoint_ids.ts";
import type { Clock } from "../../clock.ts";
import {
  agoText,
  bytesText,
  isoOrUndefined,
  latencyText,
  percentText,
  untilText,
  uptimeText,
} from "../../observability/olla_text.ts";
import { securityStatus, systemStatus } from "../../observability/olla_status.ts";
import { type RequestTotals, successPercent } from "../../observability/traffic_stats.ts";
import type { Telemetry } from "../../observability/telemetry.ts";
import type { Admission } from "../../proxy/admission.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import { type EngineLoads, estimatedLoad, isFresh } from "../../registry/engine_loads.ts";
import type { Registry } from "../../registry/registry.ts";
import { NAME, VERSION } from "../../version.ts";

/** What the status bodies read. */
export interface StatusSources {
  registry: Registry;
  telemetry: Telemetry;
  inflight: { readonly count: number };
  admissions: ReadonlyMap<string, Admission>;
  clock: Clock;
  redact: (text: string) => string;
  runtime: { name: string; version: string };
  proxySettings: { engine: string; profile: string; balancer: string };
  /** What engines report about their load (engine_metrics), and when it counts as stale. */
  engineLoads: EngineLoads;
  engineMaxAgeMs: number;
}

/** Go's zero time, which Olla prints for a model list it has never read. */
const NEVER = "0001-01-01T00:00:00Z";

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** Olla's list order: priority high to low, healthy first, then name, then id. */
function byOllaOrder(ids: Map<string, string>) {
  return (a: EndpointView, b: EndpointView): number =>
    b.config.priority - a.config.priority ||
    Number(b.status === "healthy") - Number(a.status === "healthy") ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    ((ids.get(a.name) ?? "") < (ids.get(b.name) ?? "") ? -1 : 1);
}

/** The latency keys Olla adds once an endpoint has answered a request. */
function latencyFields(totals: RequestTotals) {
  return totals.requests === 0 ? { min_latency_ms: 0, max_latency_ms: 0 } : {
    avg_latency_ms: totals.avgLatencyMs,
    min_latency_ms: Math.round(totals.minLatencyMs),
    max_latency_ms: Math.round(totals.maxLatencyMs),
  };
}

/** `/internal/status`'s comma-joined issue list for one endpoint. */
function statusIssues(endpoint: EndpointView, totals: RequestTotals): string {
  const issues: string[] = [];
  if (endpoint.consecutiveProbeFailures > 3) issues.push("consecutive failures");
  if (totals.requests > 10 && successPercent(totals) < 90) issues.push("low success rate");
  if (totals.avgLatencyMs > 5000) issues.push("high latency");
  if (endpoint.status === "offline" || endpoint.status === "unhealthy") issues.push("unavailable");
  return issues.join(", ");
}

/** `/internal/status/endpoints`'s one-word issue, or `undefined`. */
function endpointIssue(endpoint: EndpointView, totals: RequestTotals): string | undefined {
  if (endpoint.status === "healthy" && endpoint.consecutiveProbeFailures === 0) return undefined;
  if (endpoint.status === "offline" || endpoint.status === "unhealthy") return "unavailable";
  if (endpoint.consecutiveProbeFailures > 3) return "unstable";
  if (totals.requests > 10 && successPercent(totals) < 90) return "low success rate";
  return undefined;
}

function successText(totals: RequestTotals): string {
  return totals.requests === 0 ? "N/A" : percentText(successPercent(totals));
}

/** The body of `/internal/status`. */
export function statusBody(sources: StatusSources) {
  const { registry, telemetry, clock } = sources;
  const now = clock.now();
  const all = registry.endpoints;
  const ids = endpointIds(all);
  const healthy = all.filter((endpoint) => endpoint.status === "healthy").length;
  const proxied = telemetry.traffic.proxied;
  const security = telemetry.traffic.security;
  const verdict = systemStatus(healthy, all.length, proxied);
  const startedAt = new Date(telemetry.startedAt).toISOString();
  return {
    timestamp: new Date(now).toISOString(),
    proxy: sources.proxySettings,
    system: {
      start_time: startedAt,
      status: verdict,
      endpoints_up: `${healthy}/${all.length}`,
      success_rate: successText(proxied),
      avg_latency: latencyText(proxied.avgLatencyMs),
      total_traffic: bytesText(proxied.bytes),
      uptime: uptimeText(now - telemetry.startedAt),
      version: VERSION,
      commit: "unknown",
      active_connections: all.reduce((sum, endpoint) => sum + endpoint.inflight, 0),
      security_violations: security.rateLimits + security.sizeLimits,
      total_requests: proxied.requests,
      total_failures: proxied.failures,
      has_traffic: proxied.requests > 0,
    },
    security: {
      status: securityStatus(security),
      blocked_ips: security.blockedClients,
      violations: { rate_limits: security.rateLimits, size_limits: security.sizeLimits },
    },
    endpoints: [...all].sort(byOllaOrder(ids)).map((endpoint) => {
      const totals = telemetry.traffic.endpoint(endpoint.name);
      return {
        id: ids.get(endpoint.name),
        name: endpoint.name,
        url: displayUrl(endpoint.config.url),
        status: endpoint.status,
        priority: endpoint.config.priority,
        connections: endpoint.inflight,
        requests: totals.requests,
        success_rate: percentText(successPercent(totals)),
        avg_latency: latencyText(totals.avgLatencyMs),
        traffic: bytesText(totals.bytes),
        last_check: agoText(endpoint.lastCheckAt, now),
        next_check: untilText(endpoint.nextCheckAt, now),
        issues: statusIssues(endpoint, totals),
        models: {
          last_updated: iso(endpoint.modelsUpdatedAt) ?? NEVER,
          count: endpoint.models?.size ?? 0,
        },
        health_check_at: isoOrUndefined(endpoint.lastCheckAt),
        next_check_at: isoOrUndefined(endpoint.nextCheckAt),
        ...latencyFields(totals),
        // olla-ts's own
        type: endpoint.type,
        routable: registry.isRoutable(endpoint, now),
        breaker: endpoint.breaker.state(now),
      };
    }),
    // olla-ts's own
    status: verdict,
    name: NAME,
    version: VERSION,
    runtime: `${sources.runtime.name} ${sources.runtime.version}`,
    started_at: startedAt,
    uptime_seconds: Math.round((now - telemetry.startedAt) / 1000),
    totals: {
      ...telemetry.totals,
      inflight: sources.inflight.count,
      endpoints: all.length,
      routable_endpoints: all.filter((endpoint) => registry.isRoutable(endpoint, now)).length,
      models: [...registry.modelIds()].length,
    },
  };
}

/** The engine's own report of its load, or `null` when it reports none. */
function engineEntry(sources: StatusSources, endpoint: EndpointView, now: number) {
  const load = sources.engineLoads.get(endpoint.name);
  if (!load) return null;
  return {
    running: load.running,
    waiting: load.waiting,
    kv_cache_usage: load.kvCacheUsage ?? null,
    read_at: iso(load.readAt),
    changed_at: iso(load.changedAt),
    fresh: isFresh(load, now, sources.engineMaxAgeMs),
    estimated_load: estimatedLoad(endpoint, load, now, sources.engineMaxAgeMs),
    error: load.error === undefined ? null : sources.redact(load.error),
  };
}

/** One endpoint in `/internal/status/endpoints`. */
function endpointEntry(sources: StatusSources, endpoint: EndpointView, id: string | undefined) {
  const { registry, telemetry, clock } = sources;
  const now = clock.now();
  const totals = telemetry.traffic.endpoint(endpoint.name);
  const admission = sources.admissions.get(endpoint.name);
  const checked = endpoint.lastCheckAt !== undefined;
  return {
    id,
    name: endpoint.name,
    type: endpoint.type,
    status: endpoint.status,
    url: displayUrl(endpoint.config.url),
    priority: endpoint.config.priority,
    model_count: endpoint.models?.size ?? 0,
    request_count: totals.requests,
    success_rate: successText(totals),
    health_check: checked ? agoText(endpoint.lastCheckAt, now) : "",
    response_time: checked && (endpoint.lastProbeLatencyMs ?? 0) > 0
      ? latencyText(endpoint.lastProbeLatencyMs as number)
      : undefined,
    last_model_sync: endpoint.modelsUpdatedAt === undefined
      ? undefined
      : agoText(endpoint.modelsUpdatedAt, now),
    issues: endpointIssue(endpoint, totals),
    ...latencyFields(totals),
    active_connections: endpoint.inflight,
    health_check_at: isoOrUndefined(endpoint.lastCheckAt),
    next_check_at: isoOrUndefined(endpoint.nextCheckAt),
    last_model_sync_at: isoOrUndefined(endpoint.modelsUpdatedAt),
    // olla-ts's own
    engine: engineEntry(sources, endpoint, now),
    configured_type: endpoint.config.type,
    source: endpoint.source,
    draining: endpoint.draining,
    held: endpoint.held,
    routable: registry.isRoutable(endpoint, now),
    sleeping: endpoint.status === "sleeping",
    breaker: {
      state: endpoint.breaker.state(now),
      consecutive_failures: endpoint.breaker.failures,
      retry_in_ms: Math.round(endpoint.breaker.remainingMs(now)),
    },
    weight: endpoint.config.weight,
    inflight: endpoint.inflight,
    queue: admission
      ? {
        max_concurrent: endpoint.config.max_concurrent_requests,
        active: admission.active,
        waiting: admission.queued,
      }
      : null,
    rate_limited_until: endpoint.rateLimitedUntil > now ? iso(endpoint.rateLimitedUntil) : null,
    last_check: iso(endpoint.lastCheckAt),
    next_check: iso(endpoint.nextCheckAt),
    last_probe_latency_ms: endpoint.lastProbeLatencyMs === undefined
      ? null
      : Math.round(endpoint.lastProbeLatencyMs),
    last_error: endpoint.lastError === undefined ? null : sources.redact(endpoint.lastError),
    requests: endpoint.requests,
    failures: endpoint.failures,
    latency_ms: endpoint.latencyMs === undefined
      ? null
      : Math.round(endpoint.latencyMs * 100) / 100,
  };
}

/** The body of `/internal/status/endpoints`. */
export function endpointsBody(sources: StatusSources) {
  const { registry, clock } = sources;
  const now = clock.now();
  const all = registry.endpoints;
  const ids = endpointIds(all);
  return {
    timestamp: new Date(now).toISOString(),
    endpoints: [...all].sort(byOllaOrder(ids)).map((endpoint) =>
      endpointEntry(sources, endpoint, ids.get(endpoint.name))
    ),
    total_count: all.length,
    healthy_count: all.filter((endpoint) => endpoint.status === "healthy").length,
    routable_count: all.filter((endpoint) => registry.isRoutable(endpoint, now)).length,
  };
}
