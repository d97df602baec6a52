/**
 * Per-model statistics for `/internal/stats/models`: requests, errors, latency and TTFT
 * percentiles over the newest 1024 requests, prompt and completion tokens (estimated
 * ones apart), decode speed, and requests per endpoint.
 *
 * @module
 */
import type { Fault } from "../errors.ts";
import type { UsageSummary } from "../proxy/usage.ts";

const RESERVOIR = 1024;

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
}

/** The statistics of every model requested by a known name. */
export class ModelStatistics {
  readonly #models = new Map<string, ModelAccumulator>();

  /** Counts one finished request. */
  observe(request: ModelObservation): void {
    const { model, endpoint, fault, usage } = request;
    let stats = this.#models.get(model);
    if (!stats) this.#models.set(model, stats = new ModelAccumulator());
    stats.requests++;
    if (fault === "upstream" || fault === "proxy") stats.errors++;
    stats.latency.add(request.endedAt - request.startedAt);
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

  /** Per-model statistics, sorted by model id. */
  snapshot(): ModelStats[] {
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
}
