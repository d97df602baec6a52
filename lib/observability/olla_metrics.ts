/**
 * Olla's Prometheus series (names, types and labels as Olla exposes them at
 * `/internal/metrics`), read at scrape time from the state owners, so Grafana dashboards
 * and alerts built for Olla keep working. Where an Olla name already meant the same as
 * an olla-ts series (`olla_requests_total`, `olla_uptime_seconds`, `olla_info`), olla-ts
 * serves one series for both (see state_gauges.ts); everything here is new.
 *
 * Differences from Olla, on purpose: the `model` label is bounded as every olla-ts label
 * is (a model some endpoint lists or a configured alias, never a client's free text), and
 * Olla's always-empty `olla_model_endpoint_*` families are left out.
 *
 * @module
 */
import type { ModelStatistics, ModelTotals } from "./model_stats.ts";
import { securityStatus, SYSTEM_STATUS_VALUE, systemStatus } from "./olla_status.ts";
import { Gauge, type MetricsRegistry } from "./prometheus.ts";
import { successPercent, type TrafficStats } from "./traffic_stats.ts";
import type { Registry } from "../registry/registry.ts";

type Sample = [Readonly<Record<string, string>>, number];

/** What the Olla series read. */
export interface OllaMetricSources {
  registry: Registry;
  traffic: TrafficStats;
  models: ModelStatistics;
  now: () => number;
}

const HOUR_MS = 3_600_000;

