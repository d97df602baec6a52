/**
 * The last minutes of traffic as a bounded ring of samples, for the status page's charts
 * and for scripts (`/internal/stats/timeseries`): every `intervalMs` (5 s) one sample of
 * requests/s and errors/s per endpoint, requests in flight, time-to-first-token p50/p95 and
 * generated tokens/s over that interval; `capacity` samples (180: 15 minutes) are kept,
 * the oldest dropped first.
 *
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";

/** One interval's numbers. */
export interface Sample {
  /** End of the interval (Unix ms). */
  t: number;
  inflight: number;
  requests_per_s: number;
  errors_per_s: number;
  tokens_per_s: number;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
  /** Per endpoint: requests/s, errors/s and in flight at the sample's time. */
  endpoints: Record<string, { requests_per_s: number; errors_per_s: number; inflight: number }>;
}

/** What a finished request adds to the current interval. */
export interface SampleInput {
  endpoint: string | undefined;
  failed: boolean;
  ttftMs: number | undefined;
  completionTokens: number | undefined;
}

/** Options for {@linkcode TimeSeries}. */
export interface TimeSeriesOptions {
  clock: Clock;
  /** @default {5000} */
  intervalMs?: number;
  /** @default {180} */
  capacity?: number;
  /** In flight now: overall, and per endpoint name. */
  inflight: () => { total: number; endpoints: Iterable<[string, number]> };
}

function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
}

/** The ring of samples; one owner of the current interval's counts. */
export class TimeSeries {
  readonly #options: TimeSeriesOptions;
  readonly intervalMs: number;
  readonly capacity: number;
  readonly #samples: Sample[] = [];
  #timer: TimerId | undefined;
  #requests = 0;
  #errors = 0;
  #tokens = 0;
  #ttfts: number[] = [];
  #perEndpoint = new Map<string, { requests: number; errors: number }>();

  constructor(options: TimeSeriesOptions) {
    this.#options = options;
    this.intervalMs = options.intervalMs ?? 5_000;
    this.capacity = options.capacity ?? 180;
  }

  /** Counts a finished request into the current interval. */
  record(input: SampleInput): void {
    this.#requests++;
    if (input.failed) this.#errors++;
    if (input.ttftMs !== undefined) this.#ttfts.push(input.ttftMs);
    if (input.completionTokens !== undefined) this.#tokens += input.completionTokens;
    if (input.endpoint === undefined) return;
    let counts = this.#perEndpoint.get(input.endpoint);
    if (!counts) this.#perEndpoint.set(input.endpoint, counts = { requests: 0, errors: 0 });
    counts.requests++;
    if (input.failed) counts.errors++;
  }

  /** Closes the current interval into a sample (the timer calls it; tests may too). */
  sample(): Sample {
    const seconds = this.intervalMs / 1000;
    const rate = (count: number) => Math.round((count / seconds) * 100) / 100;
    const inflight = this.#options.inflight();
    const endpoints: Sample["endpoints"] = {};
    for (const [name, active] of inflight.endpoints) {
      const counts = this.#perEndpoint.get(name);
      endpoints[name] = {
        requests_per_s: rate(counts?.requests ?? 0),
        errors_per_s: rate(counts?.errors ?? 0),
        inflight: active,
      };
    }
    const ttfts = this.#ttfts.sort((a, b) => a - b);
    const sample: Sample = {
      t: this.#options.clock.now(),
      inflight: inflight.total,
      requests_per_s: rate(this.#requests),
      errors_per_s: rate(this.#errors),
      tokens_per_s: rate(this.#tokens),
      ttft_p50_ms: percentile(ttfts, 0.5),
      ttft_p95_ms: percentile(ttfts, 0.95),
      endpoints,
    };
    this.#samples.push(sample);
    if (this.#samples.length > this.capacity) this.#samples.shift();
    this.#requests = 0;
    this.#errors = 0;
    this.#tokens = 0;
    this.#ttfts = [];
    this.#perEndpoint = new Map();
    return sample;
  }

  /** The kept samples, oldest first. */
  get samples(): readonly Sample[] {
    return this.#samples;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    const tick = () => {
      this.sample();
      this.#timer = this.#options.clock.setTimeout(tick, this.intervalMs);
    };
    this.#timer = this.#options.clock.setTimeout(tick, this.intervalMs);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
