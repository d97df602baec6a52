/**
 * The one owner of endpoint state: which endpoints exist, their health status, breaker,
 * in-flight count, discovered models and request statistics. The health checker, model
 * discovery and the proxy report outcomes here; everything else reads
 * {@linkcode EndpointView}s. Which statuses take traffic, and how much, is decided in
 * endpoint_state.ts and nowhere else.
 *
 * The set changes at run time (a reload, LMDeploy registration): {@linkcode Registry.add},
 * {@linkcode Registry.update}, {@linkcode Registry.drain} and {@linkcode Registry.delete}.
 * A report about an endpoint that has been deleted meanwhile (a probe or an answer that
 * was still running) is ignored.
 *
 * @module
 */
import { CircuitBreaker } from "./breaker.ts";
import {
  Endpoint,
  endpointHeaders,
  type EndpointSource,
  type EndpointView,
  type FailureKind,
  type ProbeResult,
} from "./endpoint.ts";
import {
  type EndpointStatus,
  isProbeSuccess,
  isRoutable,
  takesTraffic,
  wasSeenServing,
} from "./endpoint_state.ts";
import type { Clock } from "../clock.ts";
import { type EndpointConfig, endpointSpec } from "../config/schema_endpoint.ts";
import { globFilter } from "../glob.ts";
import type { ModelCard } from "../profiles/model_lists.ts";
import { UNDETECTED_PROFILE } from "../profiles/built_in.ts";
import type { Profile, ProfileSet } from "../profiles/profile.ts";
import { AUTO_TYPE } from "../config/endpoints.ts";

/** A status change, delivered to {@linkcode Registry.onChange} listeners. */
export interface StatusChange {
  readonly endpoint: EndpointView;
  readonly previous: EndpointStatus;
}

/** The settings of the stand-in a late report about a deleted endpoint is applied to. */
const GONE_CONFIG: EndpointConfig = { ...endpointSpec.fallback, url: "http://gone.invalid" };

