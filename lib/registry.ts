/**
 * The one owner of endpoint state: health status, breaker, in-flight count, discovered
 * models and request statistics. The health checker, model discovery and the proxy
 * report outcomes here; everything else reads {@linkcode EndpointView}s.
 *
 * Which statuses take traffic, and how much, is decided in {@linkcode TRAFFIC_WEIGHT}
 * and nowhere else.
 *
 * @module
 */
import { type BreakerState, CircuitBreaker } from "./breaker.ts";
import type { Clock } from "./clock.ts";
import type { EndpointConfig } from "./config_schema.ts";
import { endpointHeaders } from "./headers.ts";
import { globFilter } from "./glob.ts";
import type { Profile, ProfileSet } from "./profiles.ts";

/** What olla-ts knows about an endpoint's ability to serve. */
export type EndpointStatus =
  /** Not probed yet. */
  | "unknown"
  | "healthy"
  /** Answering, but slowly. */
  | "busy"
  /** LMDeploy sleep mode: up, but inference is gated until `/wakeup`. */
  | "sleeping"
  /** Up, but its model is still loading (llama.cpp's 503). */
  | "loading"
  /** Answering with an error, or not answering a probe in time. */
  | "unhealthy"
  /** Unreachable: connection refused, reset or unresolvable. */
  | "offline"
  /** The backend refused olla-ts's credentials (401/403). */
  | "config_error"
  /** The backend asked olla-ts to slow down (429). */
  | "rate_limited";

/**
 * Share of traffic per status. A status with weight 0 is not routable. `unknown` takes
 * traffic so that requests arriving before the first probe are served (failover covers
 * a wrong guess); `busy` takes less.
 */
export const TRAFFIC_WEIGHT: Readonly<Record<EndpointStatus, number>> = {
  healthy: 1,
  unknown: 0.5,
  busy: 0.3,
  sleeping: 0,
  loading: 0,
  unhealthy: 0,
  offline: 0,
  config_error: 0,
  rate_limited: 0,
};

/** One model as an endpoint reported it. */
export interface ModelCard {
  readonly id: string;
  /** The card exactly as the backend returned it (LMDeploy's `root`, `permission`, ...). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Outcome of one health probe. */
export interface ProbeResult {
  readonly status: EndpointStatus;
  readonly latencyMs: number;
  readonly error?: string;
  /** For `rate_limited`: how long the backend asked olla-ts to wait. */
  readonly retryAfterMs?: number;
}

/** Read-only view of an endpoint's state. */
export interface EndpointView {
  readonly name: string;
  readonly type: string;
  readonly profile: Profile;
  readonly config: EndpointConfig;
  /** Base URL requests are sent to (path kept only with `preserve_path`). */
  readonly baseUrl: string;
  /** Headers from `auth` and `headers`, sent on every upstream request and probe. */
  readonly outboundHeaders: readonly (readonly [string, string])[];
  /** Host and port, for the connect watchdog. */
  readonly address: { readonly hostname: string; readonly port: number };
  readonly status: EndpointStatus;
  readonly lastError: string | undefined;
  readonly lastCheckAt: number | undefined;
  readonly nextCheckAt: number | undefined;
  readonly lastProbeLatencyMs: number | undefined;
  readonly consecutiveProbeFailures: number;
  /** Discovered models; `undefined` until the first discovery succeeds. */
  readonly models: ReadonlyMap<string, ModelCard> | undefined;
  readonly modelsUpdatedAt: number | undefined;
  readonly inflight: number;
  readonly requests: number;
  readonly failures: number;
  /** Exponentially weighted mean of upstream response-header latency, ms. */
  readonly latencyMs: number | undefined;
  /** Time until which a 429 keeps the endpoint out of rotation. */
  readonly rateLimitedUntil: number;
  readonly breaker: CircuitBreaker;
}

/** Why a proxied attempt failed, as far as the endpoint's state is concerned. */
export type FailureKind = "connection" | "timeout" | "server_error";

class Endpoint implements EndpointView {
  status: EndpointStatus = "unknown";
  lastError: string | undefined;
  lastCheckAt: number | undefined;
  nextCheckAt: number | undefined;
  lastProbeLatencyMs: number | undefined;
  consecutiveProbeFailures = 0;
  models: Map<string, ModelCard> | undefined;
  modelsUpdatedAt: number | undefined;
  inflight = 0;
  requests = 0;
  failures = 0;
  latencyMs: number | undefined;
  rateLimitedUntil = 0;
  readonly outboundHeaders: readonly (readonly [string, string])[];
  readonly baseUrl: string;
  readonly address: { readonly hostname: string; readonly port: number };
  readonly breaker: CircuitBreaker;
  readonly keepModel: (id: string) => boolean;

