/**
 * olla-ts's configuration schema: Olla's YAML keys and defaults (Olla's
 * `internal/config`), plus the keys olla-ts adds, each with a one-line description.
 * `config.example.yaml` is rendered from this tree, and a test keeps the two equal.
 *
 * Keys Olla has but olla-ts does not act on are declared with `unsupported` so that an
 * Olla configuration loads unchanged and the operator is told, once, what is ignored.
 *
 * @module
 */
import { clusterSpec } from "./schema_cluster.ts";
import { endpointSpec, registeredDefaultsSpec } from "./schema_endpoint.ts";
import { proxySpec } from "./schema_proxy.ts";
import { serverSpec } from "./schema_server.ts";
import { translatorsSpec } from "./schema_translators.ts";
import { list, map, obj } from "../schema/composites.ts";
import { bool, duration, num, size, str } from "../schema/scalars.ts";
import { ParseContext, type SpecType } from "../schema/spec.ts";

/** The whole configuration tree. */
export const configSpec = obj({
  server: serverSpec,
  proxy: proxySpec,
  discovery: obj({
    type: str({ default: "static", oneOf: ["static"], doc: "only static is available" }),
    refresh_interval: duration({
      default: "30s",
      doc: "Olla's unused refresh interval",
      unsupported: "endpoints come from this file; see model_discovery.interval",
    }),
    health_check: obj({
      initial_delay: duration({ default: "0s", doc: "delay before the first health probes" }),
    }),
    static: obj({
      endpoints: list(endpointSpec, {
        default: [
          endpointSpec.parse(
            {
              url: "http://localhost:23333",
              name: "local-lmdeploy",
              type: "lmdeploy",
            },
            [],
            new ParseContext(),
          ),
        ],
        doc: "the backends",
      }),
    }),
    registration: obj({
      enabled: bool({
        default: false,
        doc: "accept LMDeploy nodes registering themselves (api_server --proxy-url) at /nodes/*",
      }),
      state_file: str({
        default: "",
        doc: "where registered nodes are kept across restarts (empty: not kept)",
      }),
      defaults: registeredDefaultsSpec,
    }),
    model_discovery: obj({
      enabled: bool({ default: true, doc: "read each endpoint's model list" }),
      interval: duration({ default: "5m", min: "1s", doc: "time between model list refreshes" }),
      timeout: duration({ default: "30s", doc: "limit for one model list request" }),
      concurrent_workers: num({
        default: 5,
        min: 1,
        doc: "model lists read at once",
      }),
      retry_attempts: num({ default: 3, min: 0, doc: "retries of a failed model list request" }),
      retry_backoff: duration({ default: "1s", doc: "delay before a retry (doubles each time)" }),
    }),
  }),
  model_registry: obj({
    type: str({
      default: "memory",
      oneOf: ["memory"],
      env: "OLLA_MODEL_REGISTRY_TYPE",
      doc: "only memory is available",
    }),
    enable_unifier: bool({
      default: true,
      env: "OLLA_MODEL_UNIFIER_ENABLED",
      doc: "Olla's model-name unification",
      unsupported: "olla-ts matches model ids exactly (case preserved); use model_aliases",
    }),
    unification: obj({
      enabled: bool({ default: true, doc: "" }),
      stale_threshold: duration({ default: "24h", doc: "" }),
      cleanup_interval: duration({ default: "10m", doc: "" }),
    }, {
      doc: "Olla's unification settings",
      unsupported: "models leave the registry as soon as an endpoint stops listing them",
    }),
    routing_strategy: obj({
      type: str({
        default: "strict",
        oneOf: ["strict", "optimistic", "discovery"],
        doc: "strict, optimistic or discovery",
      }),
      options: obj({
        fallback_behavior: str({
          default: "compatible_only",
          oneOf: ["compatible_only", "all", "none"],
          doc: "all: route unknown or unavailable models to any healthy endpoint",
        }),
        discovery_timeout: duration({ default: "2s", doc: "limit for a refresh on a miss" }),
        discovery_refresh_on_miss: bool({
          default: false,
          doc: "refresh model lists when a model is not found",
        }),
      }),
    }),
  }),
  model_aliases: map(list(str({ default: "", doc: "" }), { default: [], doc: "" }), {
    doc: "virtual model name -> real names, tried in order",
    example:
      'model_aliases: { chat: ["internlm/internlm2_5-7b-chat", "Qwen/Qwen2.5-7B-Instruct"] }',
  }),
  logging: obj({
    level: str({
      default: "info",
      oneOf: ["debug", "info", "warn", "error"],
      aliases: { warning: "warn" },
      env: ["OLLA_LOGGING_LEVEL", "OLLA_LOG_LEVEL"],
      doc: "debug, info, warn or error",
    }),
    format: str({
      default: "auto",
      oneOf: ["auto", "json", "text"],
      env: "OLLA_LOGGING_FORMAT",
      doc: "json, text, or auto (text on a terminal, JSON otherwise)",
    }),
    output: str({
      default: "stdout",
      oneOf: ["stdout", "file"],
      doc: "where logs go",
      unsupported: "olla-ts logs to stdout; let systemd/journald keep files",
      fits: (value) => value === "stdout",
    }),
  }),
  translators: translatorsSpec,
  cluster: clusterSpec,
  dashboard: obj({
    enabled: bool({
      default: true,
      doc: "serve the status page at /internal/ui/ (as server.ui.enabled)",
    }),
    access_policy: obj({
      allowed_cidrs: list(str({ default: "", doc: "" }), {
        default: ["127.0.0.0/8", "::1/128"],
        doc: "clients that may open the status page without an admin key",
      }),
      allowed_hosts: list(str({ default: "", doc: "" }), {
        default: ["localhost"],
        doc:
          "Host header names the page answers (IP literals always); guards against DNS rebinding",
      }),
    }),
    gate_internal_api: bool({
      default: false,
      doc: "Olla's switch to put /internal/* behind the dashboard's rules",
      unsupported: "inert in Olla too; /internal/* follows server.internal.allowed_cidrs",
      fits: (value) => value === false,
    }),
  }, { doc: "Olla's dashboard settings, applied to the status page" }),
  engine_metrics: obj({
    enabled: bool({
      default: true,
      doc:
        "read LMDeploy's, vLLM's and SGLang's /metrics for their real load (least-loaded, power-of-two, cache-aware)",
    }),
    interval: duration({
      default: "1s",
      min: "100ms",
      doc: "time between reads of one endpoint's /metrics",
    }),
    timeout: duration({ default: "500ms", min: "10ms", doc: "limit for one read" }),
    max_age: duration({
      default: "30s",
      min: "1s",
      doc:
        "engine figures older than this (LMDeploy refreshes its every 10 s) give way to olla-ts's own counts",
    }),
    kv_cache_full: num({
      default: 0.9,
      min: 0,
      max: 1,
      integer: false,
      doc: "KV-cache usage at which an endpoint counts as full for the load-aware balancers",
    }),
  }),
  cache_aware: obj({
    cache_threshold: num({
      default: 0.5,
      min: 0,
      max: 1,
      integer: false,
      doc: "share of the prompt an endpoint's cached prefix must cover to be preferred",
    }),
    balance_abs: num({
      default: 32,
      min: 0,
      doc: "load gap (requests) beyond which balance wins over cache",
    }),
    balance_rel: num({
      default: 1.1,
      min: 1,
      integer: false,
      doc: "load ratio beyond which balance wins over cache (both must be exceeded)",
    }),
    max_tree_bytes: size({
      default: 64 * 1024 * 1024,
      doc: "memory for the prefix trees (least recently used dropped)",
    }),
  }),
  engineering: obj({
    show_nerdstats: bool({
      default: false,
      env: "OLLA_SHOW_NERD_STATS",
      doc: "log runtime statistics (memory, requests) at shutdown",
    }),
  }),
});

/** The validated configuration olla-ts runs with. */
export type Config = SpecType<typeof configSpec>;
