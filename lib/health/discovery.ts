/**
 * Model discovery: reads each endpoint's model list (`model_url`, by default the
 * profile's) at startup, every `discovery.model_discovery.interval`, and when the health
 * checker re-admits the endpoint; parses it per the profile's format, keeping each card
 * as the backend reported it; and hands it to the registry, which applies `model_filter`.
 *
 * @module
 */
import { type Clock, sleep, type TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { type ModelCard, parseModelList } from "../profiles/model_lists.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import { isReachable } from "../registry/endpoint_state.ts";
import type { Registry } from "../registry/registry.ts";
import { endpointUrl } from "../upstream/endpoint_url.ts";
import { describeFetchError } from "../upstream/fetch_errors.ts";
import { boundedText } from "../upstream/bounded_text.ts";
import { fetchWithin } from "../upstream/timed_fetch.ts";

/** Fetches and parses one endpoint's model list within `timeoutMs`. */
export async function fetchModels(
  endpoint: EndpointView,
  options: { fetch: typeof fetch; clock: Clock; timeoutMs: number },
): Promise<ModelCard[]> {
  const url = endpointUrl(endpoint, endpoint.config.model_url ?? endpoint.profile.models.path);
  const text = await fetchWithin(
    {
      ...options,
      timeoutError: () => new Error(`model list timed out after ${options.timeoutMs}ms`),
    },
    url,
    { headers: [...endpoint.outboundHeaders] as [string, string][] },
    async (response) => {
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`model list answered ${response.status}`);
      }
      return await boundedText(response, "the model list");
    },
  );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TypeError("Cannot read model list: the answer is not JSON");
  }
  return parseModelList(endpoint.profile.models.format, body);
}

/** Options for {@linkcode ModelDiscovery}. */
export interface ModelDiscoveryOptions {
  registry: Registry;
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  enabled: boolean;
  intervalMs: number;
  timeoutMs: number;
  retryAttempts: number;
  retryBackoffMs: number;
  /** Model lists read at once (`concurrent_workers`). @default {Infinity} */
  concurrency?: number;
}

/** Keeps every endpoint's model list current. */
export class ModelDiscovery {
  readonly #options: ModelDiscoveryOptions;
  readonly #inflight = new Map<string, Promise<boolean>>();
  #timer: TimerId | undefined;
  #stopped = false;
  readonly #stop = new AbortController();
  /** Reads running, and the ones waiting for a free worker. */
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: ModelDiscoveryOptions) {
    this.#options = options;
  }

  /** Discovers every endpoint now, then every interval. */
  start(): void {
    if (!this.#options.enabled) return;
    this.#refreshAll(true);
  }

  stop(): void {
    this.#stopped = true;
    this.#stop.abort(new Error("discovery stopped"));
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
  }

  /**
   * Re-reads one endpoint's models (joining a refresh in progress). Resolves `true` when
   * the list was updated.
   */
  refresh(name: string): Promise<boolean> {
    if (!this.#options.enabled) return Promise.resolve(false);
    const running = this.#inflight.get(name);
    if (running) return running;
    const promise = this.#withWorker(() => this.#discover(name))
      .finally(() => this.#inflight.delete(name));
    this.#inflight.set(name, promise);
    return promise;
  }

  /** Refreshes every reachable endpoint, bounded by `timeoutMs`; used on a routing miss. */
  async refreshAll(timeoutMs: number): Promise<void> {
    await Promise.race([
      Promise.all(
        this.#options.registry.endpoints.filter(isReachable).map((e) => this.refresh(e.name)),
      ),
      sleep(this.#options.clock, timeoutMs).catch(() => {}),
    ]);
  }

  #refreshAll(includeUnknown: boolean): void {
    for (const endpoint of this.#options.registry.endpoints) {
      // An `auto` endpoint is read once its type (and so its model-list format) is known.
      if (endpoint.status === "detecting") continue;
      if (includeUnknown || isReachable(endpoint)) this.refresh(endpoint.name);
    }
    if (!this.#stopped) {
      this.#timer = this.#options.clock.setTimeout(
        () => this.#refreshAll(false),
        this.#options.intervalMs,
      );
    }
  }

  /** Runs `work` once fewer than `concurrency` reads are running. */
  async #withWorker<T>(work: () => Promise<T>): Promise<T> {
    if (this.#active >= (this.#options.concurrency ?? Infinity)) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#active++;
    try {
      return await work();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }

  async #discover(name: string): Promise<boolean> {
    const { registry, clock, logger, retryAttempts, retryBackoffMs } = this.#options;
    const endpoint = registry.get(name);
    if (!endpoint) return false;
    for (let attempt = 0; attempt <= retryAttempts && !this.#stopped; attempt++) {
      if (attempt > 0) {
        try {
          await sleep(clock, retryBackoffMs * 2 ** (attempt - 1), this.#stop.signal);
        } catch {
          return false;
        }
        if (!isReachable(endpoint)) return false;
      }
      try {
        const cards = await fetchModels(endpoint, this.#options);
        const before = endpoint.models ? [...endpoint.models.keys()].join("\n") : undefined;
        registry.setModels(name, cards);
        const after = [...(endpoint.models?.keys() ?? [])];
        if (before !== after.join("\n")) {
          logger.info("models discovered", { endpoint: name, count: after.length, models: after });
        }
        return true;
      } catch (error) {
        logger.debug("model discovery failed", {
          endpoint: name,
          attempt: attempt + 1,
          error: describeFetchError(error),
        });
      }
    }
    return false;
  }
}
