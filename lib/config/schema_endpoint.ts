/**
 * The schema of one backend under `discovery.static.endpoints`: Olla's endpoint keys and
 * defaults, plus olla-ts's (weight, auth, headers, admission, wake-on-demand).
 *
 * @module
 */
import { list, map, obj, optObj } from "../schema/composites.ts";
import { bool, duration, num, optional, optStr, str } from "../schema/scalars.ts";
import type { SpecType } from "../schema/spec.ts";

const authSpec = optObj({
  type: str({
    default: "bearer",
    oneOf: ["bearer", "api_key", "basic"],
    doc: "bearer, api_key or basic",
  }),
  token: optStr({ doc: "bearer token; use ${VAR} to read it from the environment" }),
  token_file: optStr({ doc: "file holding the bearer token" }),
  key: optStr({ doc: "API key (api_key type)" }),
  key_file: optStr({ doc: "file holding the API key" }),
  header: str({ default: "X-API-Key", doc: "header carrying the API key (api_key type)" }),
  username: optStr({ doc: "basic auth user name" }),
  username_file: optStr({ doc: "file holding the basic auth user name" }),
  password: optStr({ doc: "basic auth password" }),
  password_file: optStr({ doc: "file holding the basic auth password" }),
}, {
  doc: "credentials olla-ts sends to this endpoint (never to clients)",
  example: 'auth: { type: bearer, token: "${LMDEPLOY_API_KEY}" }',
});

/** One backend, as listed under `discovery.static.endpoints`. */
export const endpointSpec = obj({
  url: str({ default: "", doc: "base URL of the backend (no credentials in it)" }),
  name: str({ default: "", doc: "unique name; used in headers, logs and metrics" }),
  type: str({ default: "", doc: "backend type: a profile name such as lmdeploy" }),
  priority: num({ default: 100, min: 0, doc: "higher is preferred by the priority balancer" }),
  weight: num({
    default: 1,
    min: 0,
    integer: false,
    doc: "relative share of traffic within a priority tier; 0 drains the endpoint",
  }),
  preserve_path: bool({ default: false, doc: "keep the URL's base path when forwarding" }),
  health_check_url: optStr({ doc: "health path or URL (default from the profile)" }),
  model_url: optStr({ doc: "model list path or URL (default from the profile)" }),
  check_interval: duration({ default: "5s", min: "100ms", doc: "time between health probes" }),
  check_timeout: duration({ default: "2s", min: "10ms", doc: "limit for one health probe" }),
  model_filter: obj({
    include: list(str({ default: "", doc: "" }), { default: [], doc: "glob patterns to keep" }),
    exclude: list(str({ default: "", doc: "" }), { default: [], doc: "glob patterns to drop" }),
  }, { doc: "which discovered models this endpoint may serve (exclude wins)" }),
  auth: authSpec,
  headers: map(str({ default: "", doc: "" }), {
    doc: "extra headers sent to this endpoint (values are never logged)",
    example: 'headers: { X-Tenant: "gpu-a" }',
  }),
  max_concurrent_requests: num({
    default: 0,
    min: 0,
    doc: "requests sent at once to this endpoint; 0 means no limit",
  }),
  queue_size: num({ default: 64, min: 0, doc: "requests that may wait for a free slot" }),
  queue_timeout: duration({ default: "30s", doc: "longest wait for a free slot" }),
  engine_metrics_interval: optional(duration({
    default: "1s",
    doc: "override engine_metrics.interval for this endpoint; 0s turns scraping off for it",
  })),
  wake_on_demand: optional(bool({
    default: false,
    doc: "override proxy.wake_on_demand for this endpoint",
  })),
});

/** One endpoint's configuration. */
export type EndpointConfig = SpecType<typeof endpointSpec>;

const { url: _url, name: _name, ...endpointSettings } = endpointSpec.fields;

/**
 * `discovery.registration.defaults`: every endpoint setting but `url` and `name` (which a
 * registering node brings), applied to the nodes that register; `type` is `lmdeploy`.
 */
export const registeredDefaultsSpec = obj({
  ...endpointSettings,
  type: str({ default: "lmdeploy", doc: "backend type of registered nodes" }),
}, { doc: "endpoint settings for registered nodes (type lmdeploy unless set)" });
