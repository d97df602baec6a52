/**
 * The health checker: probes every endpoint on its own timer at its own
 * `check_interval` (Olla rounds every interval up to a fixed 30-second tick; olla-ts does
 * not), backs off with jitter after repeated failures, and reports each result to the
 * registry. It never delays startup: the first probes start as soon as it starts.
 *
 * @module
 */
import { detectProfile } from "./detect.ts";
import { probeEndpoint } from "./probe.ts";
import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { BUILT_IN_PROFILES, UNDETECTED_PROFILE } from "../profiles/built_in.ts";
import { ProfileSet } from "../profiles/profile.ts";
import type { EndpointView, ProbeResult } from "../registry/endpoint.ts";
import { isLive } from "../registry/endpoint_state.ts";
import type { Registry } from "../registry/registry.ts";

/** Longest back-off between probes of a failing endpoint, unless its interval is longer. */
export const MAX_BACKOFF_MS = 60_000;
/** Largest back-off multiplier (Olla's). */
const MAX_MULTIPLIER = 12;

/**
 * Milliseconds until the next probe. A healthy endpoint (or one failure) keeps its
 * interval; each further consecutive failure doubles it, up to 12 times the interval
 * and at most {@linkcode MAX_BACKOFF_MS}, with +-10% jitter so many endpoints that
 * failed together do not probe in lockstep. The time the probe took is subtracted, so
 * a 2s interval means a probe every 2s.
 */
export function nextProbeDelay(options: {
  intervalMs: number;
  consecutiveFailures: number;
  elapsedMs: number;
  random: () => number;
}): number {
  const { intervalMs, consecutiveFailures, elapsedMs, random } = options;
  if (consecutiveFailures <= 1) return Math.max(0, intervalMs - elapsedMs);
  const multiplier = Math.min(2 ** (consecutiveFailures - 1), MAX_MULTIPLIER);
  const capped = Math.min(intervalMs * multiplier, Math.max(MAX_BACKOFF_MS, intervalMs));
  const jittered = capped * (0.9 + 0.2 * random());
  return Math.max(0, jittered - elapsedMs);
}

/** Options for {@linkcode HealthChecker}. */
export interface HealthCheckerOptions {
  registry: Registry;
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  /** @default {Math.random} */
  random?: () => number;
  /** Delay before the first probes (`discovery.health_check.initial_delay`). @default {0} */
  initialDelayMs?: number;
  /** The profiles `auto` endpoints are recognised among. @default the built-ins */
  profiles?: ProfileSet;
  /**
   * Called after each probe that found the endpoint reachable (routable or asleep), with
   * whether it had just recovered; model discovery hangs off this.
   */
  onReachable?: (name: string, recovered: boolean) => void;
}

/** Probes every endpoint on its own schedule. */
export class HealthChecker {
  readonly #options: HealthCheckerOptions;
  readonly #timers = new Map<string, TimerId>();
  readonly #running = new Map<string, Promise<ProbeResult>>();
  #stopped = true;

  constructor(options: HealthCheckerOptions) {
    this.#options = options;
  }

