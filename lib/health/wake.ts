/**
 * Wake-on-demand for sleeping LMDeploy engines (opt-in, `proxy.wake_on_demand`). However
 * many requests wait for the same endpoint, it is sent one `POST /wakeup` (with the JSON
 * content type LMDeploy requires and the endpoint's auth); the requests then wait until a
 * health probe sees the engine awake, for at most `proxy.wake_timeout`.
 *
 * @module
 */
import { type Clock, sleep } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import { postEngineControl } from "../upstream/engine_control.ts";
import { describeFetchError } from "../upstream/fetch_errors.ts";

/** How often the wake-up is checked with a fresh probe while requests wait. */
const RECHECK_MS = 1_000;

/** Options for {@linkcode WakeCoordinator}. */
export interface WakeOptions {
  registry: Registry;
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  /** Runs a probe now (the health checker's `checkNow`). */
  probeNow: (name: string) => Promise<unknown>;
  timeoutMs: number;
}

/** Wakes sleeping endpoints, once per endpoint however many requests ask. */
export class WakeCoordinator {
  readonly #options: WakeOptions;
  readonly #waking = new Map<string, Promise<boolean>>();

  constructor(options: WakeOptions) {
    this.#options = options;
  }

  /** Whether a wake-up for `name` is in progress. */
  isWaking(name: string): boolean {
    return this.#waking.has(name);
  }

  /**
   * Wakes the endpoint (or joins the wake-up in progress) and resolves `true` once it is
   * routable, `false` when the timeout passes or `signal` (the waiting client) aborts.
   * A client that gives up does not cancel the wake-up for the others.
   */
  wake(endpoint: EndpointView, signal?: AbortSignal): Promise<boolean> {
    let waking = this.#waking.get(endpoint.name);
    if (!waking) {
      waking = this.#wake(endpoint).finally(() => this.#waking.delete(endpoint.name));
      this.#waking.set(endpoint.name, waking);
    }
    if (!signal) return waking;
    return Promise.race([
      waking,
      new Promise<boolean>((resolve) => {
        if (signal.aborted) resolve(false);
        signal.addEventListener("abort", () => resolve(false), { once: true });
      }),
    ]);
  }

  async #wake(endpoint: EndpointView): Promise<boolean> {
    const { registry, fetch, clock, logger, timeoutMs } = this.#options;
    const deadline = clock.now() + timeoutMs;
    const path = endpoint.profile.wakePath;
    if (!path) return false;
    logger.info("waking sleeping endpoint", { endpoint: endpoint.name });
    try {
      const status = await postEngineControl(endpoint, path, {
        fetch,
        clock,
        timeoutMs,
        timeoutError: () => new Error("wake-up timed out"),
      });
      if (status < 200 || status >= 300) {
        logger.warn("wake-up refused", { endpoint: endpoint.name, status });
        return false;
      }
    } catch (error) {
      logger.warn("wake-up failed", { endpoint: endpoint.name, error: describeFetchError(error) });
      return false;
    }
    while (clock.now() < deadline) {
      await this.#options.probeNow(endpoint.name);
      if (registry.isRoutable(endpoint)) {
        logger.info("endpoint woke up", { endpoint: endpoint.name });
        return true;
      }
      await sleep(clock, Math.min(RECHECK_MS, Math.max(0, deadline - clock.now())));
    }
    logger.warn("endpoint did not wake up in time", {
      endpoint: endpoint.name,
      timeout_ms: timeoutMs,
    });
    return false;
  }
}