/** How many answer durations each endpoint keeps (LMDeploy proxy's window). */
const LATENCY_WINDOW = 15;

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
  readonly #options: RegistryOptions;
  #endpoints: Endpoint[] = [];
  readonly #byName = new Map<string, Endpoint>();
  /** model id -> names of endpoints that list it. */
  readonly #modelIndex = new Map<string, Set<string>>();
  readonly #listeners = new Set<(change: StatusChange) => void>();
  readonly #breakerListeners = new Set<(endpoint: EndpointView) => void>();

  constructor(configs: readonly EndpointConfig[], profiles: ProfileSet, options: RegistryOptions) {
    this.#clock = options.clock;
    this.#options = options;
    for (const config of configs) this.add(config, profiles);
  }

  /**
   * Adds an endpoint; it is `unknown` (or `detecting`) until probed.
   *
   * @throws {TypeError} for an unknown type or a name already registered.
   */
  add(
    config: EndpointConfig,
    profiles: ProfileSet,
    source: EndpointSource = "static",
  ): EndpointView {
    if (this.#byName.has(config.name)) {
      throw new TypeError(`Cannot register endpoint "${config.name}": the name is taken`);
    }
    const endpoint = new Endpoint(
      config,
      this.#profileFor(config, profiles),
      this.#breaker(),
      source,
    );
    if (config.type === AUTO_TYPE) endpoint.status = "detecting";
    this.#endpoints = [...this.#endpoints, endpoint];
    this.#byName.set(endpoint.name, endpoint);
    return endpoint;
  }

  /**
   * Applies new settings to an endpoint with the same URL and type (priority, weight,
   * intervals, headers, filters, ...): its state is kept.
   */
  update(name: string, config: EndpointConfig): void {
    const endpoint = this.#byName.get(name);
    if (!endpoint) return;
    endpoint.config = config;
    endpoint.outboundHeaders = endpointHeaders(config);
    endpoint.keepModel = globFilter(config.model_filter.include, config.model_filter.exclude);
    if (endpoint.models) this.setModels(name, [...endpoint.models.values()]);
  }

  /**
   * Points every endpoint at its type's profile in `profiles` (a reload brought new
   * profile files); an endpoint whose type is gone from them keeps its old profile.
   */
  useProfiles(profiles: ProfileSet): void {
    for (const endpoint of this.#endpoints) {
      if (endpoint.config.type === AUTO_TYPE) continue;
      const profile = profiles.forType(endpoint.config.type);
      if (profile) endpoint.profile = profile;
    }
  }

  /**
   * Takes the endpoint out of rotation for good: it finishes what it serves and takes
   * nothing new; its models stop routing to it. It is renamed to `drainingName`, so a
   * replacement may take its name at once (its in-flight requests report by the endpoint
   * object's name, which follows).
   */
  drain(name: string, drainingName = name): void {
    const endpoint = this.#byName.get(name);
    if (!endpoint || endpoint.draining) return;
    this.#unindex(endpoint);
    endpoint.draining = true;
    if (drainingName !== name) {
      this.#byName.delete(name);
      endpoint.config = { ...endpoint.config, name: drainingName };
      this.#byName.set(drainingName, endpoint);
    }
    this.#notify(endpoint, endpoint.status);
  }

  /** An operator's drain (`held`: no new requests; name, models, probes kept) or undrain. */
  hold(name: string, held: boolean): void {
    const endpoint = this.#byName.get(name);
    if (!endpoint || endpoint.draining || endpoint.held === held) return;
    endpoint.held = held;
    this.#notify(endpoint, endpoint.status);
  }

  /** Forgets the endpoint (after draining); its models stop routing to it. */
  delete(name: string): void {
    const endpoint = this.#byName.get(name);
    if (!endpoint) return;
    this.#unindex(endpoint);
    this.#byName.delete(name);
    this.#endpoints = this.#endpoints.filter((item) => item !== endpoint);
  }

  /** Removes the endpoint's models from the model index. */
  #unindex(endpoint: Endpoint): void {
    for (const id of endpoint.models?.keys() ?? []) {
      const names = this.#modelIndex.get(id);
      names?.delete(endpoint.name);
      if (names?.size === 0) this.#modelIndex.delete(id);
    }
  }

  #notify(endpoint: Endpoint, previous: EndpointStatus): void {
    for (const listener of this.#listeners) listener({ endpoint, previous });
  }

  #profileFor(config: EndpointConfig, profiles: ProfileSet): Profile {
    if (config.type === AUTO_TYPE) return UNDETECTED_PROFILE;
    const profile = profiles.forType(config.type);
    if (!profile) {
      throw new TypeError(
        `Cannot register endpoint "${config.name}": unknown type "${config.type}"`,
      );
    }
    return profile;
  }

  #breaker(): CircuitBreaker {
    return new CircuitBreaker({
      failureThreshold: this.#options.breakerFailureThreshold,
      cooldownMs: this.#options.breakerCooldownMs,
    });
  }

  /** The registry's clock reading, for callers that ask several questions at one instant. */
  now(): number {
    return this.#clock.now();
  }

  /** All endpoints, in the order they were added (a fresh array after each change). */
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

  /** Subscribes to circuit breakers opening; returns the unsubscribe function. */
  onBreakerOpen(listener: (endpoint: EndpointView) => void): () => void {
    this.#breakerListeners.add(listener);
    return () => this.#breakerListeners.delete(listener);
  }

  /** Subscribes to status changes; returns the unsubscribe function. */
  onChange(listener: (change: StatusChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
    const endpoint = this.#byName.get(name);
    // A list read for an endpoint removed (or draining) meanwhile routes nothing.
    if (!endpoint || endpoint.draining) return;
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
    // Whoever waits for a draining endpoint to finish is told when it has.
    if (endpoint.draining && endpoint.inflight === 0) this.#notify(endpoint, endpoint.status);
  }

  /** How long an answer took from dispatch to its last byte, for latency-aware balancers. */
  recordAnswerTime(name: string, ms: number): void {
    const samples = this.#byName.get(name)?.recentLatenciesMs;
    if (!samples) return;
    samples.push(ms);
    if (samples.length > LATENCY_WINDOW) samples.shift();
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
    const now = this.#clock.now();
    const wasOpen = endpoint.breaker.state(now) === "open";
    endpoint.breaker.recordFailure(now);
    if (!wasOpen && endpoint.breaker.state(now) === "open") {
      for (const listener of this.#breakerListeners) listener(endpoint);
    }
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

  /** A report's endpoint; a dummy for one deleted meanwhile, so its late report goes nowhere. */
  #require(name: string): Endpoint {
    return this.#byName.get(name) ?? this.#gone(name);
  }

  #gone(name: string): Endpoint {
    const profile = UNDETECTED_PROFILE;
    return new Endpoint(
      { ...GONE_CONFIG, name },
      profile,
      this.#breaker(),
    );
  }

  #setStatus(endpoint: Endpoint, status: EndpointStatus): void {
    const previous = endpoint.status;
    endpoint.status = status;
    if (previous === status) return;
    this.#notify(endpoint, previous);
  }
}
