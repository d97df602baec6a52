/**
 * Reading each engine's own load from its Prometheus `/metrics` (LMDeploy, vLLM, SGLang:
 * the profile names the path and the series), on each endpoint's own interval
 * (`engine_metrics.interval`, or the endpoint's `engine_metrics_interval`; 0 turns it off
 * for that endpoint), each read bounded by `engine_metrics.timeout`. The figures go to
 * {@linkcode EngineLoads}; a failed read is recorded there, so the load-aware balancers
 * fall back to olla-ts's own counts.
 *
 * An engine that answers 404 serves no metrics (LMDeploy does only when started with
 * `--enable-metrics`): it is asked again only every 30 s rather than every interval, so
 * it is not polled for nothing every second, and a restart with metrics on is still
 * picked up. This is said once in the log at info level.
 *
 * @module
 */
import { readSeries } from "./prometheus_text.ts";
import type { Clock, TimerId } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import type { EngineLoads } from "../registry/engine_loads.ts";
import type { Registry } from "../registry/registry.ts";
import { endpointUrl } from "../upstream/endpoint_url.ts";
import { describeFetchError } from "../upstream/fetch_errors.ts";
import { boundedText } from "../upstream/bounded_text.ts";
import { fetchWithin } from "../upstream/timed_fetch.ts";

/** How long before an engine that answered 404 for its metrics is asked again. */
export const NOT_SERVED_RECHECK_MS = 30_000;

/** Collaborators of {@linkcode EngineMetricsReader}. */
export interface EngineMetricsOptions {
  registry: Registry;
  loads: EngineLoads;
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  settings: Config["engine_metrics"];
}

/** Reads every engine's load on its own schedule. */
export class EngineMetricsReader {
  readonly #options: EngineMetricsOptions;
  readonly #timers = new Map<string, TimerId>();
  /** Endpoints whose last read answered 404. */
  readonly #notServed = new Set<string>();
  #stopped = true;

  constructor(options: EngineMetricsOptions) {
    this.#options = options;
  }

  start(): void {
    this.#stopped = false;
    for (const endpoint of this.#options.registry.endpoints) this.track(endpoint.name);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.#options.clock.clearTimeout(timer);
    this.#timers.clear();
  }

  /** Starts reading an endpoint (one added at run time, or detected as a metrics engine). */
  track(name: string): void {
    if (this.#stopped || this.#timers.has(name) || this.#intervalOf(name) === 0) return;
    this.#schedule(name, 0);
  }

  /** Stops reading an endpoint that was removed, and forgets its figures. */
  untrack(name: string): void {
    const timer = this.#timers.get(name);
    if (timer !== undefined) this.#options.clock.clearTimeout(timer);
    this.#timers.delete(name);
    this.#notServed.delete(name);
    this.#options.loads.delete(name);
  }

  /** The read interval for an endpoint; 0 when it is not read. */
  #intervalOf(name: string): number {
    const { registry, settings } = this.#options;
    const endpoint = registry.get(name);
    if (!settings.enabled || !endpoint?.profile.engineMetrics || endpoint.draining) return 0;
    return endpoint.config.engine_metrics_interval ?? settings.interval;
  }

  #schedule(name: string, delayMs: number): void {
    this.#timers.set(
      name,
      this.#options.clock.setTimeout(() => {
        this.#timers.delete(name);
        void this.read(name).finally(() => {
          const interval = this.#intervalOf(name);
          if (!this.#stopped && interval > 0 && !this.#timers.has(name)) {
            this.#schedule(
              name,
              this.#notServed.has(name) ? Math.max(interval, NOT_SERVED_RECHECK_MS) : interval,
            );
          }
        });
      }, delayMs),
    );
  }

  /** Reads one endpoint's figures now. */
  async read(name: string): Promise<void> {
    const { registry, loads, clock, settings } = this.#options;
    const endpoint = registry.get(name);
    const names = endpoint?.profile.engineMetrics;
    if (!endpoint || !names) return;
    const wanted = new Set([names.running, names.waiting, names.kvCacheUsage]);
    let notServed = false;
    try {
      const text = await fetchWithin(
        {
          ...this.#options,
          timeoutMs: settings.timeout,
          timeoutError: () => new Error(`${names.path} timed out after ${settings.timeout}ms`),
        },
        endpointUrl(endpoint, names.path),
        { headers: [...endpoint.outboundHeaders] as [string, string][] },
        async (response) => {
          if (!response.ok) {
            await response.body?.cancel();
            notServed = response.status === 404;
            throw new Error(`${names.path} answered ${response.status}`);
          }
          return await boundedText(response, names.path);
        },
      );
      const series = readSeries(text, wanted);
      const running = series.get(names.running);
      const waiting = series.get(names.waiting);
      if (running === undefined || waiting === undefined) {
        throw new Error(
          `${names.path} has no ${running === undefined ? names.running : names.waiting}`,
        );
      }
      this.#notServed.delete(name);
      const current = registry.get(name);
      if (current) {
        loads.set(
          current,
          { running, waiting, kvCacheUsage: series.get(names.kvCacheUsage) },
          clock.now(),
        );
      }
    } catch (error) {
      loads.failed(name, describeFetchError(error));
      if (!notServed) {
        this.#notServed.delete(name);
      } else if (!this.#notServed.has(name)) {
        this.#notServed.add(name);
        this.#options.logger.info("engine serves no metrics; olla-ts's own counts are used", {
          endpoint: name,
          path: names.path,
          recheck_s: NOT_SERVED_RECHECK_MS / 1000,
        });
      }
      this.#options.logger.debug("engine metrics not read", {
        endpoint: name,
        error: describeFetchError(error),
      });
    }
  }
}
