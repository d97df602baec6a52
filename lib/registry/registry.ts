/**
 * The one owner of endpoint state: health status, breaker, in-flight count, discovered
 * models and request statistics. The health checker, model discovery and the proxy
 * report outcomes here; everything else reads {@linkcode EndpointView}s. Which statuses
 * take traffic, and how much, is decided in endpoint_state.ts and nowhere else.
 *
 * @module
 */
import { CircuitBreaker } from "./breaker.ts";
import { Endpoint, type EndpointView, type FailureKind, type ProbeResult } from "./endpoint.ts";
import {
  type EndpointStatus,
  isProbeSuccess,
  isRoutable,
  takesTraffic,
  wasSeenServing,
} from "./endpoint_state.ts";
import type { Clock } from "../clock.ts";
import type { EndpointConfig } from "../config/schema_endpoint.ts";
import type { ModelCard } from "../profiles/model_lists.ts";
import { UNDETECTED_PROFILE } from "../profiles/built_in.ts";
import type { Profile, ProfileSet } from "../profiles/profile.ts";
import { AUTO_TYPE } from "../config/endpoints.ts";

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
      const detect = config.type === AUTO_TYPE;
      const profile = detect ? UNDETECTED_PROFILE : profiles.forType(config.type);
      if (!profile) {
        throw new TypeError(
          `Cannot register endpoint "${config.name}": unknown type "${config.type}"`,
        );
      }
      const endpoint = new Endpoint(
        config,
        profile,
        new CircuitBreaker({
          failureThreshold: options.breakerFailureThreshold,
          cooldownMs: options.breakerCooldownMs,
        }),
      );
      if (detect) endpoint.status = "detecting";
      return endpoint;
    });
    for (const endpoint of this.#endpoints) this.#byName.set(endpoint.name, endpoint);
  }

  /** The registry's clock reading, for callers that ask several questions at one instant. */
  now(): number {
    return this.#clock.now();
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
    return isRoutable(endpoint, now);
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
    const wasServing = wasSeenServing(endpoint.status);
    endpoint.lastCheckAt = now;
    endpoint.lastProbeLatencyMs = result.latencyMs;
    const healthy = isProbeSuccess(result.status);
    endpoint.consecutiveProbeFailures = healthy ? 0 : endpoint.consecutiveProbeFailures + 1;
    endpoint.lastError = result.error ?? (healthy ? undefined : endpoint.lastError);
    if (result.status === "rate_limited") {
      endpoint.rateLimitedUntil = now + (result.retryAfterMs ?? 30_000);
    }
    const recovered = !wasServing && takesTraffic(result.status);
    if (recovered) endpoint.breaker.reset();
    this.#setStatus(endpoint, result.status);
    return { recovered };
  }

  /** Records when the next probe is due, for status output. */
  setNextCheck(name: string, at: number): void {
    this.#require(name).nextCheckAt = at;
  }

  /**
   * An `auto` endpoint was recognised as `profile`'s type: it takes that type's routes,
   * health check and model list from now on, and is probed as one.
   */
  setDetectedProfile(name: string, profile: Profile): void {
    const endpoint = this.#require(name);
    endpoint.profile = profile;
    endpoint.lastError = undefined;
    endpoint.consecutiveProbeFailures = 0;
    this.#setStatus(endpoint, "unknown");
  }

  /** An `auto` endpoint's type could not be recognised yet. */
  reportUndetected(name: string, detail: string): void {
    const endpoint = this.#require(name);
    endpoint.lastCheckAt = this.#clock.now();
    endpoint.lastError = detail;
    endpoint.consecutiveProbeFailures++;
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
