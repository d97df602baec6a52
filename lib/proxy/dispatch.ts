/**
 * The path of a proxied request between its route and the proxy: read the body once,
 * find its routing fields, choose candidate endpoints (refreshing model lists on a miss
 * and waking sleeping engines when configured), apply session affinity, and forward.
 * Provider routes (`/olla/<prefix>/...`) and unified routes (`/olla/proxy/...`) share it;
 * they differ only in the endpoints in scope.
 *
 * @module
 */
import { isWakeable } from "../registry/endpoint_state.ts";
import { readBody, scanBody } from "./body.ts";
import type { Clock } from "../clock.ts";
import type { Deadlines } from "../deadlines.ts";
import type { Config } from "../config/schema.ts";
import type { ModelDiscovery } from "../health/discovery.ts";
import { OllaError } from "../errors.ts";
import { OLLA } from "./olla_headers.ts";
import type { Proxy } from "./forward.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";
import type { RequestRecord } from "./request_record.ts";
import { selectCandidates, type Selection } from "../routing/candidates.ts";
import { affinityKey, type StickyTable } from "../routing/sticky.ts";
import type { WakeCoordinator } from "../health/wake.ts";

/** Collaborators of {@linkcode Dispatcher}. */
export interface DispatcherDeps {
  config: Config;
  registry: Registry;
  proxy: Proxy;
  discovery: ModelDiscovery;
  wake: WakeCoordinator;
  sticky: StickyTable;
  clock: Clock;
  deadlines: Deadlines;
}

/** One proxied request, as the route hands it over. */
export interface DispatchRequest {
  request: Request;
  record: RequestRecord;
  /** Endpoints that may serve this route. */
  scope: readonly EndpointView[];
  /** Names the scope for affinity keys (`lmdeploy`, `unified`). */
  scopeKey: string;
  /** Path and query to request upstream, starting with `/`. */
  upstreamPath: string;
  /** What to call these endpoints in messages ("LMDeploy", "OpenAI-compatible"). */
  scopeLabel: string;
  /**
   * For management routes: the one endpoint the client named. It is used whatever its
   * state (waking a sleeping engine must reach it), with no model routing and no failover.
   */
  direct?: EndpointView;
  /** For a model no endpoint in scope serves: a better answer than 404, if there is one. */
  explainUnknownModel?: (model: string) => OllaError | undefined;
  forwarding: { clientIp: string; proto: string; host: string | null };
}

const METHODS_WITHOUT_BODY = new Set(["GET", "HEAD", "OPTIONS"]);

/** The selection for a request sent to one named endpoint. */
function directSelection(endpoint: EndpointView, config: Config): Selection {
  return {
    routing: {
      strategy: config.model_registry.routing_strategy.type,
      decision: "routed",
      reason: "target_endpoint",
    },
    candidates: [endpoint],
    unavailable: [],
    modelFor: () => undefined,
    known: true,
  };
}

