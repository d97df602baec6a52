/**
 * What each engine reports about its own load (`/metrics`: requests running and waiting,
 * KV-cache usage), kept per endpoint, and the estimate the load-aware balancers use.
 * The engine-metrics reader is the one writer.
 *
 * The estimate is the engine's last figures plus what olla-ts has sent and seen finish
 * since those figures last changed: LMDeploy refreshes its scheduler gauges only every
 * 10 s, so its report is a snapshot of about that age, and olla-ts's own counts since
 * fill the gap. Figures older than `maxAgeMs`, or from an endpoint whose reads fail, give
 * way to olla-ts's in-flight count.
 *
 * @module
 */
import type { EndpointView } from "./endpoint.ts";

/** One engine's report, with olla-ts's counters when it last changed. */
export interface EngineLoad {
  readonly running: number;
  readonly waiting: number;
  /** KV-cache usage, 0..1, when reported. */
  readonly kvCacheUsage: number | undefined;
  /** When it was last read successfully (clock ms). */
  readonly readAt: number;
  /** When its figures last changed. */
  readonly changedAt: number;
  /** The endpoint's `requests` and `finished` counters at `changedAt`. */
  readonly startedBefore: number;
  readonly finishedBefore: number;
  /** The latest read's failure, if the latest read failed. */
  readonly error: string | undefined;
}

/** The reports, by endpoint name. */
export class EngineLoads {
  readonly #loads = new Map<string, EngineLoad>();

  /** Records a successful read. */
  set(
    endpoint: EndpointView,
    figures: { running: number; waiting: number; kvCacheUsage?: number },
    now: number,
  ): void {
    const previous = this.#loads.get(endpoint.name);
    const changed = !previous || previous.running !== figures.running ||
      previous.waiting !== figures.waiting || previous.kvCacheUsage !== figures.kvCacheUsage;
    this.#loads.set(endpoint.name, {
      running: figures.running,
      waiting: figures.waiting,
      kvCacheUsage: figures.kvCacheUsage,
      readAt: now,
      changedAt: changed ? now : previous.changedAt,
      startedBefore: changed ? endpoint.requests : previous.startedBefore,
      finishedBefore: changed ? endpoint.finished : previous.finishedBefore,
      error: undefined,
    });
  }

  /** Records a failed read; the last figures are kept, and age. */
  failed(name: string, error: string): void {
    const load = this.#loads.get(name);
    if (load) this.#loads.set(name, { ...load, error });
  }

  get(name: string): EngineLoad | undefined {
    return this.#loads.get(name);
  }

  delete(name: string): void {
    this.#loads.delete(name);
  }

  get size(): number {
    return this.#loads.size;
  }
}

/** Whether a report can still be trusted at `now`. */
export function isFresh(
  load: EngineLoad | undefined,
  now: number,
  maxAgeMs: number,
): load is EngineLoad {
  return load !== undefined && load.error === undefined && now - load.readAt <= maxAgeMs;
}

/**
 * An endpoint's estimated load: requests running and waiting on the engine, plus those
 * olla-ts sent since the report and minus those that finished since; without a fresh
 * report, olla-ts's own in-flight count.
 */
export function estimatedLoad(
  endpoint: EndpointView,
  load: EngineLoad | undefined,
  now: number,
  maxAgeMs: number,
): number {
  if (!isFresh(load, now, maxAgeMs)) return endpoint.inflight;
  const since = (endpoint.requests - load.startedBefore) -
    (endpoint.finished - load.finishedBefore);
  return Math.max(0, load.running + load.waiting + since, endpoint.inflight);
}
