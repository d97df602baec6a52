/**
 * Builds olla-ts from a configuration: the long-lived state owners (service_state.ts) and
 * the request pipeline of the current configuration (pipeline.ts). `main.ts` uses it, and
 * so do the end-to-end tests, so both run the same composition. Nothing starts until
 * {@linkcode Service.start}.
 *
 * {@linkcode Service.reconfigure} applies a new configuration while serving: the
 * endpoint set as a diff (added, drained, changed in place), a new pipeline for new
 * requests (rate limits, timeouts, balancer, aliases, auth keys, routes), the log level
 * and telemetry settings; what cannot change without a restart is reported.
 *
 * @module
 */
import type { Fleet, FleetChanges } from "./fleet.ts";
import { buildPipeline, type Pipeline } from "./pipeline.ts";
import type { NodeRegistration } from "./registration.ts";
import type { ServeOptions } from "./runtime_api.ts";
import { createState, proxySettingsOf, type ServiceDeps } from "./service_state.ts";
import type { Config } from "../config/schema.ts";
import type { HealthChecker } from "../health/checker.ts";
import type { ModelDiscovery } from "../health/discovery.ts";
import type { Telemetry } from "../observability/telemetry.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import type { Registry } from "../registry/registry.ts";
import type { ConnInfo } from "../server/app_env.ts";
import type { InflightTracker } from "../server/inflight.ts";
import type { ReloadOutcome } from "../server/routes/fleet_routes.ts";

export type { ServiceDeps } from "./service_state.ts";

/** What {@linkcode Service.reconfigure} changed. */
export interface ReconfigureReport {
  endpoints: FleetChanges;
  /** Settings that changed but keep their old value until a restart. */
  restartNeeded: string[];
}

/** A built olla-ts. */
export interface Service {
  readonly fetch: (request: Request, info?: ConnInfo) => Response | Promise<Response>;
  readonly registry: Registry;
  readonly inflight: InflightTracker;
  readonly health: HealthChecker;
  readonly discovery: ModelDiscovery;
  readonly telemetry: Telemetry;
  readonly fleet: Fleet;
  readonly registration: NodeRegistration;
  /** Applies a new, already validated configuration. */
  reconfigure(config: Config, profiles: ProfileSet): ReconfigureReport;
  /** What `POST /internal/reload` runs (set by whoever knows where the file is). */
  onReload(reload: () => Promise<ReloadOutcome>): void;
  /** Counts a reload by outcome (`applied`, `invalid`). */
  countReload(outcome: "applied" | "invalid"): void;
  /**
   * The runtime could not accept connections (out of file descriptors): counted every
   * time, logged at most once per {@linkcode ACCEPT_FAILURE_LOG_MS}.
   */
  countAcceptFailure(error: unknown): void;
  /**
   * Ends every answer still streaming, each SSE answer with a final error event; returns
   * how many there were. Shutdown calls it when `server.shutdown_timeout` runs out.
   */
  endStreams(): number;
  /** Starts health checks, model discovery and registration restore. */
  start(): void;
  /** Stops every timer. */
  stop(): void;
}

/** Least time between two log lines about failing to accept connections. */
export const ACCEPT_FAILURE_LOG_MS = 10_000;

/** Settings read once at startup; a reload that changes them says a restart is needed. */
const RESTART_KEYS: readonly ((config: Config) => unknown)[] = [
  (c) => c.server.host,
  (c) => c.server.port,
  (c) => c.server.watch_config,
  (c) => c.discovery.model_discovery,
  (c) => c.discovery.health_check,
  (c) => [c.discovery.registration.enabled, c.discovery.registration.state_file],
  (c) => c.proxy.wake_timeout,
  (c) => c.proxy.circuit_breaker,
  (c) => [c.proxy.sticky_sessions.max_sessions, c.proxy.sticky_sessions.idle_ttl_seconds],
  (c) => [c.logging.format, c.logging.output],
  (c) => c.cluster,
];
const RESTART_NAMES = [
  "server.host",
  "server.port",
  "server.watch_config",
  "discovery.model_discovery",
  "discovery.health_check",
  "discovery.registration",
  "proxy.wake_timeout",
  "proxy.circuit_breaker",
  "proxy.sticky_sessions (table size and lifetime)",
  "logging.format/output",
  "cluster",
];

