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
import type { Admission } from "../proxy/admission.ts";
import type { Config } from "../config/schema.ts";
import type { Fault } from "../errors.ts";
import type { InflightTracker } from "../server/inflight.ts";
import type { Logger } from "../log.ts";
import { Counter, Gauge, Histogram, MetricsRegistry } from "./prometheus.ts";
import { type EndpointStatus, TRAFFIC_WEIGHT } from "../registry/endpoint_state.ts";
import { type Registry } from "../registry/registry.ts";
import type { RequestRecord } from "../proxy/request_record.ts";
import { NAME, VERSION } from "../version.ts";

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
const RESERVOIR = 1024;

type Labels = Readonly<Record<string, string>>;

/** Per-model numbers for `/internal/stats/models`. */
export interface ModelStats {
  model: string;
  requests: number;
  errors: number;
  latency_ms: Percentiles;
  ttft_ms: Percentiles;
  prompt_tokens: number;
  completion_tokens: number;
  /** Completion tokens counted from stream events because the answer carried no usage. */
  estimated_completion_tokens: number;
  tokens_per_second: number | null;
  endpoints: Record<string, number>;
}

/** p50, p95 and p99 of a sample, `null` when empty. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** A bounded sample of recent values (the newest {@linkcode RESERVOIR}). */
class Sample {
  readonly #values: number[] = [];
  #next = 0;

