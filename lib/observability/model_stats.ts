/**
 * Per-model statistics for `/internal/stats/models`: requests, errors, latency and TTFT
 * percentiles over the newest 1024 requests, prompt and completion tokens (estimated
 * ones apart), decode speed, and requests per endpoint; and the same numbers under
 * Olla's names (`total_requests`, `successful_requests`, `average_latency`, ...), so
 * both kinds of client read one entry.
 *
 * A request *failed* when it was the upstream's or olla-ts's fault; Olla's mean latency
 * covers the requests that did not fail.
 *
 * @module
 */
import { bytesText, latencyText, percentText } from "./olla_text.ts";
import { successPercent } from "./traffic_stats.ts";
import type { Fault } from "../errors.ts";
import type { UsageSummary } from "../proxy/usage.ts";

const RESERVOIR = 1024;

/** Per-model numbers for `/internal/stats/models`. */
export interface ModelStats extends OllaModelStats {
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

/** The same model's numbers under Olla's names and in Olla's text formats. */
export interface OllaModelStats {
  name: string;
  total_requests: number;
  successful_requests: number;
  failed_requests: number;
  success_rate: string;
  total_traffic: string;
  average_latency: string;
  p95_latency: string;
  p99_latency: string;
  last_requested: string;
  /** Olla never fills these three; neither does olla-ts (kept for the shape). */
  unique_clients: number;
  routing_hits: number;
  routing_misses: number;
  routing_fallbacks: number;
}

/** p50, p95 and p99 of a sample, `null` when empty. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** A bounded sample of recent values (the newest {@linkcode RESERVOIR}). */
export class Sample {
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
  bytes = 0;
  successLatencySumMs = 0;
  lastRequestedAt = 0;
  readonly latency = new Sample();
  readonly ttft = new Sample();
  readonly endpoints: Record<string, number> = {};
}

/** One finished request as the statistics see it. */
export interface ModelObservation {
  model: string;
  endpoint: string;
  fault: Fault | undefined;
  startedAt: number;
  endedAt: number;
  ttftMs: number | undefined;
  usage: UsageSummary | undefined;
  /** Bytes received from the client and sent back. */
  bytes: number;
}

/** The statistics of every model requested by a known name. */
export class ModelStatistics {
  readonly #models = new Map<string, ModelAccumulator>();

  /** Counts one finished request. */
  observe(request: ModelObservation): void {
    const { model, endpoint, fault, usage } = request;
    let stats = this.#models.get(model);
    if (!stats) this.#models.set(model, stats = new ModelAccumulator());
    const latencyMs = request.endedAt - request.startedAt;
    stats.requests++;
    if (fault === "upstream" || fault === "proxy") stats.errors++;
    else stats.successLatencySumMs += latencyMs;
    stats.bytes += request.bytes;
    stats.lastRequestedAt = Math.max(stats.lastRequestedAt, request.startedAt);
    stats.latency.add(latencyMs);
    if (request.ttftMs !== undefined) stats.ttft.add(request.ttftMs);
    stats.endpoints[endpoint] = (stats.endpoints[endpoint] ?? 0) + 1;
    if (usage?.promptTokens !== undefined) stats.promptTokens += usage.promptTokens;
    if (usage?.completionTokens === undefined) return;
    if (usage.estimated) stats.estimatedTokens += usage.completionTokens;
    else stats.completionTokens += usage.completionTokens;
    // Decode speed: tokens after the first over the time after the first; a non-streamed
    // answer has no first-token time, so its whole duration counts.
    const from = usage.contentEvents > 0 ? usage.firstTokenAt : request.startedAt;
    const seconds = (request.endedAt - (from ?? request.startedAt)) / 1000;
    const tokens = usage.contentEvents > 0 ? usage.completionTokens - 1 : usage.completionTokens;
    if (seconds > 0 && tokens > 0) {
      stats.generationSeconds += seconds;
      stats.generatedTokens += tokens;
    }
  }

  #sorted(): [string, ModelAccumulator][] {
    return [...this.#models].sort(([a, x], [b, y]) =>
      y.requests - x.requests || (a < b ? -1 : a > b ? 1 : 0)
    );
  }

  /** Forgets a removed endpoint in every model's per-endpoint counts. */
  forgetEndpoint(endpoint: string): void {
    for (const stats of this.#models.values()) delete stats.endpoints[endpoint];
  }

  /** Raw per-model numbers for Olla's per-model metrics, most requested first. */
  totals(): ModelTotals[] {
    return this.#sorted().map(([model, stats]) => modelTotals(model, stats));
  }

  /** Models requested since `since` (Olla's "active": the last hour). */
  activeSince(since: number): number {
    let active = 0;
    for (const stats of this.#models.values()) if (stats.lastRequestedAt >= since) active++;
    return active;
  }

  /** Per-model statistics, most requested first (then by model id), as Olla sorts them. */
  snapshot(): ModelStats[] {
    return this.#sorted().map(([model, stats]) => ({
      ...ollaModelStats(modelTotals(model, stats)),
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
}

/** One model's totals as numbers. */
export interface ModelTotals {
  model: string;
  requests: number;
  failures: number;
  bytes: number;
  /** Mean over requests that did not fail, ms (0 without any). */
  avgLatencyMs: number;
  p95LatencyMs: number;
  p99LatencyMs: number;
  lastRequestedAt: number;
}

function modelTotals(model: string, stats: ModelAccumulator): ModelTotals {
  const successful = stats.requests - stats.errors;
  const { p95, p99 } = stats.latency.percentiles();
  return {
    model,
    requests: stats.requests,
    failures: stats.errors,
    bytes: stats.bytes,
    avgLatencyMs: successful === 0 ? 0 : stats.successLatencySumMs / successful,
    p95LatencyMs: p95 ?? 0,
    p99LatencyMs: p99 ?? 0,
    lastRequestedAt: stats.lastRequestedAt,
  };
}

function ollaModelStats(totals: ModelTotals): OllaModelStats {
  return {
    name: totals.model,
    total_requests: totals.requests,
    successful_requests: totals.requests - totals.failures,
    failed_requests: totals.failures,
    success_rate: percentText(successPercent(totals)),
    total_traffic: bytesText(totals.bytes),
    average_latency: latencyText(totals.avgLatencyMs),
    p95_latency: latencyText(totals.p95LatencyMs),
    p99_latency: latencyText(totals.p99LatencyMs),
    last_requested: new Date(totals.lastRequestedAt).toISOString(),
    unique_clients: 0,
    routing_hits: 0,
    routing_misses: 0,
    routing_fallbacks: 0,
  };
}