/** Routes and forwards proxied requests. */
export class Dispatcher {
  readonly #deps: DispatcherDeps;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
  }

  /**
   * Serves one proxied request.
   *
   * @throws {OllaError} 404 for an unknown model, 503 when nothing can serve it now, and
   * whatever reading the body or forwarding refuses.
   */
  async dispatch(target: DispatchRequest): Promise<Response> {
    const { config, clock, sticky, registry } = this.#deps;
    const { request, record } = target;
    const bodyStarted = clock.now();
    let body;
    try {
      body = METHODS_WITHOUT_BODY.has(request.method) ? undefined : await readBody(request, {
        maxBytes: config.server.request_limits.max_body_size,
        timeoutMs: config.server.read_timeout,
        deadlines: this.#deps.deadlines,
      });
    } finally {
      // Waiting for the client's upload is not olla-ts's overhead.
      record.bodyReadMs = clock.now() - bodyStarted;
    }
    record.bytesIn = body?.byteLength ?? 0;
    const fields = body ? scanBody(body) : {};
    record.model = fields.model;

    const selection = target.direct
      ? directSelection(target.direct, config)
      : await this.#select(target, fields.model);
    record.routing = selection.routing;
    if (selection.candidates.length === 0) throw this.#unavailable(target, selection, fields.model);

    const affinity = affinityKey({
      scope: target.scopeKey,
      model: fields.model,
      sessionId: fields.sessionId,
      sessionHeader: request.headers.get(OLLA.sessionId),
      conversation: body && fields.conversationRange
        ? body.subarray(...fields.conversationRange)
        : undefined,
      authorization: request.headers.get("authorization"),
      clientIp: target.forwarding.clientIp,
      sticky: config.proxy.sticky_sessions,
    });
    let preferred: EndpointView | undefined;
    if (affinity) {
      const pinned = sticky.get(affinity.key);
      const endpoint = pinned === undefined ? undefined : registry.get(pinned);
      preferred = endpoint && selection.candidates.includes(endpoint) ? endpoint : undefined;
      record.sticky = {
        outcome: preferred ? "hit" : pinned === undefined ? "miss" : "repin",
        source: affinity.source,
      };
      record.sessionHeader = request.headers.get(OLLA.sessionId) ?? undefined;
    }
    return await this.#deps.proxy.forward({
      record,
      method: request.method,
      upstreamPath: target.upstreamPath,
      headers: request.headers,
      body,
      modelRange: fields.modelRange,
      selection,
      preferred,
      onServed: affinity
        ? (endpoint) => {
          if (record.sticky?.outcome === "hit" && endpoint !== preferred) {
            record.sticky.outcome = "repin";
          }
          sticky.set(affinity.key, endpoint.name);
        }
        : undefined,
      forwarding: target.forwarding,
      signal: request.signal,
      ignoreHealth: target.direct !== undefined,
    });
  }

  /** Candidates, after a model-list refresh on a miss and a wake-up when everything sleeps. */
  async #select(target: DispatchRequest, model: string | undefined): Promise<Selection> {
    const { config, registry, clock, discovery } = this.#deps;
    const strategy = config.model_registry.routing_strategy;
    const select = () =>
      selectCandidates({
        registry,
        scope: target.scope,
        model,
        strategy,
        aliases: config.model_aliases,
        now: clock.now(),
      });
    let selection = select();
    const refreshOnMiss = strategy.type === "discovery" ||
      strategy.options.discovery_refresh_on_miss;
    if (!selection.known && refreshOnMiss) {
      await discovery.refreshAll(strategy.options.discovery_timeout);
      selection = select();
    }
    if (selection.candidates.length > 0) return selection;
    const sleeper = this.#wakeable(selection.unavailable);
    if (sleeper && await this.#deps.wake.wake(sleeper, target.request.signal)) selection = select();
    return selection;
  }

  /** The highest-priority sleeping endpoint that may be woken on demand. */
  #wakeable(unavailable: readonly EndpointView[]): EndpointView | undefined {
    const wakeOnDemand = this.#deps.config.proxy.wake_on_demand;
    return unavailable
      .filter((endpoint) => isWakeable(endpoint, wakeOnDemand))
      .sort((a, b) => b.config.priority - a.config.priority)[0];
  }

  /** The 404 or 503 for a request nothing can serve, with the reason and a `Retry-After`. */
  #unavailable(
    target: DispatchRequest,
    selection: Selection,
    model: string | undefined,
  ): OllaError {
    const { clock, wake } = this.#deps;
    if (!selection.known && model !== undefined) {
      const explained = target.explainUnknownModel?.(model);
      if (explained) return explained;
      return new OllaError(
        404,
        `The model '${model}' is not served by any ${target.scopeLabel} endpoint`,
        {
          code: "model_not_found",
          fault: "client",
          param: "model",
        },
      );
    }
    const now = clock.now();
    const unavailable = selection.unavailable.length > 0 ? selection.unavailable : target.scope;
    const waits = unavailable.map((endpoint) =>
      Math.max(
        endpoint.breaker.remainingMs(now),
        endpoint.rateLimitedUntil - now,
        (endpoint.nextCheckAt ?? now) - now,
      )
    );
    const retryAfterSeconds = Math.max(1, Math.ceil(Math.min(...waits, 30_000) / 1000));
    const states = unavailable.map((endpoint) =>
      `${endpoint.name}: ${
        endpoint.breaker.state(now) === "open" ? "circuit open" : endpoint.status
      }${wake.isWaking(endpoint.name) ? " (waking)" : ""}`
    ).join(", ");
    const what = model === undefined
      ? `No ${target.scopeLabel} endpoint`
      : `No endpoint serving '${model}'`;
    const allAsleep = unavailable.length > 0 &&
      unavailable.every((endpoint) => endpoint.status === "sleeping");
    const hint = allAsleep
      ? "; every one is asleep (LMDeploy sleep mode): POST /wakeup on one, or enable proxy.wake_on_demand"
      : "";
    return new OllaError(
      503,
      unavailable.length === 0
        ? `No ${target.scopeLabel} endpoint is configured`
        : `${what} can take requests now (${states})${hint}`,
      {
        code: allAsleep ? "endpoints_sleeping" : "model_unavailable",
        fault: "upstream",
        retryAfterSeconds,
      },
    );
  }
}
