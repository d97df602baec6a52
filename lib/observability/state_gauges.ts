/**
 * The gauges read at scrape time from the state owners: requests in flight, each
 * endpoint's in-flight count, status, breaker and model count, admission queues, memory
 * and uptime.
 *
 * @module
 */
import { Gauge, type MetricsRegistry } from "./prometheus.ts";
import type { Admission } from "../proxy/admission.ts";
import type { EngineLoads } from "../registry/engine_loads.ts";
import { type EndpointStatus, isRoutable, TRAFFIC_WEIGHT } from "../registry/endpoint_state.ts";
import type { Registry } from "../registry/registry.ts";
import { VERSION } from "../version.ts";

type Labels = Readonly<Record<string, string>>;

/** What the gauges read. */
export interface StateGaugeSources {
  registry: Registry;
  /** Requests not yet finished (streams included). */
  inflightCount: () => number;
  admissions: ReadonlyMap<string, Admission>;
  runtime: { name: string; version: string; memory(): { rss: number } };
  /** Olla's `olla_info` labels: the configured engine, flush profile and balancer (read per scrape). */
  proxy: () => { engine: string; profile: string; balancer: string };
  now: () => number;
  startedAt: number;
  logLinesDropped: () => number;
  /** What engines report about their load (engine_metrics). */
  engineLoads?: EngineLoads;
}

/** Adds the state gauges to `metrics`. */
export function addStateGauges(metrics: MetricsRegistry, sources: StateGaugeSources): void {
  const { registry, admissions, runtime, now } = sources;
  const statuses = Object.keys(TRAFFIC_WEIGHT) as EndpointStatus[];
  const gauges = [
    new Gauge("olla_info", "olla-ts version, runtime and proxy settings.", () => [[{
      version: VERSION,
      // Olla's label; olla-ts is not built from a commit it knows.
      commit: "unknown",
      engine: sources.proxy().engine,
      profile: sources.proxy().profile,
      balancer: sources.proxy().balancer,
      runtime: `${runtime.name} ${runtime.version}`,
    }, 1]]),
    new Gauge(
      "olla_inflight_requests",
      "Requests not yet finished (streams included).",
      () => [[{}, sources.inflightCount()]],
    ),
    new Gauge(
      "olla_endpoint_inflight_requests",
      "Requests being served by each endpoint.",
      () => registry.endpoints.map((e) => [{ endpoint: e.name }, e.inflight]),
    ),
    new Gauge(
      "olla_endpoint_up",
      "1 when the endpoint's status is healthy (Olla's meaning: busy is 0).",
      () =>
        registry.endpoints.map((e) => [
          { endpoint: e.name, status: e.status },
          e.status === "healthy" ? 1 : 0,
        ]),
    ),
    new Gauge("olla_endpoint_routable", "1 when the endpoint can take requests now.", () => {
      const at = now();
      return registry.endpoints.map((e) => [
        { endpoint: e.name, type: e.type },
        isRoutable(e, at) ? 1 : 0,
      ]);
    }),
    new Gauge(
      "olla_endpoint_status",
      "The endpoint's status (1 for the current one).",
      () =>
        registry.endpoints.flatMap((e) =>
          statuses.map((s): [Labels, number] => [
            { endpoint: e.name, status: s },
            e.status === s ? 1 : 0,
          ])
        ),
    ),
    new Gauge(
      "olla_endpoint_breaker_state",
      "Circuit breaker state (1 for the current one).",
      () => {
        const at = now();
        return registry.endpoints.flatMap((e) =>
          (["closed", "open", "half_open"] as const).map((state): [Labels, number] => [
            { endpoint: e.name, state },
            e.breaker.state(at) === state ? 1 : 0,
          ])
        );
      },
    ),
    new Gauge(
      "olla_endpoint_models",
      "Models each endpoint lists.",
      () => registry.endpoints.map((e) => [{ endpoint: e.name }, e.models?.size ?? 0]),
    ),
    new Gauge(
      "olla_engine_requests",
      "Requests the engine itself reports, by state (running, waiting), from its /metrics.",
      () =>
        registry.endpoints.flatMap((e): [Labels, number][] => {
          const load = sources.engineLoads?.get(e.name);
          return load
            ? [[{ endpoint: e.name, state: "running" }, load.running], [
              { endpoint: e.name, state: "waiting" },
              load.waiting,
            ]]
            : [];
        }),
    ),
    new Gauge(
      "olla_engine_kv_cache_usage_ratio",
      "KV-cache usage the engine reports, 0..1.",
      () =>
        registry.endpoints.flatMap((e): [Labels, number][] => {
          const usage = sources.engineLoads?.get(e.name)?.kvCacheUsage;
          return usage === undefined ? [] : [[{ endpoint: e.name }, usage]];
        }),
    ),
    new Gauge(
      "olla_admission_queue_depth",
      "Requests waiting for a slot on endpoints with max_concurrent_requests.",
      () => [...admissions].map(([endpoint, admission]) => [{ endpoint }, admission.queued]),
    ),
    new Gauge(
      "olla_process_resident_memory_bytes",
      "Resident set size.",
      () => [[{}, runtime.memory().rss]],
    ),
    new Gauge(
      "olla_log_lines_dropped_total",
      "Log lines dropped because the log output (stdout) did not keep up.",
      () => [[{}, sources.logLinesDropped()]],
      "counter",
    ),
    new Gauge(
      "olla_uptime_seconds",
      "Seconds since start.",
      () => [[{}, (now() - sources.startedAt) / 1000]],
    ),
  ];
  for (const gauge of gauges) metrics.add(gauge);
}