function restartNeeded(before: Config, after: Config): string[] {
  return RESTART_KEYS.flatMap((read, i) =>
    JSON.stringify(read(before)) === JSON.stringify(read(after)) ? [] : [RESTART_NAMES[i]]
  );
}

/** Builds the service. */
export function createService(deps: ServiceDeps): Service {
  const state = createState(deps);
  let current = deps.config;
  let started = false;
  let lastAcceptFailureLog = -Infinity;
  let reload: () => Promise<ReloadOutcome> = () =>
    Promise.resolve({ ok: false, problems: ["no configuration file to reload"] });
  const fleetRoutes = (config: Config) => ({
    nodes: state.registration,
    reload: () => reload(),
    allowManagement: config.proxy.allow_management_routes,
  });
  let pipeline: Pipeline = buildPipeline(current, deps.profiles, state, deps, fleetRoutes(current));

  return {
    fetch: (request, info) => pipeline.fetch(request, info ?? { remoteAddr: "" }),
    registry: state.registry,
    inflight: state.inflight,
    health: state.health,
    discovery: state.discovery,
    telemetry: state.telemetry,
    fleet: state.fleet,
    registration: state.registration,
    reconfigure(config, profiles) {
      const report: ReconfigureReport = {
        restartNeeded: restartNeeded(current, config),
        endpoints: { added: [], removed: [], changed: [] },
      };
      state.logger.setLevel(config.logging.level);
      state.fleet.profiles = profiles;
      state.registry.useProfiles(profiles);
      report.endpoints = state.fleet.apply(config.discovery.static.endpoints, "static");
      state.telemetry.configure({
        accessLog: config.server.request_logging,
        aliases: config.model_aliases,
        proxy: proxySettingsOf(config),
      });
      const next = buildPipeline(config, profiles, state, deps, fleetRoutes(config));
      pipeline.stop();
      pipeline = next;
      if (started) pipeline.start();
      current = config;
      return report;
    },
    onReload(handler) {
      reload = handler;
    },
    countReload(outcome) {
      state.reloads.inc({ outcome });
      state.telemetry.events.push("reload", outcome);
    },
    endStreams: () => state.liveStreams.stopAll(),
    countAcceptFailure(error) {
      state.connectionsRefused.inc();
      const now = state.clock.now();
      if (now - lastAcceptFailureLog < ACCEPT_FAILURE_LOG_MS) return;
      lastAcceptFailureLog = now;
      state.logger.warn("cannot accept connections; new ones are refused until it can", {
        error: error instanceof Error ? error.message : String(error),
        refused_total: state.connectionsRefused.get(),
        hint: "raise the file descriptor limit (ulimit -n, systemd LimitNOFILE)",
      });
    },
    start() {
      started = true;
      state.health.start();
      state.discovery.start();
      state.engineMetrics.start();
      state.telemetry.timeseries.start();
      pipeline.start();
      void startSharing();
    },
    stop() {
      started = false;
      state.health.stop();
      state.discovery.stop();
      state.engineMetrics.stop();
      state.telemetry.timeseries.stop();
      state.telemetry.events.close();
      pipeline.stop();
      state.deadlines.clear();
      void state.cluster?.stop();
    },
  };

  /**
   * Joins the cluster (when there is one), then restores the registered nodes: the state
   * file's, and then the cluster's table, which the registration keeps in step from then on.
   */
  async function startSharing(): Promise<void> {
    await state.cluster?.start();
    await state.registration.restore();
    if (state.registration.enabled) await state.cluster?.nodes?.start(state.registration);
  }
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
    idleTimeoutMs: config.server.idle_timeout || config.server.read_timeout,
    onAcceptError: (error) => service.countAcceptFailure(error),
  };
}
