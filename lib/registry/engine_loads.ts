/**
 * What each engine reports about its own load (`/metrics`: requests running and waiting,
 * KV-cache usage), kept per endpoint, and the estimate the load-aware balancers use.
 * The engine-metrics reader is the one writer.
 *
 * The estimate is olla-ts's own requests in flight there now (exact) plus the load the
 * engine carries for *other* clients: its running and waiting requests when its figures
 * last changed, minus olla-ts's own requests in flight when the engine took them.
 * LMDeploy refreshes its scheduler gauges only every 10 s, so the engine's figures are a
 * snapshot; olla-ts's counts since fill the gap exactly, and the snapshot contributes only
 * what olla-ts cannot see (other proxies, direct clients, work the engine holds).
 *
 * When the engine took its snapshot is unknown, only that it was after the read before
 * the change. Subtracting olla-ts's count at the read that saw the change made up load
 * whenever olla-ts's own requests ended in between (a fleet with one slow engine showed
 * it: phantom load sent requests to the wrong engines, tripling TTFT p99), so the count
 * subtracted is the most olla-ts can have had in flight then: its count at the read
 * before, plus the requests it sent since. Load from others is never overstated that way;
 * at worst, under heavy traffic, it is counted a few requests short. Figures older than
 * `maxAgeMs`, or from an endpoint whose reads fail, give way to olla-ts's count alone.
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
  /**
   * olla-ts's own requests in flight there when the engine took these figures, at most:
   * the engine took them after the read before `changedAt`, so no more than were in
   * flight then plus those sent since.
   */
  readonly ownAtChange: number;
  /** The latest read's failure, if the latest read failed. */
  readonly error: string | undefined;
  /** olla-ts's requests in flight there, and sent there in all, at `readAt`. */
  readonly ownAtRead: number;
  readonly sentAtRead: number;
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
      ownAtChange: !changed
        ? previous.ownAtChange
        : previous
        ? previous.ownAtRead + (endpoint.requests - previous.sentAtRead)
        : endpoint.inflight,
      ownAtRead: endpoint.inflight,
      sentAtRead: endpoint.requests,
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

/** The engine's load that is not olla-ts's (0 without a fresh report). */
export function foreignLoad(load: EngineLoad | undefined, now: number, maxAgeMs: number): number {
  if (!isFresh(load, now, maxAgeMs)) return 0;
  return Math.max(0, load.running + load.waiting - load.ownAtChange);
}

/**
 * An endpoint's estimated load: olla-ts's requests in flight there, plus the load from
 * other clients: the engine's last fresh report, or the other olla-ts instances' requests
 * in flight there (`peerInflight`, cluster/peers.ts) when that is larger. The report
 * already counts the other instances' requests, but up to 10 s late; their own count is
 * at most a second old, so the larger of the two is the better guess, and adding them
 * would count those requests twice.
 */
export function estimatedLoad(
  endpoint: EndpointView,
  load: EngineLoad | undefined,
  now: number,
  maxAgeMs: number,
  peerInflight = 0,
): number {
  return endpoint.inflight + Math.max(peerInflight, foreignLoad(load, now, maxAgeMs));
}
