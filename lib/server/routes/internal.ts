/**
 * Olla's status routes: `/internal/health`, `/internal/status`,
 * `/internal/status/endpoints`, `/internal/status/models`, `/internal/stats/models`,
 * `/internal/stats/sticky`, `/internal/process`, `/internal/cluster` (olla-ts's own), `/internal/metrics` (Prometheus) and
 * `/version`. As in Olla, each answers any method (`POST /internal/health` included).
 * Status JSON carries a weak ETag over its content (timestamps and relative times
 * excluded) and answers a matching `If-None-Match` with 304.
 *
 * The bodies are built in status_endpoints.ts and status_models.ts.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { endpointsBody, statusBody, type StatusSources } from "./status_endpoints.ts";
import { modelStatusBody } from "./status_models.ts";
import type { AppEnv } from "../app_env.ts";
import { splitTarget } from "../request_target.ts";
import { hash53 } from "../../hash.ts";
import { bytesText, percentText } from "../../observability/olla_text.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../../observability/prometheus.ts";
import { successPercent } from "../../observability/traffic_stats.ts";
import type { ProfileSet } from "../../profiles/profile.ts";
import type { StickyTable } from "../../routing/sticky.ts";
import { NAME, VERSION } from "../../version.ts";

/** Collaborators of the internal routes. */
export interface InternalRouteDeps extends StatusSources {
  profiles: ProfileSet;
  runtime: { name: string; version: string; memory(): Record<string, number> };
  /** `model_aliases`, shown as each model's aliases. */
  aliases: Readonly<Record<string, readonly string[]>>;
  sticky: {
    table: StickyTable;
    settings: { enabled: boolean; max_sessions: number; idle_ttl_seconds: number };
  };
  /** `/internal/cluster`: this instance among the others (cluster/cluster.ts). */
  clusterStatus: () => Record<string, unknown>;
}

/** Keys left out of the ETag because they change with the clock, not with the state. */
const VOLATILE_KEYS = new Set([
  "timestamp",
  "uptime",
  "uptime_seconds",
  "generated_at",
  "last_check",
  "next_check",
  "health_check",
  "last_model_sync",
  "last_seen",
]);

/** A JSON answer with a weak ETag; 304 when the client already has it. */
export function jsonWithEtag(c: Context<AppEnv>, body: unknown): Response {
  const stable = JSON.stringify(body, (key, value) => (VOLATILE_KEYS.has(key) ? undefined : value));
  const etag = `W/"${hash53(stable)}"`;
  const headers = { etag, "cache-control": "private, no-cache" };
  const match = c.req.header("if-none-match");
  if (match && match.split(",").some((tag) => tag.trim() === etag || tag.trim() === "*")) {
    return new Response(null, { status: 304, headers });
  }
  return c.json(body as object, 200, headers);
}

const HOUR_MS = 3_600_000;

/** The status, metrics and version routes as a sub-app. */
export function internalRoutes(deps: InternalRouteDeps): Hono<AppEnv> {
  const { registry, telemetry, clock, runtime } = deps;
  const uptime = () => Math.round((clock.now() - telemetry.startedAt) / 1000);
  const app = new Hono<AppEnv>();

  app.all("/internal/health", (c) => c.json({ status: "healthy" }));

  app.all("/internal/status", (c) => jsonWithEtag(c, statusBody(deps)));

  app.all("/internal/status/endpoints", (c) => jsonWithEtag(c, endpointsBody(deps)));

  app.all("/internal/cluster", (c) => jsonWithEtag(c, deps.clusterStatus()));

  app.all("/internal/status/models", (c) =>
    jsonWithEtag(
      c,
      modelStatusBody(registry, deps.aliases, new URLSearchParams(splitTarget(c.req.url).search)),
    ));

  app.all("/internal/stats/models", (c) => {
    const models = telemetry.modelStats();
    const totals = telemetry.modelTotals();
    const requests = totals.reduce((sum, model) => sum + model.requests, 0);
    const failures = totals.reduce((sum, model) => sum + model.failures, 0);
    return jsonWithEtag(c, {
      timestamp: new Date(clock.now()).toISOString(),
      models,
      // Olla leaves per-model-per-endpoint statistics off; so does olla-ts (each model's
      // `endpoints` counts its requests per endpoint instead).
      endpoints: {},
      summary: {
        total_models: models.length,
        active_models: telemetry.activeModels(clock.now() - HOUR_MS),
        total_requests: requests,
        overall_success_rate: percentText(successPercent({ requests, failures })),
        total_traffic: bytesText(totals.reduce((sum, model) => sum + model.bytes, 0)),
        most_popular_model: models[0]?.model ?? "",
        least_popular_model: models.at(-1)?.model ?? "",
      },
    });
  });

  app.all("/internal/stats/translators", (c) => c.json(telemetry.translators.body(clock.now())));

  app.all("/internal/stats/sticky", (c) => {
    const { table, settings } = deps.sticky;
    if (!settings.enabled) return c.json({ enabled: false });
    return c.json({
      enabled: true,
      active_sessions: table.size,
      ...table.counters,
      max_sessions: settings.max_sessions,
      idle_ttl_seconds: settings.idle_ttl_seconds,
    });
  });

  app.all("/internal/process", (c) =>
    c.json({
      name: NAME,
      version: VERSION,
      runtime: runtime.name,
      runtime_version: runtime.version,
      uptime_seconds: uptime(),
      memory: runtime.memory(),
      inflight: deps.inflight.count,
    }));

  app.all("/internal/metrics", () =>
    new Response(telemetry.metrics.render(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    }));

  app.all("/version", (c) =>
    c.json({
      name: NAME,
      version: VERSION,
      runtime: runtime.name,
      runtime_version: runtime.version,
      supported_backends: deps.profiles.all.map((profile) => profile.name),
      routes: deps.profiles.all.flatMap((profile) =>
        profile.prefixes.map((prefix) => `/olla/${prefix}/`)
      ),
    }));

  return app;
}