  add(value: number): void {
    if (this.#values.length < RESERVOIR) this.#values.push(value);
    else this.#values[this.#next++ % RESERVOIR] = value;
  }

  percentiles(): Percentiles {
    if (this.#values.length === 0) return { p50: null, p95: null, p99: null };
    const sorted = [...this.#values].sort((a, b) => a - b);
    const at = (q: number) =>
      Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000) / 1000;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  }
}

class ModelAccumulator {
  requests = 0;
  errors = 0;
  promptTokens = 0;
  completionTokens = 0;
  estimatedTokens = 0;
  generationSeconds = 0;
  generatedTokens = 0;
  readonly latency = new Sample();
  readonly ttft = new Sample();
  readonly endpoints: Record<string, number> = {};
}

/** Options for {@linkcode Telemetry}. */
export interface TelemetryOptions {
  config: Config;
  registry: Registry;
  inflight: InflightTracker;
  admissions: ReadonlyMap<string, Admission>;
  logger: Logger;
  runtime: { name: string; version: string; memory(): { rss: number } };
  now: () => number;
}

/** Metrics, statistics and access logging for finished requests. */
export class Telemetry {
  readonly metrics = new MetricsRegistry();
  readonly startedAt: number;
  readonly #options: TelemetryOptions;
  readonly #models = new Map<string, ModelAccumulator>();
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
    const { registry, inflight, admissions, runtime } = options;
    const m = this.metrics;
    m.add(
      new Gauge(
        "olla_info",
        "olla-ts version and runtime.",
        () => [[{ version: VERSION, runtime: `${runtime.name} ${runtime.version}` }, 1]],
      ),
    );
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
    m.add(
      new Gauge(
        "olla_inflight_requests",
        "Requests not yet finished (streams included).",
        () => [[{}, inflight.count]],
      ),
    );
    m.add(
      new Gauge(
        "olla_endpoint_inflight_requests",
        "Requests being served by each endpoint.",
        () => registry.endpoints.map((e) => [{ endpoint: e.name }, e.inflight]),
      ),
    );
    m.add(
      new Gauge(
        "olla_endpoint_up",
        "1 when the endpoint can take requests now.",
        () =>
          registry.endpoints.map((
            e,
          ) => [{ endpoint: e.name, type: e.type }, registry.isRoutable(e) ? 1 : 0]),
      ),
    );
    const statuses = Object.keys(TRAFFIC_WEIGHT) as EndpointStatus[];
    m.add(
      new Gauge(
        "olla_endpoint_status",
        "The endpoint's status (1 for the current one).",
        () =>
          registry.endpoints.flatMap((e) =>
            statuses.map((
              s,
            ): [Labels, number] => [{ endpoint: e.name, status: s }, e.status === s ? 1 : 0])
          ),
      ),
    );
    m.add(
      new Gauge(
        "olla_endpoint_breaker_state",
        "Circuit breaker state (1 for the current one).",
        () => {
          const now = options.now();
          return registry.endpoints.flatMap((e) =>
            (["closed", "open", "half_open"] as const).map((state): [Labels, number] => [
              { endpoint: e.name, state },
              e.breaker.state(now) === state ? 1 : 0,
            ])
          );
        },
      ),
    );
    m.add(
      new Gauge(
        "olla_endpoint_models",
        "Models each endpoint lists.",
        () => registry.endpoints.map((e) => [{ endpoint: e.name }, e.models?.size ?? 0]),
      ),
    );
    m.add(
      new Gauge(
        "olla_admission_queue_depth",
        "Requests waiting for a slot on endpoints with max_concurrent_requests.",
        () => [...admissions].map(([endpoint, admission]) => [{ endpoint }, admission.queued]),
      ),
    );
    m.add(
      new Gauge(
        "olla_process_resident_memory_bytes",
        "Resident set size.",
        () => [[{}, runtime.memory().rss]],
      ),
    );
    m.add(
      new Gauge(
        "olla_uptime_seconds",
        "Seconds since start.",
        () => [[{}, (options.now() - this.startedAt) / 1000]],
      ),
    );
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
      this.#options.config.model_aliases[model] !== undefined;
    return known ? model : "unknown";
  }

  /** Whose fault a finished request's failure was, or `undefined` when it succeeded. */
  static faultOf(record: RequestRecord): Fault | undefined {
    if (record.fault) return record.fault;
    if (record.status >= 500) return "upstream";
    if (record.status >= 400) return "client";
    return undefined;
  }

  /** Records one finished request everywhere. */
  observe(record: RequestRecord): void {
    const model = this.modelLabel(record);
    const endpoint = record.endpoint ?? "none";
    const statusClass = `${Math.floor(record.status / 100)}xx`;
    const fault = Telemetry.faultOf(record);
    const durationMs = (record.endedAt ?? this.#options.now()) - record.startedAt;
    this.#requests++;
    if (fault) this.#errors++;
    this.#requestsTotal.inc({ route: record.route, endpoint, model, status_class: statusClass });
    if (fault) this.#errorsTotal.inc({ route: record.route, fault });
    for (const failover of record.failovers) {
      const [name, reason] = failover.split(":");
      this.#failovers.inc({ endpoint: name, reason });
    }
    this.#duration.observe({ route: record.route, endpoint }, durationMs / 1000);
    const overhead = record.overheadMs;
    if (overhead !== undefined) this.#overhead.observe({ route: record.route }, overhead / 1000);
    if (record.outcome) this.#outcomes.inc({ outcome: record.outcome });
    const usage = record.usage;
    const ttftMs = usage?.contentEvents
      ? (usage.firstTokenAt ?? record.startedAt) - record.startedAt
      : undefined;
    if (ttftMs !== undefined) this.#ttft.observe({ endpoint, model }, ttftMs / 1000);
    if (usage?.promptTokens !== undefined) {
      this.#tokens.inc({ endpoint, model, type: "prompt", estimated: "false" }, usage.promptTokens);
    }
    if (usage?.completionTokens !== undefined) {
      this.#tokens.inc(
        { endpoint, model, type: "completion", estimated: String(usage.estimated) },
        usage.completionTokens,
      );
    }
    if (model !== "none" && model !== "unknown") {
      let stats = this.#models.get(model);
      if (!stats) this.#models.set(model, stats = new ModelAccumulator());
      stats.requests++;
      if (fault === "upstream" || fault === "proxy") stats.errors++;
      stats.latency.add(durationMs);
      if (ttftMs !== undefined) stats.ttft.add(ttftMs);
      stats.endpoints[endpoint] = (stats.endpoints[endpoint] ?? 0) + 1;
      if (usage?.promptTokens !== undefined) stats.promptTokens += usage.promptTokens;
      if (usage?.completionTokens !== undefined) {
        if (usage.estimated) stats.estimatedTokens += usage.completionTokens;
        else stats.completionTokens += usage.completionTokens;
        // Decode speed: tokens after the first over the time after the first; a
        // non-streamed answer has no first-token time, so its whole duration counts.
        const from = usage.contentEvents > 0 ? usage.firstTokenAt : record.startedAt;
        const seconds = ((record.endedAt ?? this.#options.now()) - (from ?? record.startedAt)) /
          1000;
        const tokens = usage.contentEvents > 0
          ? usage.completionTokens - 1
          : usage.completionTokens;
        if (seconds > 0 && tokens > 0) {
          stats.generationSeconds += seconds;
          stats.generatedTokens += tokens;
        }
      }
    }
    if (this.#options.config.server.request_logging) this.#accessLog(record, model, ttftMs);
  }

  /** Per-model statistics, sorted by model id. */
  modelStats(): ModelStats[] {
    return [...this.#models].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map((
      [model, stats],
    ) => ({
      model,
      requests: stats.requests,
      errors: stats.errors,
      latency_ms: stats.latency.percentiles(),
      ttft_ms: stats.ttft.percentiles(),
      prompt_tokens: stats.promptTokens,
      completion_tokens: stats.completionTokens,
      estimated_completion_tokens: stats.estimatedTokens,
      tokens_per_second: stats.generationSeconds > 0
        ? Math.round((stats.generatedTokens / stats.generationSeconds) * 100) / 100
        : null,
      endpoints: stats.endpoints,
    }));
  }

  #accessLog(record: RequestRecord, model: string, ttftMs: number | undefined): void {
    const round = (value: number | undefined) =>
      value === undefined ? undefined : Math.round(value * 1000) / 1000;
    this.#options.logger.info("access", {
      service: NAME,
      request_id: record.id,
      client: record.clientIp,
      key: record.keyName,
      method: record.method,
      path: record.safePath,
      route: record.route,
      model: record.model === undefined
        ? undefined
        : model === "unknown"
        ? record.model.slice(0, 128)
        : model,
      endpoint: record.endpoint,
      status: record.status,
      bytes_in: record.bytesIn,
      bytes_out: record.bytesOut,
      duration_ms: round((record.endedAt ?? this.#options.now()) - record.startedAt),
      ttft_ms: round(ttftMs),
      overhead_ms: round(record.overheadMs),
      prompt_tokens: record.usage?.promptTokens,
      completion_tokens: record.usage?.completionTokens,
      tokens_estimated: record.usage?.estimated || undefined,
      finish_reason: record.usage?.finishReason,
      failovers: record.failovers.length,
      failover_reasons: record.failovers.length > 0 ? record.failovers : undefined,
      routing: record.routing ? `${record.routing.decision}:${record.routing.reason}` : undefined,
      sticky: record.sticky?.outcome,
      outcome: record.outcome,
      fault: Telemetry.faultOf(record),
      error: record.error,
    });
  }
}
