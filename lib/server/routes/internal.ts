/**
 * Olla's status routes: `/internal/status`, `/internal/status/endpoints`,
 * `/internal/status/models`, `/internal/stats/models`, `/internal/process`,
 * `/internal/metrics` (Prometheus) and `/version`. Status JSON carries a weak ETag over
 * its content (uptime excluded) and answers a matching `If-None-Match` with 304.
 *
 * No secret reaches these answers: endpoint URLs are shown without credentials or secret
 * query values, auth and header values are never included, and error texts pass through
 * the redactor.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import type { InflightTracker } from "../inflight.ts";
import type { Clock } from "../../clock.ts";
import { hash53 } from "../../hash.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../../observability/prometheus.ts";
import { redactUrl } from "../../observability/redact.ts";
import type { Telemetry } from "../../observability/telemetry.ts";
import type { ProfileSet } from "../../profiles/profile.ts";
import type { Admission } from "../../proxy/admission.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import type { Registry } from "../../registry/registry.ts";
import { NAME, VERSION } from "../../version.ts";

/** Collaborators of the internal routes. */
export interface InternalRouteDeps {
  registry: Registry;
  profiles: ProfileSet;
  telemetry: Telemetry;
  inflight: InflightTracker;
  admissions: ReadonlyMap<string, Admission>;
  clock: Clock;
  redact: (text: string) => string;
  runtime: { name: string; version: string; memory(): Record<string, number> };
}

/** Keys left out of the ETag because they change without the state changing. */
const VOLATILE_KEYS = new Set(["uptime_seconds", "generated_at"]);

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

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function summaryStatus(registry: Registry): "healthy" | "degraded" | "critical" {
  const routable = registry.endpoints.filter((endpoint) => registry.isRoutable(endpoint)).length;
  if (routable === registry.endpoints.length && routable > 0) return "healthy";
  return routable > 0 ? "degraded" : "critical";
}

/** One endpoint as status output shows it (no credentials, no header values). */
export function endpointStatus(deps: InternalRouteDeps, endpoint: EndpointView) {
  const now = deps.clock.now();
  const admission = deps.admissions.get(endpoint.name);
  const successRate = endpoint.requests === 0
    ? null
    : Math.round((1 - endpoint.failures / endpoint.requests) * 10_000) / 100;
  return {
    name: endpoint.name,
    type: endpoint.type,
    url: redactUrl(endpoint.config.url),
    status: endpoint.status,
    routable: deps.registry.isRoutable(endpoint, now),
    sleeping: endpoint.status === "sleeping",
    breaker: {
      state: endpoint.breaker.state(now),
      consecutive_failures: endpoint.breaker.failures,
      retry_in_ms: Math.round(endpoint.breaker.remainingMs(now)),
    },
    priority: endpoint.config.priority,
    weight: endpoint.config.weight,
    inflight: endpoint.inflight,
    queue: admission
      ? {
        max_concurrent: endpoint.config.max_concurrent_requests,
        active: admission.active,
        waiting: admission.queued,
      }
      : null,
    rate_limited_until: endpoint.rateLimitedUntil > now ? iso(endpoint.rateLimitedUntil) : null,
    last_check: iso(endpoint.lastCheckAt),
    next_check: iso(endpoint.nextCheckAt),
    last_probe_latency_ms: endpoint.lastProbeLatencyMs === undefined
      ? null
      : Math.round(endpoint.lastProbeLatencyMs),
    last_error: endpoint.lastError === undefined ? null : deps.redact(endpoint.lastError),
    model_count: endpoint.models?.size ?? 0,
    last_model_sync: iso(endpoint.modelsUpdatedAt),
    requests: endpoint.requests,
    failures: endpoint.failures,
    success_rate: successRate,
    latency_ms: endpoint.latencyMs === undefined
      ? null
      : Math.round(endpoint.latencyMs * 100) / 100,
  };
}

/** The status, metrics and version routes as a sub-app. */
export function internalRoutes(deps: InternalRouteDeps): Hono<AppEnv> {
  const { registry, telemetry, clock, runtime } = deps;
  const uptime = () => Math.round((clock.now() - telemetry.startedAt) / 1000);
  const app = new Hono<AppEnv>();

  app.get("/internal/health", (c) => c.json({ status: "healthy" }));

  app.get("/internal/status", (c) => {
    const models = new Set(registry.modelIds());
    return jsonWithEtag(c, {
      status: summaryStatus(registry),
      name: NAME,
      version: VERSION,
      runtime: `${runtime.name} ${runtime.version}`,
      started_at: iso(telemetry.startedAt),
      uptime_seconds: uptime(),
      totals: {
        ...telemetry.totals,
        inflight: deps.inflight.count,
        endpoints: registry.endpoints.length,
        routable_endpoints: registry.endpoints.filter((e) => registry.isRoutable(e)).length,
        models: models.size,
      },
      endpoints: registry.endpoints.map((endpoint) => ({
        name: endpoint.name,
        type: endpoint.type,
        status: endpoint.status,
        routable: registry.isRoutable(endpoint),
        breaker: endpoint.breaker.state(clock.now()),
        models: endpoint.models?.size ?? 0,
      })),
    });
  });

  app.get("/internal/status/endpoints", (c) =>
    jsonWithEtag(c, {
      endpoints: [...registry.endpoints]
        .sort((a, b) => b.config.priority - a.config.priority || a.name.localeCompare(b.name))
        .map((endpoint) => endpointStatus(deps, endpoint)),
    }));

  app.get("/internal/status/models", (c) => {
    const models = [...registry.modelIds()].sort().map((id) => {
      const serving = [...(registry.endpointsServing(id) ?? [])].map((name) =>
        registry.get(name) as EndpointView
      );
      return {
        id,
        endpoints: serving.map((endpoint) => endpoint.name),
        types: [...new Set(serving.map((endpoint) => endpoint.type))],
        available: serving.some((endpoint) => registry.isRoutable(endpoint)),
      };
    });
    return jsonWithEtag(c, { total: models.length, models });
  });

  app.get("/internal/stats/models", (c) => jsonWithEtag(c, { models: telemetry.modelStats() }));

  app.get("/internal/process", (c) =>
    c.json({
      name: NAME,
      version: VERSION,
      runtime: runtime.name,
      runtime_version: runtime.version,
      uptime_seconds: uptime(),
      memory: runtime.memory(),
      inflight: deps.inflight.count,
    }));

  app.get("/internal/metrics", () =>
    new Response(telemetry.metrics.render(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    }));

  app.get("/version", (c) =>
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
