/**
 * One endpoint: its configuration, the profile of its type, what is derived from them
 * once (base URL, address, outbound headers, model filter), and the state the registry
 * keeps for it. Only the registry writes that state; everything else reads
 * {@linkcode EndpointView}s.
 *
 * @module
 */
import { CircuitBreaker } from "./breaker.ts";
import type { EndpointState, EndpointStatus } from "./endpoint_state.ts";
import type { EndpointConfig } from "../config/schema_endpoint.ts";
import { globFilter } from "../glob.ts";
import type { ModelCard } from "../profiles/model_lists.ts";
import type { Profile } from "../profiles/profile.ts";

/** Outcome of one health probe. */
export interface ProbeResult {
  readonly status: EndpointStatus;
  readonly latencyMs: number;
  readonly error?: string;
  /** For `rate_limited`: how long the backend asked olla-ts to wait. */
  readonly retryAfterMs?: number;
}

/** Read-only view of an endpoint's state. */
export interface EndpointView extends EndpointState {
  readonly name: string;
  /** The type it serves as: its profile's name (`auto` until a probe recognises it). */
  readonly type: string;
  readonly profile: Profile;
  readonly config: EndpointConfig;
  /** Where it came from: the configuration file, or LMDeploy registration. */
  readonly source: EndpointSource;
  /** Being removed: it finishes what it serves and takes nothing new. */
  readonly draining: boolean;
  /**
   * Drained by an operator (the status page, `POST /internal/endpoints/{name}/drain`): it
   * finishes what it serves and takes nothing new until undrained. Not a removal.
   */
  readonly held: boolean;
  /** Durations of its last answers (dispatch to last byte), newest last, at most 15. */
  readonly recentLatenciesMs: readonly number[];
  /** Base URL requests are sent to (path kept only with `preserve_path`). */
  readonly baseUrl: string;
  /** Headers from `auth` and `headers`, sent on every upstream request and probe. */
  readonly outboundHeaders: readonly (readonly [string, string])[];
  /** Host and port, for the connect watchdog. */
  readonly address: { readonly hostname: string; readonly port: number };
  readonly status: EndpointStatus;
  readonly lastError: string | undefined;
  readonly lastCheckAt: number | undefined;
  readonly nextCheckAt: number | undefined;
  readonly lastProbeLatencyMs: number | undefined;
  readonly consecutiveProbeFailures: number;
  /** Discovered models; `undefined` until the first discovery succeeds. */
  readonly models: ReadonlyMap<string, ModelCard> | undefined;
  readonly modelsUpdatedAt: number | undefined;
  readonly inflight: number;
  readonly requests: number;
  readonly failures: number;
  /** Exponentially weighted mean of upstream response-header latency, ms. */
  readonly latencyMs: number | undefined;
  /** Time until which a 429 keeps the endpoint out of rotation. */
  readonly rateLimitedUntil: number;
  readonly breaker: CircuitBreaker;
}

/** Where an endpoint came from. */
export type EndpointSource = "static" | "registered";

/** Why a proxied attempt failed, as far as the endpoint's state is concerned. */
export type FailureKind = "connection" | "timeout" | "server_error";

/** The registry's own record of an endpoint; its mutable fields are written by the registry only. */
export class Endpoint implements EndpointView {
  status: EndpointStatus = "unknown";
  lastError: string | undefined;
  lastCheckAt: number | undefined;
  nextCheckAt: number | undefined;
  lastProbeLatencyMs: number | undefined;
  consecutiveProbeFailures = 0;
  models: Map<string, ModelCard> | undefined;
  modelsUpdatedAt: number | undefined;
  inflight = 0;
  requests = 0;
  failures = 0;
  latencyMs: number | undefined;
  rateLimitedUntil = 0;
  draining = false;
  held = false;
  readonly recentLatenciesMs: number[] = [];
  outboundHeaders: readonly (readonly [string, string])[];
  readonly baseUrl: string;
  readonly address: { readonly hostname: string; readonly port: number };
  readonly breaker: CircuitBreaker;
  keepModel: (id: string) => boolean;
  /** The profile of its type; set by the registry when an `auto` endpoint is recognised. */
  profile: Profile;
  /** Replaced by the registry when a reload changes settings other than the URL and type. */
  config: EndpointConfig;

  constructor(
    config: EndpointConfig,
    profile: Profile,
    breaker: CircuitBreaker,
    readonly source: EndpointSource = "static",
  ) {
    this.config = config;
    this.profile = profile;
    this.outboundHeaders = endpointHeaders(config);
    const url = new URL(config.url);
    this.baseUrl = config.preserve_path ? url.href.replace(/\/+$/, "") : url.origin;
    this.address = {
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    };
    this.breaker = breaker;
    this.keepModel = globFilter(config.model_filter.include, config.model_filter.exclude);
  }

  get name(): string {
    return this.config.name;
  }

  get type(): string {
    return this.profile.name;
  }
}

/** The headers an endpoint's `auth` and `headers` settings add to every upstream request. */
export function endpointHeaders(
  config: Pick<EndpointConfig, "auth" | "headers">,
): [string, string][] {
  // Lower-cased once here, so each upstream request can set them as they are.
  const out: [string, string][] = Object.entries(config.headers).map((
    [name, value],
  ) => [name.toLowerCase(), value]);
  const auth = config.auth;
  if (auth?.type === "bearer" && auth.token) out.push(["authorization", `Bearer ${auth.token}`]);
  if (auth?.type === "api_key" && auth.key) out.push([auth.header.toLowerCase(), auth.key]);
  if (auth?.type === "basic" && auth.username !== undefined && auth.password !== undefined) {
    const encoded = btoa(
      String.fromCharCode(...new TextEncoder().encode(`${auth.username}:${auth.password}`)),
    );
    out.push(["authorization", `Basic ${encoded}`]);
  }
  return out;
}