  constructor(
    readonly config: EndpointConfig,
    readonly profile: Profile,
    breaker: CircuitBreaker,
  ) {
    this.outboundHeaders = endpointHeaders(config);
    const url = new URL(config.url);
    this.baseUrl = config.preserve_path ? url.href.replace(/\/+$/, "") : url.origin;
    this.address = {
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    };
    this.breaker = breaker;
    this.keepModel = globFilter(config.model_filter.include, config.model_filter.exclude);
  }

  get name(): string {
    return this.config.name;
  }

  get type(): string {
    return this.profile.name;
  }
}

/** A status change, delivered to {@linkcode Registry.onChange} listeners. */
export interface StatusChange {
  readonly endpoint: EndpointView;
  readonly previous: EndpointStatus;
}

/** Options for {@linkcode Registry}. */
export interface RegistryOptions {
  clock: Clock;
  /** @default {5} */
  breakerFailureThreshold?: number;
  /** @default {30_000} */
  breakerCooldownMs?: number;
}

/** The endpoint state store. */
export class Registry {
  readonly #clock: Clock;
  readonly #endpoints: Endpoint[];
  readonly #byName = new Map<string, Endpoint>();
  /** model id -> names of endpoints that list it. */
  readonly #modelIndex = new Map<string, Set<string>>();
  readonly #listeners = new Set<(change: StatusChange) => void>();

  constructor(configs: readonly EndpointConfig[], profiles: ProfileSet, options: RegistryOptions) {
    this.#clock = options.clock;
    this.#endpoints = configs.map((config) => {
      const profile = profiles.forType(config.type);
      if (!profile) {
        throw new TypeError(
          `Cannot register endpoint "${config.name}": unknown type "${config.type}"`,
        );
      }
      return new Endpoint(
        config,
        profile,
        new CircuitBreaker({
          failureThreshold: options.breakerFailureThreshold,
          cooldownMs: options.breakerCooldownMs,
        }),
      );
    });
    for (const endpoint of this.#endpoints) this.#byName.set(endpoint.name, endpoint);
  }

  /** All endpoints, in configuration order. */
  get endpoints(): readonly EndpointView[] {
    return this.#endpoints;
  }

  get(name: string): EndpointView | undefined {
    return this.#byName.get(name);
  }

  /**
   * Whether the endpoint may be sent a request now: its status has traffic weight, it is
   * not inside a backend's `Retry-After`, and its breaker allows a request.
   */
  isRoutable(endpoint: EndpointView, now = this.#clock.now()): boolean {
    return TRAFFIC_WEIGHT[endpoint.status] > 0 && endpoint.rateLimitedUntil <= now &&
      endpoint.breaker.allows(now);
  }

  /** Names of endpoints whose discovered models include `model`. */
  endpointsServing(model: string): ReadonlySet<string> | undefined {
    return this.#modelIndex.get(model);
  }

  /** Every model id any endpoint lists. */
  modelIds(): IterableIterator<string> {
    return this.#modelIndex.keys();
  }

