/**
 * The path of a proxied request between its route and the proxy: read the body once,
 * find its routing fields, choose candidate endpoints (refreshing model lists on a miss,
 * waking sleeping engines when configured, probing an unreachable one early when nothing
 * else can serve), apply session affinity, and forward.
 * Provider routes (`/olla/<prefix>/...`) and unified routes (`/olla/proxy/...`) share it;
 * they differ only in the endpoints in scope.
 *
 * @module
 */
import type { ForwardRequest } from "./attempt.ts";
import type { BodyBudget } from "./body_budget.ts";
import { type Bytes, readBody } from "./body_read.ts";
import { type BodyFields, scanBody } from "./body_scan.ts";
import type { Proxy } from "./forward.ts";
import { OLLA } from "./olla_headers.ts";
import type { RequestRecord } from "./request_record.ts";
import type { PlanFor } from "./upstream_plan.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Deadlines } from "../deadlines.ts";
import { OllaError } from "../errors.ts";
import type { ModelDiscovery } from "../health/discovery.ts";
import type { WakeCoordinator } from "../health/wake.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import { isWakeable } from "../registry/endpoint_state.ts";
import type { Registry } from "../registry/registry.ts";
import { selectCandidates, type Selection } from "../routing/candidates.ts";
import { revivalCandidate } from "../routing/revival.ts";
import { affinityKey, type PinStore, seeksAffinity } from "../routing/sticky.ts";
import { explainUnavailable } from "../routing/unavailable.ts";

/** The settings the dispatcher acts on. */
export interface DispatchSettings {
  /** `server.request_limits.max_body_size`. */
  maxBodyBytes: number;
  /** `server.read_timeout`: longest time to receive a request body. */
  bodyTimeoutMs: number;
  strategy: Config["model_registry"]["routing_strategy"];
  aliases: Config["model_aliases"];
  sticky: Config["proxy"]["sticky_sessions"];
  /** `proxy.wake_on_demand`. */
  wakeOnDemand: boolean;
}

/** Collaborators of {@linkcode Dispatcher}. */
export interface DispatcherDeps {
  settings: DispatchSettings;
  registry: Registry;
  proxy: Proxy;
  /** Bytes all in-flight request bodies may hold together. */
  bodyBudget: BodyBudget;
  discovery: ModelDiscovery;
  wake: WakeCoordinator;
  /** Probes an endpoint now (joining a probe in progress); see routing/revival.ts. */
  probeNow: (name: string) => Promise<unknown>;
  sticky: PinStore;
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
  /** Path and query to request upstream, starting with `/` (see {@linkcode ForwardRequest}). */
  upstreamPath: ForwardRequest["upstreamPath"];
  /** What to call these endpoints in messages ("LMDeploy", "OpenAI-compatible"). */
  scopeLabel: string;
  /**
   * For management routes: the one endpoint the client named. It is used whatever its
   * state (waking a sleeping engine must reach it), with no model routing and no failover.
   */
  direct?: EndpointView;
  /** For a model no endpoint in scope serves: a better answer than 404, if there is one. */
  explainUnknownModel?: (model: string) => OllaError | undefined;
  /** Where this route lists its models, for the unknown-model 404's hint. */
  modelListPath?: string;
  forwarding: { clientIp: string; proto: string; host: string | null };
  /** A lower body limit than `server.request_limits.max_body_size` (the Anthropic route's). */
  maxBodyBytes?: number;
  /**
   * Adapts the request per endpoint once its body has been read (the Anthropic route:
   * passthrough or translation); it may refuse the body with a 400 before routing.
   */
  adapt?: (body: Bytes, fields: BodyFields) => PlanFor;
}

const METHODS_WITHOUT_BODY = new Set(["GET", "HEAD", "OPTIONS"]);

