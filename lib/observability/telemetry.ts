/**
 * What olla-ts learns from finished requests: Prometheus metrics, per-model statistics
 * (`/internal/stats/models`) and the access log. Every finished {@linkcode RequestRecord}
 * passes through {@linkcode Telemetry.observe} once.
 *
 * Label values are bounded: routes are templates, endpoints are configured names, and a
 * model label is a model some endpoint lists or an alias from the configuration, else
 * `unknown` (a client sending random model names cannot grow the series).
 *
 * @module
 */
import { logAccess } from "./access_log.ts";
import { ModelStatistics, type ModelStats, type ModelTotals } from "./model_stats.ts";
import { addOllaMetrics } from "./olla_metrics.ts";
import {
  Counter,
  type CounterSeries,
  Histogram,
  type HistogramSeries,
  MetricsRegistry,
} from "./prometheus.ts";
import { addStateGauges } from "./state_gauges.ts";
import { EventFeed } from "./events.ts";
import { TimeSeries } from "./timeseries.ts";
import { TrafficStats } from "./traffic_stats.ts";
import { TranslatorStats } from "./translator_stats.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Admission } from "../proxy/admission.ts";
import type { EngineLoads } from "../registry/engine_loads.ts";
import type { RequestRecord } from "../proxy/request_record.ts";
import type { Registry } from "../registry/registry.ts";

const LATENCY_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
];
const OVERHEAD_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
];

/**
 * The series one kind of request records into, resolved once per combination of route,
 * endpoint, model and status class (all bounded labels) instead of once per request.
 */
interface RequestSeries {
  readonly endpoint: string;
  readonly model: string;
  readonly requests: CounterSeries;
  readonly duration: HistogramSeries;
  readonly overhead: HistogramSeries;
  // Created on first use, so series that never recorded anything are not exposed.
  ttft?: HistogramSeries;
  promptTokens?: CounterSeries;
  completionTokens?: CounterSeries;
  estimatedCompletionTokens?: CounterSeries;
}

/** Options for {@linkcode Telemetry}. */
export interface TelemetryOptions {
  registry: Registry;
  /** Requests not yet finished (streams included). */
  inflightCount: () => number;
  admissions: ReadonlyMap<string, Admission>;
  logger: Logger;
  /** `server.request_logging`. */
  accessLog: boolean;
  /** Configured alias names, which count as known model labels. */
  aliases: Readonly<Record<string, unknown>>;
  runtime: { name: string; version: string; memory(): { rss: number } };
  /** Time for the sampled series' timer. */
  clock: Clock;
  /** The configured engine, flush profile and balancer, for `olla_info` and `/internal/status`. */
  proxy: { engine: string; profile: string; balancer: string };
  now: () => number;
  /** Log lines dropped because the log output did not keep up. */
  logLinesDropped: () => number;
  /** What engines report about their load (engine_metrics). */
  engineLoads?: EngineLoads;
}

/** Metrics, statistics and access logging for finished requests. */
export class Telemetry {
  readonly metrics = new MetricsRegistry();
  readonly startedAt: number;
  #options: TelemetryOptions;
  readonly #models = new ModelStatistics();
  /** Olla's proxy, endpoint and security statistics. */
  readonly traffic = new TrafficStats();
  /** Olla's Anthropic translator statistics. */
  readonly translators = new TranslatorStats();
  /** The last minutes of traffic, sampled (`/internal/stats/timeseries`, the status page). */
  readonly timeseries: TimeSeries;
  /** Recent fleet events (`/internal/events`, the status page). */
  readonly events: EventFeed;
  readonly #series = new Map<string, RequestSeries>();
  #requests = 0;
  #errors = 0;

  readonly #requestsTotal: Counter;
  readonly #errorsTotal: Counter;
  readonly #failovers: Counter;
  readonly #tokens: Counter;
  readonly #outcomes: Counter;
  readonly #duration: Histogram;
  readonly #ttft: Histogram;
  readonly #overhead: Histogram;