/** Adds Olla's series to `metrics`. */
export function addOllaMetrics(metrics: MetricsRegistry, sources: OllaMetricSources): void {
  const { registry, traffic, models, now } = sources;
  const one = (read: () => number) => (): Sample[] => [[{}, read()]];
  const healthy = () => registry.endpoints.filter((e) => e.status === "healthy").length;
  const perEndpoint = (read: (name: string) => number) => (): Sample[] =>
    registry.endpoints.map((e) => [{ endpoint: e.name }, read(e.name)]);
  const perModel = (read: (totals: ModelTotals) => number) => (): Sample[] =>
    models.totals().map((totals) => [{ model: totals.model }, read(totals)]);
  const activeConnections = () => registry.endpoints.reduce((sum, e) => sum + e.inflight, 0);
  const modelTotals = () => models.totals();

  const series: [string, string, () => Iterable<Sample>, ("gauge" | "counter")?][] = [
    [
      "olla_system_status",
      "Overall status: 2 healthy, 1 degraded, 0 critical.",
      one(() =>
        SYSTEM_STATUS_VALUE[systemStatus(healthy(), registry.endpoints.length, traffic.proxied)]
      ),
    ],
    ["olla_endpoints_total", "Configured endpoints.", one(() => registry.endpoints.length)],
    ["olla_endpoints_healthy", "Endpoints whose status is healthy.", one(healthy)],
    [
      "olla_success_rate_percent",
      "Share of proxied requests that did not fail, percent (0 without traffic).",
      one(() => successPercent(traffic.proxied)),
    ],
    [
      "olla_avg_latency_ms",
      "Mean proxied request latency, ms.",
      one(() => traffic.proxied.avgLatencyMs),
    ],
    [
      "olla_total_traffic_bytes",
      "Bytes received and sent by proxied requests.",
      one(() => traffic.proxied.bytes),
    ],
    ["olla_active_connections", "Requests being served by endpoints.", one(activeConnections)],
    [
      "olla_failures_total",
      "Proxied requests that failed (the upstream's or olla-ts's fault).",
      one(() => traffic.proxied.failures),
      "counter",
    ],
    [
      "olla_security_violations_total",
      "Requests refused by the rate limiter or a size limit.",
      one(() => traffic.security.rateLimits + traffic.security.sizeLimits),
      "counter",
    ],
    [
      "olla_security_rate_limit_violations_total",
      "Requests refused by the rate limiter.",
      one(() => traffic.security.rateLimits),
      "counter",
    ],
    [
      "olla_security_size_limit_violations_total",
      "Requests refused for their body or header size.",
      one(() => traffic.security.sizeLimits),
      "counter",
    ],
    [
      "olla_security_blocked_ips",
      "Distinct clients the rate limiter refused.",
      one(() => traffic.security.blockedClients),
    ],
    [
      "olla_security_status",
      "1 normal, 0 elevated.",
      one(() => (securityStatus(traffic.security) === "normal" ? 1 : 0)),
    ],
    [
      "olla_endpoint_requests_total",
      "Proxied requests each endpoint answered.",
      perEndpoint((name) => traffic.endpoint(name).requests),
      "counter",
    ],
    [
      "olla_endpoint_traffic_bytes",
      "Bytes of the requests each endpoint answered.",
      perEndpoint((name) => traffic.endpoint(name).bytes),
      "counter",
    ],
    [
      "olla_endpoint_connections",
      "Requests each endpoint is serving.",
      () => registry.endpoints.map((e): Sample => [{ endpoint: e.name }, e.inflight]),
    ],
    [
      "olla_endpoint_success_rate_percent",
      "Share of each endpoint's requests that did not fail, percent.",
      perEndpoint((name) => successPercent(traffic.endpoint(name))),
    ],
    [
      "olla_endpoint_avg_latency_ms",
      "Mean latency of each endpoint's requests, ms.",
      perEndpoint((name) => traffic.endpoint(name).avgLatencyMs),
    ],
    [
      "olla_endpoint_priority",
      "Each endpoint's configured priority.",
      () => registry.endpoints.map((e): Sample => [{ endpoint: e.name }, e.config.priority]),
    ],
    [
      "olla_endpoint_models_count",
      "Models each endpoint lists.",
      () => registry.endpoints.map((e): Sample => [{ endpoint: e.name }, e.models?.size ?? 0]),
    ],
    ["olla_models_total", "Models seen in requests.", one(() => modelTotals().length)],
    [
      "olla_models_active",
      "Models requested in the last hour.",
      one(() => models.activeSince(now() - HOUR_MS)),
    ],
    [
      "olla_models_success_rate_percent",
      "Share of model requests that did not fail, percent.",
      one(() => {
        const all = modelTotals();
        const requests = all.reduce((sum, m) => sum + m.requests, 0);
        return successPercent({ requests, failures: all.reduce((sum, m) => sum + m.failures, 0) });
      }),
    ],
    [
      "olla_models_requests_total",
      "Requests naming a known model.",
      one(() => modelTotals().reduce((sum, m) => sum + m.requests, 0)),
      "counter",
    ],
    [
      "olla_models_traffic_bytes",
      "Bytes of requests naming a known model.",
      one(() => modelTotals().reduce((sum, m) => sum + m.bytes, 0)),
      "counter",
    ],
    [
      "olla_model_requests_total",
      "Requests per model.",
      perModel((m) => m.requests),
      "counter",
    ],
    [
      "olla_model_successful_requests_total",
      "Requests per model that did not fail.",
      perModel((m) => m.requests - m.failures),
      "counter",
    ],
    [
      "olla_model_failed_requests_total",
      "Requests per model that failed.",
      perModel((m) => m.failures),
      "counter",
    ],
    ["olla_model_traffic_bytes", "Bytes per model.", perModel((m) => m.bytes), "counter"],
    [
      "olla_model_success_rate_percent",
      "Share of each model's requests that did not fail, percent.",
      perModel(successPercent),
    ],
    [
      "olla_model_avg_latency_ms",
      "Mean latency of each model's requests that did not fail, ms.",
      perModel((m) => Math.round(m.avgLatencyMs)),
    ],
    [
      "olla_model_p95_latency_ms",
      "95th percentile latency per model (newest 1024 requests), ms.",
      perModel((m) => m.p95LatencyMs),
    ],
    [
      "olla_model_p99_latency_ms",
      "99th percentile latency per model (newest 1024 requests), ms.",
      perModel((m) => m.p99LatencyMs),
    ],
    // Olla exposes these and never fills them; they are here so its dashboards find them.
    ["olla_model_unique_clients", "Always 0, as in Olla.", perModel(() => 0)],
    ["olla_model_routing_hits_total", "Always 0, as in Olla.", perModel(() => 0), "counter"],
    ["olla_model_routing_misses_total", "Always 0, as in Olla.", perModel(() => 0), "counter"],
    [
      "olla_model_routing_fallbacks_total",
      "Always 0, as in Olla.",
      perModel(() => 0),
      "counter",
    ],
  ];
  for (const [name, help, read, type] of series) metrics.add(new Gauge(name, help, read, type));
}