/** The selection for a request sent to one named endpoint. */
function directSelection(endpoint: EndpointView, settings: DispatchSettings): Selection {
  return {
    routing: {
      strategy: settings.strategy.type,
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
    const { settings, clock } = this.#deps;
    const { request, record } = target;
    const bodyStarted = clock.now();
    let body;
    try {
      body = METHODS_WITHOUT_BODY.has(request.method) ? undefined : await readBody(request, {
        maxBytes: target.maxBodyBytes ?? settings.maxBodyBytes,
        timeoutMs: settings.bodyTimeoutMs,
        deadlines: this.#deps.deadlines,
        budget: this.#deps.bodyBudget,
      });
    } finally {
      // Waiting for the client's upload is not olla-ts's overhead.
      record.bodyReadMs = clock.now() - bodyStarted;
    }
    try {
      return await this.#route(target, body);
    } finally {
      // Once an answer's head is here (or it failed) no attempt replays the body.
      if (body) this.#deps.bodyBudget.give(body.byteLength);
    }
  }

  async #route(target: DispatchRequest, body: Bytes | undefined): Promise<Response> {
    const { settings, clock, sticky, registry } = this.#deps;
    const { request, record } = target;
    record.bytesIn = body?.byteLength ?? 0;
    const fields = body ? scanBody(body) : {};
    record.model = fields.model;
    record.stream = fields.stream === true;
    const planFor = target.adapt?.(body ?? new Uint8Array(0), fields);

    const selection = target.direct
      ? directSelection(target.direct, settings)
      : await this.#select(target, fields.model);
    record.routing = selection.routing;
    if (selection.candidates.length === 0) {
      throw explainUnavailable({
        selection,
        model: fields.model,
        scope: target.scope,
        scopeLabel: target.scopeLabel,
        now: clock.now(),
        isWaking: (name) => this.#deps.wake.isWaking(name),
        explainUnknownModel: target.explainUnknownModel,
        modelListPath: target.modelListPath,
      });
    }

    // Without a possible key, the headers and bytes affinityKey would read are not read.
    const affinity = seeksAffinity(fields.sessionId, settings.sticky)
      ? affinityKey({
        scope: target.scopeKey,
        model: fields.model,
        sessionId: fields.sessionId,
        sessionHeader: request.headers.get(OLLA.sessionId),
        conversation: body && fields.conversationRange
          ? body.subarray(...fields.conversationRange)
          : undefined,
        authorization: request.headers.get("authorization"),
        clientIp: target.forwarding.clientIp,
        sticky: settings.sticky,
      })
      : undefined;
    let preferred: EndpointView | undefined;
    if (affinity) {
      const pinned = await sticky.get(affinity.key);
      const endpoint = pinned === undefined ? undefined : registry.get(pinned);
      preferred = endpoint && selection.candidates.includes(endpoint) ? endpoint : undefined;
      record.sticky = {
        outcome: preferred ? "hit" : pinned === undefined ? "miss" : "repin",
        source: affinity.source,
      };
      record.sessionHeader = request.headers.get(OLLA.sessionId) ?? undefined;
    } else if (settings.sticky.enabled) {
      // Olla's value when sticky sessions are on but no key source yielded a key.
      record.sticky = { outcome: "disabled" };
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
          return sticky.set(affinity.key, endpoint.name);
        }
        : undefined,
      forwarding: target.forwarding,
      signal: request.signal,
      ignoreHealth: target.direct !== undefined,
      planFor,
      pickRequest: {
        model: fields.model,
        prompt: body && fields.conversationRange
          ? body.subarray(...fields.conversationRange)
          : undefined,
      },
    });
  }

  /** Candidates, after a model-list refresh on a miss and a wake-up when everything sleeps. */
  async #select(target: DispatchRequest, model: string | undefined): Promise<Selection> {
    const { settings, registry, clock, discovery } = this.#deps;
    const strategy = settings.strategy;
    const select = () =>
      selectCandidates({
        registry,
        scope: target.scope,
        model,
        strategy,
        aliases: settings.aliases,
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
    if (selection.candidates.length > 0) return selection;
    // Nothing routable: one early probe of the endpoint likeliest to be back (a restart).
    const revivable = revivalCandidate(selection.unavailable, clock.now());
    if (revivable) {
      await this.#deps.probeNow(revivable.name).catch(() => {});
      selection = select();
    }
    return selection;
  }

  /** The highest-priority sleeping endpoint that may be woken on demand. */
  #wakeable(unavailable: readonly EndpointView[]): EndpointView | undefined {
    return unavailable
      .filter((endpoint) => isWakeable(endpoint, this.#deps.settings.wakeOnDemand))
      .sort((a, b) => b.config.priority - a.config.priority)[0];
  }
}