  constructor(options: TelemetryOptions) {
    this.#options = options;
    this.startedAt = options.now();
    this.events = new EventFeed(options.now);
    this.timeseries = new TimeSeries({
      clock: options.clock,
      inflight: () => ({
        total: options.inflightCount(),
        endpoints: options.registry.endpoints.map((e): [string, number] => [e.name, e.inflight]),
      }),
    });
    const m = this.metrics;
    this.#requestsTotal = m.add(
      new Counter(
        "olla_requests_total",
        "Finished requests by route, endpoint, model and status class.",
      ),
    );
    this.#errorsTotal = m.add(
      new Counter(
        "olla_errors_total",
        "Failed requests by whose fault it was: client, policy, upstream or proxy.",
      ),
    );
    this.#failovers = m.add(
      new Counter(
        "olla_failovers_total",
        "Attempts abandoned for another endpoint, by endpoint and reason.",
      ),
    );
    this.#tokens = m.add(
      new Counter(
        "olla_tokens_total",
        "Tokens by endpoint, model and type (prompt or completion); estimated=true counts stream events.",
      ),
    );
    this.#outcomes = m.add(
      new Counter("olla_response_outcomes_total", "How proxied answers ended."),
    );
    this.#duration = m.add(
      new Histogram(
        "olla_request_duration_seconds",
        "Time from request to last byte, by route and endpoint.",
        LATENCY_BUCKETS,
      ),
    );
    this.#ttft = m.add(
      new Histogram(
        "olla_time_to_first_token_seconds",
        "Time to the first token of streamed answers.",
        LATENCY_BUCKETS,
      ),
    );
    this.#overhead = m.add(
      new Histogram(
        "olla_proxy_overhead_seconds",
        "Time spent inside olla-ts before answering, excluding the upstream and the client's upload.",
        OVERHEAD_BUCKETS,
      ),
    );
    addStateGauges(m, { ...options, proxy: () => this.#options.proxy, startedAt: this.startedAt });
    addOllaMetrics(m, {
      registry: options.registry,
      traffic: this.traffic,
      models: this.#models,
      now: options.now,
    });
  }

  /** New settings from a reload: they apply to requests finishing from now on. */
  configure(settings: Pick<TelemetryOptions, "accessLog" | "aliases" | "proxy">): void {
    this.#options = { ...this.#options, ...settings };
  }

  /** Drops every series and statistic of an endpoint that was removed. */
  forgetEndpoint(name: string): void {
    this.metrics.forget("endpoint", name);
    for (const [key, series] of this.#series) {
      if (series.endpoint === name) this.#series.delete(key);
    }
    this.traffic.forget(name);
    this.#models.forgetEndpoint(name);
  }

  /** Requests and errors since start. */
  get totals(): { requests: number; errors: number } {
    return { requests: this.#requests, errors: this.#errors };
  }

  /** The model label for a request: a known model or alias, else `unknown` (`none` without a model). */
  modelLabel(record: RequestRecord): string {
    const model = record.upstreamModel ?? record.model;
    if (model === undefined) return "none";
    const known = this.#options.registry.endpointsServing(model) !== undefined ||
      this.#options.aliases[model] !== undefined;
    return known ? model : "unknown";
  }

  /** Per-model statistics, most requested first. */
  modelStats(): ModelStats[] {
    return this.#models.snapshot();
  }

  /** Per-model totals as numbers, most requested first. */
  modelTotals(): ModelTotals[] {
    return this.#models.totals();
  }

  /** Models requested since `since`. */
  activeModels(since: number): number {
    return this.#models.activeSince(since);
  }

  #seriesFor(route: string, endpoint: string, model: string, status: number): RequestSeries {
    const statusClass = `${Math.floor(status / 100)}xx`;
    const key = `${route}\u0000${endpoint}\u0000${model}\u0000${statusClass}`;
    let series = this.#series.get(key);
    if (!series) {
      series = {
        endpoint,
        model,
        requests: this.#requestsTotal.series({ route, endpoint, model, status_class: statusClass }),
        duration: this.#duration.series({ route, endpoint }),
        overhead: this.#overhead.series({ route }),
      };
      this.#series.set(key, series);
    }
    return series;
  }

  #tokenSeries(series: RequestSeries, type: string, estimated: boolean): CounterSeries {
    const { endpoint, model } = series;
    return this.#tokens.series({ endpoint, model, type, estimated: String(estimated) });
  }

  /** Records one finished request everywhere. */
  observe(record: RequestRecord): void {
    const model = this.modelLabel(record);
    const endpoint = record.endpoint ?? "none";
    const route = record.route;
    const fault = record.fault;
    const endedAt = record.endedAt ?? this.#options.now();
    const durationMs = endedAt - record.startedAt;
    this.#requests++;
    if (fault) this.#errors++;
    this.traffic.observe(record, durationMs);
    this.translators.observe(record, durationMs);
    const series = this.#seriesFor(route, endpoint, model, record.status);
    series.requests.value++;
    if (fault) this.#errorsTotal.inc({ route, fault });
    for (const failover of record.failovers) {
      this.#failovers.inc({ endpoint: failover.endpoint, reason: failover.reason });
      this.events.push("failover", `${failover.reason} (request ${record.id})`, failover.endpoint);
    }
    series.duration.observe(durationMs / 1000);
    const overhead = record.overheadMs;
    if (overhead !== undefined) series.overhead.observe(overhead / 1000);
    if (record.outcome) this.#outcomes.inc({ outcome: record.outcome });
    const usage = record.usage;
    const ttftMs = usage?.contentEvents
      ? (usage.firstTokenAt ?? record.startedAt) - record.startedAt
      : undefined;
    if (ttftMs !== undefined) {
      (series.ttft ??= this.#ttft.series({ endpoint, model })).observe(ttftMs / 1000);
    }
    if (usage?.promptTokens !== undefined) {
      series.promptTokens ??= this.#tokenSeries(series, "prompt", false);
      series.promptTokens.value += usage.promptTokens;
    }
    if (usage?.completionTokens !== undefined) {
      const tokens = usage.estimated
        ? series.estimatedCompletionTokens ??= this.#tokenSeries(series, "completion", true)
        : series.completionTokens ??= this.#tokenSeries(series, "completion", false);
      tokens.value += usage.completionTokens;
    }
    this.timeseries.record({
      endpoint: record.endpoint,
      failed: fault === "upstream" || fault === "proxy",
      ttftMs,
      completionTokens: usage?.completionTokens,
    });
    if (model !== "none" && model !== "unknown") {
      this.#models.observe({
        model,
        endpoint,
        fault,
        startedAt: record.startedAt,
        endedAt,
        ttftMs,
        usage,
        bytes: record.bytesIn + record.bytesOut,
      });
    }
    if (this.#options.accessLog) {
      logAccess(this.#options.logger, record, model, durationMs, ttftMs);
    }
  }
}
