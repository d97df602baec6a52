/**
 * The long-lived owners of olla-ts's state, built once and kept across reloads: the
 * registry, health checks, model discovery, wake-up coordinator, admission gates, sticky
 * table, timers, in-flight tracking, telemetry, the endpoint fleet and LMDeploy node
 * registration. Each request pipeline (pipeline.ts) reads and reports into them.
 *
 * @module
 */
import { Fleet } from "./fleet.ts";
import { NodeRegistration, type RegistrationStore } from "./registration.ts";
import { canConnect, hostName } from "./runtime_api.ts";
import { Cluster } from "../cluster/cluster.ts";
import type { RedisClientLike } from "../cluster/redis_link.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { Deadlines } from "../deadlines.ts";
import { LiveStreams } from "../proxy/live_streams.ts";
import { HealthChecker } from "../health/checker.ts";
import { ModelDiscovery } from "../health/discovery.ts";
import { EngineMetricsReader } from "../health/engine_metrics.ts";
import { WakeCoordinator } from "../health/wake.ts";
import type { Logger } from "../log.ts";
import { Counter } from "../observability/prometheus.ts";
import { Telemetry } from "../observability/telemetry.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import type { Admission } from "../proxy/admission.ts";
import { EngineLoads } from "../registry/engine_loads.ts";
import { Registry } from "../registry/registry.ts";
import { type PinStore, StickyTable } from "../routing/sticky.ts";
import { InflightTracker } from "../server/inflight.ts";
import { NativeMessagesSupport } from "../translate/anthropic_plan.ts";
import { retryingResetOnce } from "../upstream/reset_retry.ts";
import { VERSION } from "../version.ts";

/** What the service needs from its surroundings. */
export interface ServiceDeps {
  config: Config;
  profiles: ProfileSet;
  logger: Logger;
  /** @default {systemClock} */
  clock?: Clock;
  /** @default {globalThis.fetch} */
  fetch?: typeof fetch;
  /** TCP reachability check for the connect watchdog. @default {canConnect} (node:net) */
  canConnect?: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** @default {Math.random} */
  random?: () => number;
  /** Log lines dropped because the output did not keep up (the log writer's count). */
  logLinesDropped?: () => number;
  /** Where registered LMDeploy nodes are kept across restarts (`state_file`). */
  registrationStore?: RegistrationStore;
  /** Makes the Redis client of `cluster.redis_url`. @default {node-redis} */
  createRedisClient?: (url: string) => Promise<RedisClientLike>;
  /** The runtime's name, version and memory figures, for status output. */
  runtime: {
    name: string;
    version: string;
    /** See Runtime.freshConnection. @default {{}} (fetch's own pooling) */
    freshConnection?: RequestInit;
    memory(): { rss: number; heapUsed: number; heapTotal: number; external: number };
  };
}

/** What Olla's `olla_info` and `/internal/status` call the proxy's settings. */
export function proxySettingsOf(config: Config) {
  return {
    engine: config.proxy.engine,
    profile: config.proxy.profile,
    balancer: config.proxy.load_balancer,
  };
}

/** The state owners. */
export interface ServiceState {
  readonly clock: Clock;
  /** The proxy's `fetch`. */
  readonly fetch: typeof fetch;
  /**
   * What olla-ts's own requests to backends use (probes, discovery, engine metrics,
   * wake-ups, node checks, endpoint actions): a reset is retried once on a new connection.
   */
  readonly ownFetch: typeof fetch;
  readonly canConnect: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly health: HealthChecker;
  readonly discovery: ModelDiscovery;
  readonly wake: WakeCoordinator;
  readonly admissions: Map<string, Admission>;
  readonly sticky: StickyTable;
  /** Where requests look pins up: the cluster's when shared, else the table. */
  readonly pins: PinStore;
  /** With `cluster.redis_url`: what this instance shares with the others. */
  readonly cluster: Cluster | undefined;
  readonly deadlines: Deadlines;
  readonly inflight: InflightTracker;
  /** Answers being streamed, for shutdown to end with an error event when time is up. */
  readonly liveStreams: LiveStreams;
  readonly telemetry: Telemetry;
  readonly nativeMessages: NativeMessagesSupport;
  readonly fleet: Fleet;
  readonly engineLoads: EngineLoads;
  readonly engineMetrics: EngineMetricsReader;
  readonly registration: NodeRegistration;
  /** `olla_config_reloads_total{outcome}`. */
  readonly reloads: Counter;
  /** `olla_connections_refused_total`: the runtime could not accept (no file descriptors). */
  readonly connectionsRefused: Counter;
}

