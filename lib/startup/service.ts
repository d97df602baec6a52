/**
 * Builds olla-ts from a configuration: the registry, health checker, model discovery,
 * wake-up coordinator, admission gates, sticky table, proxy, dispatcher and app, wired
 * together. `main.ts` uses it, and so do the end-to-end tests, so both run the same
 * composition. Nothing starts until {@linkcode Service.start}.
 *
 * @module
 */
import { canConnect, type ServeOptions } from "./runtime_api.ts";
import { parseCidr } from "../cidr.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { Deadlines } from "../deadlines.ts";
import { HealthChecker } from "../health/checker.ts";
import { ModelDiscovery } from "../health/discovery.ts";
import { WakeCoordinator } from "../health/wake.ts";
import type { Logger } from "../log.ts";
import { configuredSecrets, createRedactor } from "../observability/redact.ts";
import { Telemetry } from "../observability/telemetry.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import { Admission } from "../proxy/admission.ts";
import { Dispatcher } from "../proxy/dispatch.ts";
import { Proxy } from "../proxy/forward.ts";
import { Registry } from "../registry/registry.ts";
import { createBalancer } from "../routing/balancer.ts";
import { StickyTable } from "../routing/sticky.ts";
import { createApp } from "../server/app.ts";
import type { ConnInfo } from "../server/app_env.ts";
import { KeyAuthenticator } from "../server/auth.ts";
import { createGuard } from "../server/guard.ts";
import { InflightTracker } from "../server/inflight.ts";
import { createRateGate } from "../server/rate_gate.ts";
import { RateLimiter } from "../server/rate_limit.ts";
import { requestContext } from "../server/request_context.ts";
import { NativeMessagesSupport } from "../translate/anthropic_plan.ts";

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
  /** The runtime's name, version and memory figures, for status output. */
  runtime: {
    name: string;
    version: string;
    memory(): { rss: number; heapUsed: number; heapTotal: number; external: number };
  };
}

/** A built olla-ts. */
export interface Service {
  readonly fetch: (request: Request, info?: ConnInfo) => Response | Promise<Response>;
  readonly registry: Registry;
  readonly inflight: InflightTracker;
  readonly health: HealthChecker;
  readonly discovery: ModelDiscovery;
  readonly telemetry: Telemetry;
  /** Starts health checks and model discovery. */
  start(): void;
  /** Stops every timer. */
  stop(): void;
}