  /** Subscribes to status changes; returns the unsubscribe function. */
  onChange(listener: (change: StatusChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves `true` once `predicate` holds for the endpoint, or `false` after `timeoutMs`
   * or when `signal` aborts.
   */
  waitFor(
    name: string,
    predicate: (endpoint: EndpointView) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const endpoint = this.#byName.get(name);
    if (!endpoint) return Promise.resolve(false);
    if (predicate(endpoint)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (result: boolean) => {
        unsubscribe();
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(result);
      };
      const onAbort = () => finish(false);
      const unsubscribe = this.onChange(({ endpoint: changed }) => {
        if (changed.name === name && predicate(changed)) finish(true);
      });
      const timer = this.#clock.setTimeout(() => finish(false), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  // --- reports from the health checker -------------------------------------------------

  /**
   * Records a probe result. Returns whether this probe re-admitted an endpoint that was
   * not routable before (which closes its breaker and calls for model re-discovery).
   */
  applyProbe(name: string, result: ProbeResult): { recovered: boolean } {
    const endpoint = this.#require(name);
    const now = this.#clock.now();
    const wasRoutable = TRAFFIC_WEIGHT[endpoint.status] > 0 && endpoint.status !== "unknown";
    endpoint.lastCheckAt = now;
    endpoint.lastProbeLatencyMs = result.latencyMs;
    const healthy = TRAFFIC_WEIGHT[result.status] > 0 || result.status === "sleeping";
    endpoint.consecutiveProbeFailures = healthy ? 0 : endpoint.consecutiveProbeFailures + 1;
    endpoint.lastError = result.error ?? (healthy ? undefined : endpoint.lastError);
    if (result.status === "rate_limited") {
      endpoint.rateLimitedUntil = now + (result.retryAfterMs ?? 30_000);
    }
    const recovered = !wasRoutable && TRAFFIC_WEIGHT[result.status] > 0;
    if (recovered) endpoint.breaker.reset();
    this.#setStatus(endpoint, result.status);
    return { recovered };
  }

  /** Records when the next probe is due, for status output. */
  setNextCheck(name: string, at: number): void {
    this.#require(name).nextCheckAt = at;
  }

  // --- reports from model discovery ----------------------------------------------------

  /** Replaces an endpoint's model list; models it no longer lists stop routing to it. */
  setModels(name: string, cards: readonly ModelCard[]): void {
    const endpoint = this.#require(name);
    for (const id of endpoint.models?.keys() ?? []) this.#modelIndex.get(id)?.delete(name);
    endpoint.models = new Map();
    for (const card of cards) {
      if (!endpoint.keepModel(card.id)) continue;
      endpoint.models.set(card.id, card);
      let names = this.#modelIndex.get(card.id);
      if (!names) this.#modelIndex.set(card.id, names = new Set());
      names.add(name);
    }
    for (const [id, names] of this.#modelIndex) if (names.size === 0) this.#modelIndex.delete(id);
    endpoint.modelsUpdatedAt = this.#clock.now();
  }

  // --- reports from the proxy ----------------------------------------------------------

  /** A request is being sent to the endpoint. */
  beginAttempt(name: string): void {
    const endpoint = this.#require(name);
    endpoint.inflight++;
    endpoint.requests++;
    endpoint.breaker.onSend(this.#clock.now());
  }

  /** The request's answer ended (or never came); balances {@linkcode beginAttempt}. */
  endAttempt(name: string): void {
    const endpoint = this.#require(name);
    endpoint.inflight = Math.max(0, endpoint.inflight - 1);
  }

  /** The endpoint answered (any status below 500, or a 5xx that is not its fault). */
  reportSuccess(name: string, latencyMs: number): void {
    const endpoint = this.#require(name);
    endpoint.breaker.recordSuccess();
    endpoint.latencyMs = endpoint.latencyMs === undefined
      ? latencyMs
      : endpoint.latencyMs * 0.8 + latencyMs * 0.2;
  }

  /**
   * The endpoint failed a proxied request. A connection failure marks it offline at once
   * instead of waiting for the next probe.
   */
  reportFailure(name: string, kind: FailureKind, detail: string): void {
    const endpoint = this.#require(name);
    endpoint.failures++;
    endpoint.lastError = detail;
    endpoint.breaker.recordFailure(this.#clock.now());
    if (kind === "connection") this.#setStatus(endpoint, "offline");
  }

  /** The attempt ended without telling anything about the endpoint (client went away). */
  reportAbandoned(name: string): void {
    this.#require(name).breaker.releaseTrial();
  }

  /** A proxied request found the engine asleep (LMDeploy's 503). */
  reportSleeping(name: string): void {
    const endpoint = this.#require(name);
    endpoint.breaker.releaseTrial();
    this.#setStatus(endpoint, "sleeping");
  }

  /** The backend answered 429; keep it out of rotation for `retryAfterMs`. */
  reportRateLimited(name: string, retryAfterMs: number): void {
    const endpoint = this.#require(name);
    endpoint.breaker.releaseTrial();
    endpoint.rateLimitedUntil = this.#clock.now() + retryAfterMs;
  }

  #require(name: string): Endpoint {
    const endpoint = this.#byName.get(name);
    if (!endpoint) throw new RangeError(`Cannot update endpoint "${name}": it is not registered`);
    return endpoint;
  }

  #setStatus(endpoint: Endpoint, status: EndpointStatus): void {
    const previous = endpoint.status;
    endpoint.status = status;
    if (previous === status) return;
    for (const listener of this.#listeners) listener({ endpoint, previous });
  }
}

export type { BreakerState };