  /** Starts probing every endpoint now. */
  start(): void {
    this.#stopped = false;
    const delay = this.#options.initialDelayMs ?? 0;
    for (const endpoint of this.#options.registry.endpoints) this.#schedule(endpoint.name, delay);
  }

  /** Stops all timers; probes in progress finish but schedule nothing. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.#options.clock.clearTimeout(timer);
    this.#timers.clear();
  }

  /** Starts probing an endpoint added at run time (now, if checks are running). */
  track(name: string): void {
    if (!this.#stopped && !this.#timers.has(name)) this.#schedule(name, 0);
  }

  /** Stops probing an endpoint that was removed; a probe in progress schedules nothing. */
  untrack(name: string): void {
    const timer = this.#timers.get(name);
    if (timer !== undefined) this.#options.clock.clearTimeout(timer);
    this.#timers.delete(name);
  }

  /** Probes one endpoint now (joining a probe already in progress) and reschedules it. */
  checkNow(name: string): Promise<ProbeResult> {
    const running = this.#running.get(name);
    if (running) return running;
    const timer = this.#timers.get(name);
    if (timer !== undefined) this.#options.clock.clearTimeout(timer);
    this.#timers.delete(name);
    return this.#run(name);
  }

  #schedule(name: string, delayMs: number): void {
    if (this.#stopped) return;
    const { clock, registry } = this.#options;
    registry.setNextCheck(name, clock.now() + delayMs);
    this.#timers.set(
      name,
      clock.setTimeout(() => {
        this.#timers.delete(name);
        this.#run(name);
      }, delayMs),
    );
  }

  #run(name: string): Promise<ProbeResult> {
    const promise = this.#probe(name).finally(() => this.#running.delete(name));
    this.#running.set(name, promise);
    return promise;
  }

  async #probe(name: string): Promise<ProbeResult> {
    const { registry, clock, logger, fetch } = this.#options;
    const endpoint = registry.get(name);
    if (!endpoint) throw new RangeError(`Cannot probe endpoint "${name}": it is not registered`);
    const started = clock.now();
    if (endpoint.profile === UNDETECTED_PROFILE && !(await this.#detect(endpoint))) {
      const delay = nextProbeDelay({
        intervalMs: endpoint.config.check_interval,
        consecutiveFailures: endpoint.consecutiveProbeFailures,
        elapsedMs: clock.now() - started,
        random: this.#options.random ?? Math.random,
      });
      if (this.#stillTracked(name)) this.#schedule(name, delay);
      return {
        status: endpoint.status,
        latencyMs: clock.now() - started,
        error: endpoint.lastError,
      };
    }
    const previous = endpoint.status;
    const result = await probeEndpoint(endpoint, { fetch, clock });
    const { recovered } = registry.applyProbe(name, result);
    if (logger.enabled("debug")) {
      logger.debug("probe", {
        endpoint: name,
        status: result.status,
        latency_ms: Math.round(result.latencyMs),
        error: result.error,
      });
    }
    const delay = nextProbeDelay({
      intervalMs: endpoint.config.check_interval,
      consecutiveFailures: endpoint.consecutiveProbeFailures,
      elapsedMs: clock.now() - started,
      random: this.#options.random ?? Math.random,
    });
    if (endpoint.status !== previous) {
      const level = result.status === "healthy" || result.status === "sleeping" ? "info" : "warn";
      logger.log(level, "endpoint status changed", {
        endpoint: name,
        from: previous,
        to: endpoint.status,
        error: result.error,
        latency_ms: Math.round(result.latencyMs),
      });
    }
    if (!this.#stillTracked(name)) return result;
    this.#schedule(name, delay);
    if (isLive(endpoint, clock.now())) {
      this.#options.onReachable?.(name, recovered);
    }
    return result;
  }

  /** Whether to schedule the next probe: checks run, none is scheduled, and it still exists. */
  #stillTracked(name: string): boolean {
    return !this.#stopped && !this.#timers.has(name) &&
      this.#options.registry.get(name) !== undefined;
  }

  /** Recognises an `auto` endpoint's type; `true` once it has one. */
  async #detect(endpoint: EndpointView): Promise<boolean> {
    const { registry, fetch, clock, logger } = this.#options;
    const profiles = this.#options.profiles ?? new ProfileSet(BUILT_IN_PROFILES);
    const found = await detectProfile(endpoint, { fetch, clock, profiles });
    if ("error" in found) {
      registry.reportUndetected(endpoint.name, found.error);
      logger.debug("endpoint type not detected yet", {
        endpoint: endpoint.name,
        error: found.error,
      });
      return false;
    }
    registry.setDetectedProfile(endpoint.name, found.profile);
    logger.info("endpoint type detected", { endpoint: endpoint.name, type: found.profile.name });
    return true;
  }
}