/** Builds the service. */
export function createService(deps: ServiceDeps): Service {
  const { config, profiles, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const fetch = deps.fetch ?? globalThis.fetch;
  const registry = new Registry(config.discovery.static.endpoints, profiles, {
    clock,
    breakerFailureThreshold: config.proxy.circuit_breaker.failure_threshold,
    breakerCooldownMs: config.proxy.circuit_breaker.cooldown,
  });
  const modelDiscovery = config.discovery.model_discovery;
  const discovery = new ModelDiscovery({
    registry,
    fetch,
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
    fetch,
    clock,
    logger,
    random: deps.random,
    onReachable: (name, recovered) => {
      if (recovered || registry.get(name)?.models === undefined) discovery.refresh(name);
    },
  });
  const wake = new WakeCoordinator({
    registry,
    fetch,
    clock,
    logger,
    probeNow: (name) => health.checkNow(name),
    timeoutMs: config.proxy.wake_timeout,
  });
  const admissions = new Map<string, Admission>();
  for (const endpoint of config.discovery.static.endpoints) {
    if (endpoint.max_concurrent_requests > 0) {
      admissions.set(
        endpoint.name,
        new Admission({
          maxConcurrent: endpoint.max_concurrent_requests,
          queueSize: endpoint.queue_size,
          queueTimeoutMs: endpoint.queue_timeout,
          clock,
          endpoint: endpoint.name,
        }),
      );
    }
  }
  const sticky = new StickyTable({
    maxEntries: config.proxy.sticky_sessions.max_sessions,
    idleTtlMs: config.proxy.sticky_sessions.idle_ttl_seconds * 1000,
    clock,
  });
  registry.onChange(({ endpoint }) => {
    if (!registry.isRoutable(endpoint)) sticky.unpinEndpoint(endpoint.name);
  });
  const deadlines = new Deadlines(clock);
  const proxy = new Proxy({
    registry,
    deadlines,
    balancer: createBalancer(config.proxy.load_balancer, deps.random),
    admissions,
    clock,
    logger,
    fetch,
    canConnect: deps.canConnect ?? canConnect,
    proxy: config.proxy,
  });
  const dispatcher = new Dispatcher({
    settings: {
      maxBodyBytes: config.server.request_limits.max_body_size,
      bodyTimeoutMs: config.server.read_timeout,
      strategy: config.model_registry.routing_strategy,
      aliases: config.model_aliases,
      sticky: config.proxy.sticky_sessions,
      wakeOnDemand: config.proxy.wake_on_demand,
    },
    registry,
    proxy,
    discovery,
    wake,
    sticky,
    clock,
    deadlines,
  });
  const inflight = new InflightTracker();
  // What Olla's `olla_info` and `/internal/status` call the proxy's settings.
  const proxySettings = {
    engine: config.proxy.engine,
    profile: config.proxy.profile,
    balancer: config.proxy.load_balancer,
  };
  const telemetry = new Telemetry({
    registry,
    inflightCount: () => inflight.count,
    admissions,
    logger,
    accessLog: config.server.request_logging,
    aliases: config.model_aliases,
    runtime: deps.runtime,
    proxy: proxySettings,
    now: () => clock.now(),
    logLinesDropped: deps.logLinesDropped ?? (() => 0),
  });
  const rateLimiter = new RateLimiter(config.server.rate_limits, clock);
  const keys = config.server.auth.keys.map(({ name, key, admin }) => ({
    name,
    key: key ?? "",
    admin,
  }));
  const guard = createGuard({
    maxHeaderBytes: config.server.request_limits.max_header_size,
    authEnabled: config.server.auth.enabled,
    rateLimiter,
    authenticator: keys.length > 0 ? new KeyAuthenticator(keys) : undefined,
    internalCidrs: config.server.internal.allowed_cidrs.map(parseCidr),
  });
  const app = createApp({
    requestContext: requestContext({
      inflight,
      clock,
      trustProxyHeaders: config.server.rate_limits.trust_proxy_headers,
      trustedProxies: config.server.rate_limits.trusted_proxy_cidrs.map(parseCidr),
      onFinished: (record) => telemetry.observe(record),
    }),
    guard,
    cors: config.server.cors,
    logger,
    inflight,
    clock,
    registry,
    profiles,
    dispatcher,
    wakeOnDemand: config.proxy.wake_on_demand,
    allowManagementRoutes: config.proxy.allow_management_routes,
    authEnabled: config.server.auth.enabled,
    admitToBackend: createRateGate(rateLimiter),
    anthropic: config.translators.anthropic,
    nativeMessages: new NativeMessagesSupport(),
    startedAt: telemetry.startedAt,
    telemetry,
    admissions,
    aliases: config.model_aliases,
    sticky: { table: sticky, settings: config.proxy.sticky_sessions },
    proxySettings,
    redact: createRedactor(configuredSecrets(config)),
    runtime: { ...deps.runtime, memory: () => ({ ...deps.runtime.memory() }) },
  });
  return {
    fetch: (request, info) => app.fetch(request, info ?? { remoteAddr: "" }),
    registry,
    inflight,
    health,
    discovery,
    telemetry,
    start() {
      health.start();
      discovery.start();
      rateLimiter.start();
    },
    stop() {
      health.stop();
      discovery.stop();
      rateLimiter.stop();
      deadlines.clear();
    },
  };
}

/**
 * Where and how the runtime serves `service`: `server.host`/`server.port`, and a body
 * limit above olla-ts's own, so an oversized body gets olla-ts's JSON 413.
 */
export function serveOptions(config: Config, service: Service): ServeOptions {
  return {
    hostname: config.server.host,
    port: config.server.port,
    fetch: service.fetch,
    maxRequestBodySize: config.server.request_limits.max_body_size + 1024 ** 2,
  };
}