/** Builds the state owners from the configuration olla-ts started with. */
export function createState(deps: ServiceDeps): ServiceState {
  const { config, profiles, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const fetch = deps.fetch ?? globalThis.fetch;
  const ownFetch = retryingResetOnce(fetch, deps.runtime.freshConnection ?? {});
  const registry = new Registry(config.discovery.static.endpoints, profiles, {
    clock,
    breakerFailureThreshold: config.proxy.circuit_breaker.failure_threshold,
    breakerCooldownMs: config.proxy.circuit_breaker.cooldown,
  });
  const modelDiscovery = config.discovery.model_discovery;
  const discovery = new ModelDiscovery({
    registry,
    fetch: ownFetch,
    clock,
    logger,
    enabled: modelDiscovery.enabled,
    intervalMs: modelDiscovery.interval,
    timeoutMs: modelDiscovery.timeout,
    retryAttempts: modelDiscovery.retry_attempts,
    retryBackoffMs: modelDiscovery.retry_backoff,
    concurrency: modelDiscovery.concurrent_workers,
  });
  const health = new HealthChecker({
    registry,
    profiles,
    initialDelayMs: config.discovery.health_check.initial_delay,
    fetch: ownFetch,
    clock,
    logger,
    random: deps.random,
    onReachable: (name, recovered) => {
      if (recovered || registry.get(name)?.models === undefined) discovery.refresh(name);
    },
  });
  const wake = new WakeCoordinator({
    registry,
    fetch: ownFetch,
    clock,
    logger,
    probeNow: (name) => health.checkNow(name),
    timeoutMs: config.proxy.wake_timeout,
  });
  const admissions = new Map<string, Admission>();
  const engineLoads = new EngineLoads();
  const engineMetrics = new EngineMetricsReader({
    registry,
    loads: engineLoads,
    fetch: ownFetch,
    clock,
    logger,
    settings: config.engine_metrics,
  });
  const sticky = new StickyTable({
    maxEntries: config.proxy.sticky_sessions.max_sessions,
    idleTtlMs: config.proxy.sticky_sessions.idle_ttl_seconds * 1000,
    clock,
  });
  registry.onChange(({ endpoint }) => {
    if (!registry.isRoutable(endpoint)) sticky.unpinEndpoint(endpoint.name);
  });
  const inflight = new InflightTracker();
  const telemetry = new Telemetry({
    registry,
    inflightCount: () => inflight.count,
    admissions,
    logger,
    accessLog: config.server.request_logging,
    aliases: config.model_aliases,
    runtime: deps.runtime,
    clock,
    proxy: proxySettingsOf(config),
    now: () => clock.now(),
    logLinesDropped: deps.logLinesDropped ?? (() => 0),
    engineLoads,
  });
  const events = telemetry.events;
  registry.onChange(({ endpoint, previous }) => {
    if (endpoint.draining && previous === endpoint.status) return;
    const error = endpoint.lastError ? `: ${endpoint.lastError}` : "";
    events.push("status", `${previous} -> ${endpoint.status}${error}`, endpoint.name);
  });
  registry.onBreakerOpen((endpoint) =>
    events.push("breaker_open", endpoint.lastError ?? "repeated failures", endpoint.name)
  );
  const reloads = telemetry.metrics.add(
    new Counter(
      "olla_config_reloads_total",
      "Configuration reloads, by outcome (applied, invalid).",
    ),
  );
  const connectionsRefused = telemetry.metrics.add(
    new Counter(
      "olla_connections_refused_total",
      "Times the server could not accept connections (out of file descriptors) and paused accepting.",
    ),
  );
  const fleet = new Fleet({
    registry,
    health,
    discovery,
    admissions,
    sticky,
    telemetry,
    engineMetrics,
    clock,
    logger,
    profiles,
    drainTimeoutMs: config.server.shutdown_timeout,
    onChange: (kind, endpoint) =>
      events.push(kind, kind === "endpoint_added" ? "added" : "removed", endpoint),
  });
  const cluster = config.cluster.redis_url === "" ? undefined : new Cluster({
    settings: config.cluster,
    instanceId: config.cluster.instance_id || `${hostName()}:${config.server.port}`,
    clock,
    logger,
    metrics: telemetry.metrics,
    sticky: { table: sticky, ...config.proxy.sticky_sessions },
    createClient: deps.createRedisClient,
    describe: () => ({
      version: VERSION,
      runtime: `${deps.runtime.name} ${deps.runtime.version}`,
      started_at: new Date(telemetry.startedAt).toISOString(),
      endpoints: registry.endpoints.filter((endpoint) => !endpoint.draining).map((endpoint) => ({
        name: endpoint.name,
        url: endpoint.config.url,
        status: endpoint.status,
        inflight: endpoint.inflight,
      })),
    }),
  });
  const registration = new NodeRegistration({
    fleet,
    registry,
    settings: config.discovery.registration,
    logger,
    fetch: ownFetch,
    store: deps.registrationStore,
    shared: cluster?.nodes,
  });
  return {
    clock,
    fetch,
    ownFetch,
    canConnect: deps.canConnect ?? canConnect,
    logger,
    registry,
    health,
    discovery,
    wake,
    admissions,
    sticky,
    pins: cluster?.pins ?? sticky,
    cluster,
    deadlines: new Deadlines(clock),
    inflight,
    liveStreams: new LiveStreams(),
    telemetry,
    nativeMessages: new NativeMessagesSupport(),
    fleet,
    engineLoads,
    engineMetrics,
    registration,
    reloads,
    connectionsRefused,
  };
}
