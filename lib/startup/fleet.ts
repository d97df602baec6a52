/**
 * Changing the endpoint set while serving. Every owner of per-endpoint state follows the
 * registry here, in one place: health checks and model discovery start for an endpoint
 * that is added; one that is removed drains (it takes nothing new, and what it serves
 * finishes, up to `server.shutdown_timeout`), then its probes stop, its admission queue,
 * sticky pins and metric series go and the registry forgets it. A change of URL or type
 * is a removal and an addition; any other change is applied in place, state kept.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { EndpointConfig } from "../config/schema_endpoint.ts";
import type { ModelDiscovery } from "../health/discovery.ts";
import type { HealthChecker } from "../health/checker.ts";
import type { EngineMetricsReader } from "../health/engine_metrics.ts";
import type { Logger } from "../log.ts";
import type { Telemetry } from "../observability/telemetry.ts";
import type { ModelCard } from "../profiles/model_lists.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import { Admission } from "../proxy/admission.ts";
import type { EndpointSource, EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import { waitForEndpoint } from "../registry/wait_for.ts";
import type { StickyTable } from "../routing/sticky.ts";

/** Collaborators of {@linkcode Fleet}. */
export interface FleetDeps {
  registry: Registry;
  health: HealthChecker;
  discovery: ModelDiscovery;
  admissions: Map<string, Admission>;
  sticky: StickyTable;
  telemetry: Telemetry;
  engineMetrics: EngineMetricsReader;
  clock: Clock;
  logger: Logger;
  profiles: ProfileSet;
  /** Longest wait for a removed endpoint's requests to finish (`server.shutdown_timeout`). */
  drainTimeoutMs: number;
  /** Told when an endpoint was added or removed (the event feed). */
  onChange?: (kind: "endpoint_added" | "endpoint_removed", endpoint: string) => void;
}

/** What applying a new endpoint list changed. */
export interface FleetChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

function admissionFor(config: EndpointConfig, clock: Clock): Admission | undefined {
  if (config.max_concurrent_requests <= 0) return undefined;
  return new Admission({
    maxConcurrent: config.max_concurrent_requests,
    queueSize: config.queue_size,
    queueTimeoutMs: config.queue_timeout,
    clock,
    endpoint: config.name,
  });
}

/** Settings whose change makes a new endpoint rather than an updated one. */
function identityChanged(a: EndpointConfig, b: EndpointConfig): boolean {
  return a.url !== b.url || a.type !== b.type || a.preserve_path !== b.preserve_path;
}

/** The runtime endpoint set. */
export class Fleet {
  readonly #deps: FleetDeps;
  readonly #draining = new Map<string, Promise<void>>();
  #drained = 0;

  constructor(deps: FleetDeps) {
    this.#deps = deps;
    for (const endpoint of deps.registry.endpoints) this.#admit(endpoint.config);
  }

  /** The profiles new endpoints are typed with (a reload may bring others). */
  set profiles(profiles: ProfileSet) {
    this.#deps.profiles = profiles;
  }

  /**
   * Adds an endpoint and starts checking it; `models` seed its model list until discovery
   * has read it (a registered LMDeploy node declares its models).
   *
   * @throws {TypeError} for an unknown type or a name in use.
   */
  add(config: EndpointConfig, source: EndpointSource, models?: readonly string[]): EndpointView {
    const { registry, health, discovery, logger } = this.#deps;
    const endpoint = registry.add(config, this.#deps.profiles, source);
    this.#admit(config);
    if (models && models.length > 0) {
      registry.setModels(
        config.name,
        models.map((id): ModelCard => ({ id, raw: { id, object: "model" } })),
      );
    }
    health.track(config.name);
    this.#deps.engineMetrics.track(config.name);
    discovery.refresh(config.name);
    logger.info("endpoint added", {
      endpoint: config.name,
      url: config.url,
      type: config.type,
      source,
    });
    return endpoint;
  }

  /** Applies new settings; a new URL or type replaces the endpoint (drain, then add). */
  async update(config: EndpointConfig, source: EndpointSource): Promise<void> {
    const current = this.#deps.registry.get(config.name);
    if (!current) {
      this.add(config, source);
      return;
    }
    if (identityChanged(current.config, config)) {
      const draining = this.#detach(config.name);
      this.add(config, source);
      await draining;
      return;
    }
    this.#deps.registry.update(config.name, config);
    this.#admit(config);
  }

  /** Drains and forgets an endpoint; resolves once it is gone. */
  remove(name: string): Promise<void> {
    return this.#detach(name);
  }

  /**
   * Makes the `source` endpoints exactly `configs`: adds, updates in place, and drains
   * what is gone. Endpoints of the other source are left alone.
   */
  apply(configs: readonly EndpointConfig[], source: EndpointSource): FleetChanges {
    const { registry } = this.#deps;
    const wanted = new Map(configs.map((config) => [config.name, config]));
    const changes: FleetChanges = { added: [], removed: [], changed: [] };
    for (const endpoint of registry.endpoints) {
      if (endpoint.source !== source || endpoint.draining || wanted.has(endpoint.name)) continue;
      changes.removed.push(endpoint.name);
      void this.remove(endpoint.name);
    }
    for (const config of configs) {
      const current = registry.get(config.name);
      if (!current) {
        this.add(config, source);
        changes.added.push(config.name);
      } else if (JSON.stringify(current.config) !== JSON.stringify(config)) {
        void this.update(config, source);
        changes.changed.push(config.name);
      }
    }
    return changes;
  }

  /** Resolves when every removal under way has finished (for shutdown and tests). */
  async settled(): Promise<void> {
    await Promise.all(this.#draining.values());
  }

  #admit(config: EndpointConfig): void {
    const admission = admissionFor(config, this.#deps.clock);
    if (admission) this.#deps.admissions.set(config.name, admission);
    else this.#deps.admissions.delete(config.name);
  }

  /**
   * Takes the endpoint out of rotation under a draining name (so a replacement may take
   * its name at once), waits for its requests, then forgets it everywhere.
   */
  #detach(name: string): Promise<void> {
    const { registry, health, admissions, sticky, telemetry, logger } = this.#deps;
    const endpoint = registry.get(name);
    if (!endpoint || endpoint.draining) return this.#draining.get(name) ?? Promise.resolve();
    const drainingName = `${name} (draining ${++this.#drained})`;
    health.untrack(name);
    this.#deps.engineMetrics.untrack(name);
    registry.drain(name, drainingName);
    sticky.unpinEndpoint(name);
    const admission = admissions.get(name);
    admissions.delete(name);
    if (admission) admissions.set(drainingName, admission);
    logger.info("endpoint draining", { endpoint: name, inflight: endpoint.inflight });
    const idle = (e: EndpointView) => e.inflight === 0;
    const done = waitForEndpoint(
      registry,
      this.#deps.clock,
      drainingName,
      idle,
      this.#deps.drainTimeoutMs,
    )
      .then((finished) => {
        if (!finished) {
          logger.warn("endpoint removed with requests still running", {
            endpoint: name,
            inflight: endpoint.inflight,
          });
        }
        registry.delete(drainingName);
        admissions.delete(drainingName);
        // A replacement under the same name keeps the series.
        if (!registry.get(name)) telemetry.forgetEndpoint(name);
        logger.info("endpoint removed", { endpoint: name });
        this.#deps.onChange?.("endpoint_removed", name);
      })
      .finally(() => this.#draining.delete(drainingName));
    this.#draining.set(drainingName, done);
    return done;
  }
}
