/**
 * The request pipeline of one configuration: rate limiter, guard, proxy (balancer and
 * timeouts), dispatcher and the app with its routes. It holds no state that must survive
 * a reload: a reload builds a new pipeline over the same state owners (registry, health
 * checks, discovery, sticky table, telemetry; service.ts) and new requests use it at once,
 * while requests already running finish on the one they started with.
 *
 * @module
 */
import { proxySettingsOf, type ServiceDeps, type ServiceState } from "./service_state.ts";
import { parseCidr } from "../cidr.ts";
import type { Config } from "../config/schema.ts";
import { configuredSecrets, createRedactor } from "../observability/redact.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import { BodyBudget } from "../proxy/body_budget.ts";
import { DENO_STREAM_UPLOAD_BYTES } from "../proxy/upload_body.ts";
import { Inspector } from "../translate/inspector.ts";
import { Dispatcher } from "../proxy/dispatch.ts";
import { estimatedLoad, isFresh } from "../registry/engine_loads.ts";
import type { LoadSignals } from "../routing/load_balancers.ts";
import { Proxy } from "../proxy/forward.ts";
import { createBalancer } from "../routing/balancer.ts";
import { createApp } from "../server/app.ts";
import type { ConnInfo } from "../server/app_env.ts";
import { KeyAuthenticator } from "../server/auth.ts";
import { createGuard } from "../server/guard.ts";
import { createRateGate } from "../server/rate_gate.ts";
import { RateLimiter } from "../server/rate_limit.ts";
import { requestContext } from "../server/request_context.ts";
import type { FleetRouteDeps } from "../server/routes/fleet_routes.ts";

/** One configuration's pipeline. */
export interface Pipeline {
  readonly fetch: (request: Request, info: ConnInfo) => Response | Promise<Response>;
  start(): void;
  stop(): void;
}

/** What the load-aware balancers read: the engines' reports, or olla-ts's own counts. */
function loadSignals(state: ServiceState, config: Config): LoadSignals {
  const { engine_metrics: settings } = config;
  const peerInflight = state.cluster?.peerInflight;
  return {
    loadOf: (endpoint) =>
      estimatedLoad(
        endpoint,
        state.engineLoads.get(endpoint.name),
        state.clock.now(),
        settings.max_age,
        peerInflight?.(endpoint),
      ),
    isFull: (endpoint) => {
      const load = state.engineLoads.get(endpoint.name);
      return isFresh(load, state.clock.now(), settings.max_age) &&
        (load.kvCacheUsage ?? 0) >= settings.kv_cache_full;
    },
  };
}

/** Builds the pipeline for `config` over the long-lived `state`. */
export function buildPipeline(
  config: Config,
  profiles: ProfileSet,
  state: ServiceState,
  deps: ServiceDeps,
  fleetRoutes: FleetRouteDeps,
): Pipeline {
  const { registry, clock, deadlines, inflight, telemetry, admissions, logger } = state;
  const redact = createRedactor(configuredSecrets(config));
  const proxy = new Proxy({
    redact,
    live: state.liveStreams,
    streamUploadBytes: deps.runtime.name === "deno" ? DENO_STREAM_UPLOAD_BYTES : Infinity,
    registry,
    deadlines,
    balancer: createBalancer(config.proxy.load_balancer, {
      random: deps.random,
      signals: loadSignals(state, config),
      peerInflight: state.cluster?.peerInflight,
      cacheAware: config.cache_aware,
    }),
    admissions,
    clock,
    logger,
    fetch: state.fetch,
    freshConnection: deps.runtime.freshConnection,
    canConnect: state.canConnect,
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
    // Per configuration: after a reload, requests still running give back to the old one.
    bodyBudget: new BodyBudget(config.server.request_limits.max_buffered_bytes),
    discovery: state.discovery,
    wake: state.wake,
    probeNow: (name) => state.health.checkNow(name),
    sticky: state.pins,
    clock,
    deadlines,
  });
  const rateLimiter = state.cluster?.rateLimits(config.server.rate_limits) ??
    new RateLimiter(config.server.rate_limits, clock);
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
    nativeMessages: state.nativeMessages,
    inspector: config.translators.anthropic.inspector.enabled
      ? new Inspector({
        outputDir: config.translators.anthropic.inspector.output_dir || "./inspector-logs",
        clock,
        logger,
      })
      : undefined,
    startedAt: telemetry.startedAt,
    telemetry,
    admissions,
    aliases: config.model_aliases,
    sticky: { table: state.sticky, settings: config.proxy.sticky_sessions },
    clusterStatus: () =>
      state.cluster?.status() ?? { enabled: false, reason: "cluster.redis_url is not set" },
    proxySettings: proxySettingsOf(config),
    engineLoads: state.engineLoads,
    engineMaxAgeMs: config.engine_metrics.max_age,
    redact,
    runtime: { ...deps.runtime, memory: () => ({ ...deps.runtime.memory() }) },
    rootV1Routes: config.server.root_v1_routes,
    fleet: fleetRoutes,
    ui: {
      enabled: config.server.ui.enabled && config.dashboard.enabled,
      accessPolicy: config.dashboard.access_policy,
      events: telemetry.events,
      timeseries: telemetry.timeseries,
    },
    endpointActions: {
      registry,
      logger,
      events: telemetry.events,
      clock,
      fetch: state.ownFetch,
      probeNow: (name) => state.health.checkNow(name),
      allowed: config.proxy.allow_management_routes,
      authEnabled: config.server.auth.enabled,
    },
  });
  return {
    fetch: (request, info) => app.fetch(request, info),
    start: () => rateLimiter.start(),
    stop: () => rateLimiter.stop(),
  };
}
