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
import {
  bool,
  duration,
  list,
  map,
  num,
  obj,
  type ObjectType,
  opaque,
  optional,
  optObj,
  optStr,
  ParseContext,
  size,
  type SpecType,
  str,
} from "./schema.ts";

/** Load balancer names, with the spellings older Olla configs use. */
export const LOAD_BALANCERS = ["priority", "round-robin", "least-connections"] as const;
const LOAD_BALANCER_ALIASES = {
  round_robin: "round-robin",
  least_conn: "least-connections",
  "least-conn": "least-connections",
  least_connections: "least-connections",
} as const;

const PRIVATE_AND_LOOPBACK = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
const LOOPBACK = ["127.0.0.0/8", "::1/128"];

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
  wake_on_demand: optional(bool({
    default: false,
    doc: "override proxy.wake_on_demand for this endpoint",
  })),
});

/** The whole configuration tree. */
export const configSpec = obj({
  server: obj({
    host: str({ default: "localhost", env: "OLLA_SERVER_HOST", doc: "address to listen on" }),
    port: num({
      default: 40114,
      min: 0,
      max: 65535,
      env: "OLLA_SERVER_PORT",
      doc: "0 picks a free port",
    }),
    read_timeout: duration({
      default: "30s",
      env: "OLLA_SERVER_READ_TIMEOUT",
      doc: "longest time to receive a request body",
    }),
    read_header_timeout: duration({
      default: "10s",
      env: "OLLA_SERVER_READ_HEADER_TIMEOUT",
      doc: "time to receive request headers",
      unsupported: "the Deno and Bun HTTP servers do not expose a header read timeout",
    }),
    write_timeout: duration({
      default: "0s",
      env: "OLLA_SERVER_WRITE_TIMEOUT",
      doc: "must stay 0 for streaming",
      unsupported: "olla-ts never limits writes; use proxy.response_timeout",
    }),
    idle_timeout: duration({
      default: "0s",
      doc: "keep-alive idle time",
      unsupported: "the runtime's keep-alive handling applies",
    }),
    shutdown_timeout: duration({
      default: "10s",
      env: "OLLA_SERVER_SHUTDOWN_TIMEOUT",
      doc: "longest wait for in-flight requests on SIGINT/SIGTERM",
    }),
    request_logging: bool({ default: true, doc: "write one access-log line per request" }),
    request_limits: obj({
      max_body_size: size({
        default: 100 * 1024 ** 2,
        env: "OLLA_SERVER_MAX_BODY_SIZE",
        doc: "largest request body in bytes (413 above it)",
      }),
      max_header_size: size({
        default: 1024 ** 2,
        env: "OLLA_SERVER_MAX_HEADER_SIZE",
        doc: "largest total size of request headers (431 above it)",
      }),
    }),
    rate_limits: obj({
      global_requests_per_minute: num({
        default: 1000,
        min: 0,
        env: "OLLA_SERVER_GLOBAL_RATE_LIMIT",
        doc: "all clients together; 0 turns it off",
      }),
      per_ip_requests_per_minute: num({
        default: 100,
        min: 0,
        env: "OLLA_SERVER_PER_IP_RATE_LIMIT",
        doc: "per client address; 0 turns it off",
      }),
      per_key_requests_per_minute: num({
        default: 0,
        min: 0,
        doc: "per inbound API key (server.auth); 0 turns it off",
      }),
      health_requests_per_minute: num({
        default: 1000,
        min: 0,
        env: "OLLA_SERVER_HEALTH_RATE_LIMIT",
        doc: "per client address on /internal/health; 0 turns it off",
      }),
      burst_size: num({
        default: 50,
        min: 1,
        env: "OLLA_SERVER_RATE_BURST_SIZE",
        doc: "requests allowed at once above the steady rate",
      }),
      cleanup_interval: duration({
        default: "5m",
        env: "OLLA_SERVER_RATE_CLEANUP_INTERVAL",
        doc: "how often idle per-client buckets are dropped",
      }),
      trust_proxy_headers: bool({
        default: false,
        env: "OLLA_SERVER_TRUST_PROXY_HEADERS",
        doc: "read X-Forwarded-For/X-Real-IP from trusted proxies",
      }),
      trusted_proxy_cidrs: list(str({ default: "", doc: "" }), {
        default: PRIVATE_AND_LOOPBACK,
        env: "OLLA_SERVER_TRUSTED_PROXY_CIDRS",
        doc: "peers whose forwarding headers are believed",
      }),
      per_endpoint: map(num({ default: 0, doc: "" }), {
        doc: "per-endpoint request limits",
        unsupported: "use max_concurrent_requests on the endpoint instead",
      }),
    }),
    cors: obj({
      enabled: bool({
        default: false,
        env: "OLLA_SERVER_CORS_ENABLED",
        doc: "answer CORS requests",
      }),
      allowed_origins: list(str({ default: "", doc: "" }), {
        default: ["*"],
        env: "OLLA_SERVER_CORS_ALLOWED_ORIGINS",
        doc: "origins allowed to call olla-ts",
      }),
      allowed_methods: list(str({ default: "", doc: "" }), {
        default: ["GET", "POST", "OPTIONS"],
        env: "OLLA_SERVER_CORS_ALLOWED_METHODS",
        doc: "methods allowed in CORS requests",
      }),
      allowed_headers: list(str({ default: "", doc: "" }), {
        default: ["*"],
        env: "OLLA_SERVER_CORS_ALLOWED_HEADERS",
        doc: "request headers allowed in CORS requests",
      }),
      exposed_headers: list(str({ default: "", doc: "" }), {
        default: [],
        env: "OLLA_SERVER_CORS_EXPOSED_HEADERS",
        doc: "extra headers exposed to browsers (X-Olla-* always are)",
      }),
      allow_credentials: bool({
        default: false,
        env: "OLLA_SERVER_CORS_ALLOW_CREDENTIALS",
        doc: "allow cookies and credentials (not with origin *)",
      }),
      max_age: num({
        default: 300,
        min: 0,
        env: "OLLA_SERVER_CORS_MAX_AGE",
        doc: "preflight cache seconds",
      }),
    }),
    auth: obj({
      enabled: bool({ default: false, doc: "require an API key on /olla/* routes" }),
      keys: list(
        obj({
          name: str({ default: "", doc: "label used in logs and metrics" }),
          key: optStr({ doc: "the key; use ${VAR} to read it from the environment" }),
          key_file: optStr({ doc: "file holding the key" }),
          admin: bool({ default: false, doc: "may use /internal/* and management routes" }),
        }),
        {
          default: [],
          doc: "accepted keys",
          example: 'keys: [{ name: team-a, key: "${OLLA_KEY_TEAM_A}" }]',
        },
      ),
      keys_file: optStr({ doc: "file with one 'name:key' or 'name:key:admin' per line" }),
    }),
    internal: obj({
      allowed_cidrs: list(str({ default: "", doc: "" }), {
        default: LOOPBACK,
        doc: "clients that may reach /internal/* without an admin key",
      }),
    }),
  }),
  proxy: obj({
    engine: str({
      default: "olla",
      env: "OLLA_PROXY_ENGINE",
      doc: "Olla's proxy engine choice",
      unsupported: "olla-ts has a single streaming engine",
    }),
    profile: str({
      default: "auto",
      env: "OLLA_PROXY_PROFILE",
      doc: "Olla's flush profile",
      unsupported: "olla-ts forwards every chunk as it arrives",
    }),
    load_balancer: str({
      default: "least-connections",
      oneOf: LOAD_BALANCERS,
      aliases: LOAD_BALANCER_ALIASES,
      env: "OLLA_PROXY_LOAD_BALANCER",
      doc: "priority, round-robin or least-connections",
    }),
    connection_timeout: duration({
      default: "10s",
      doc: "an upstream silent this long is checked for TCP reachability; unreachable fails over",
    }),
    connection_keep_alive: duration({
      default: "30s",
      env: "OLLA_PROXY_CONNECTION_KEEP_ALIVE",
      doc: "upstream keep-alive",
      unsupported: "the runtime's fetch manages upstream connection pooling",
    }),
    response_header_timeout: duration({
      default: "10m",
      env: "OLLA_PROXY_RESPONSE_HEADER_TIMEOUT",
      doc: "wait for upstream headers (non-streamed answers send them only when done)",
    }),
    response_timeout: duration({
      default: "15m",
      env: "OLLA_PROXY_RESPONSE_TIMEOUT",
      doc: "longest total time for one request, streams included; 0 disables",
    }),
    read_timeout: duration({
      default: "10m",
      env: "OLLA_PROXY_READ_TIMEOUT",
      doc: "longest silence inside a streamed answer before it is ended",
    }),
    tls_handshake_timeout: duration({
      default: "10s",
      env: "OLLA_PROXY_TLS_HANDSHAKE_TIMEOUT",
      doc: "upstream TLS handshake limit",
      unsupported: "covered by connection_timeout",
    }),
    stream_buffer_size: size({
      default: 64 * 1024,
      doc: "Olla's copy buffer",
      unsupported: "olla-ts forwards every chunk as it arrives, without a copy buffer",
    }),
    max_retries: num({
      default: 3,
      min: 0,
      doc: "extra attempts on other endpoints before the answer starts",
    }),
    retry_backoff: duration({
      default: "500ms",
      doc: "delay between attempts",
      unsupported: "failover goes to a different endpoint at once",
    }),
    profiles_dir: optStr({ doc: "directory of extra or overriding provider profiles (*.yaml)" }),
    profile_filter: obj({
      include: list(str({ default: "", doc: "" }), {
        default: [],
        doc: "profile name globs to load",
      }),
      exclude: list(str({ default: "", doc: "" }), {
        default: [],
        doc: "profile name globs to skip",
      }),
    }),
    allow_management_routes: bool({
      default: false,
      doc: "forward LMDeploy sleep/wakeup/abort/weights routes (admin key needed with server.auth)",
    }),
    wake_on_demand: bool({
      default: false,
      doc: "wake a sleeping LMDeploy endpoint when a request needs it",
    }),
    wake_timeout: duration({ default: "2m", doc: "how long requests wait for a wake-up" }),
    circuit_breaker: obj({
      failure_threshold: num({ default: 5, min: 1, doc: "consecutive failures that open it" }),
      cooldown: duration({ default: "30s", doc: "time open before one trial request" }),
    }),
    sticky_sessions: obj({
      enabled: bool({
        default: false,
        env: "OLLA_PROXY_STICKY_SESSIONS_ENABLED",
        doc: "keep a conversation on the endpoint that served it",
      }),
      idle_ttl_seconds: num({ default: 600, min: 1, doc: "pin lifetime since last use" }),
      max_sessions: num({ default: 10000, min: 1, doc: "pins kept (least recently used dropped)" }),
      key_sources: list(
        str({
          default: "session_header",
          oneOf: ["session_header", "prefix_hash", "auth_header", "ip"],
          doc: "",
        }),
        {
          default: ["session_header", "prefix_hash", "auth_header"],
          doc: "session_header, prefix_hash, auth_header, ip; first that applies wins",
        },
      ),
      prefix_hash_bytes: num({ default: 512, min: 16, doc: "bytes of messages hashed" }),
    }),
  }),
  discovery: obj({
    type: str({ default: "static", oneOf: ["static"], doc: "only static is available" }),
    refresh_interval: duration({
      default: "30s",
      doc: "Olla's unused refresh interval",
      unsupported: "endpoints come from this file; see model_discovery.interval",
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
    model_discovery: obj({
      enabled: bool({ default: true, doc: "read each endpoint's model list" }),
      interval: duration({ default: "5m", min: "1s", doc: "time between model list refreshes" }),
      timeout: duration({ default: "30s", doc: "limit for one model list request" }),
      concurrent_workers: num({
        default: 5,
        min: 1,
        doc: "parallel discoveries",
        unsupported: "each endpoint discovers on its own schedule",
      }),
      retry_attempts: num({ default: 3, min: 0, doc: "retries of a failed model list request" }),
      retry_backoff: duration({ default: "1s", doc: "delay before a retry (doubles each time)" }),
    }),
  }),
  model_registry: obj({
    type: str({ default: "memory", oneOf: ["memory"], doc: "only memory is available" }),
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
      env: "OLLA_LOG_LEVEL",
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
    }),
  }),
  translators: opaque({
    doc: "Olla's API translators",
    unsupported: "the Anthropic translator is not available yet",
  }),
  dashboard: opaque({ doc: "Olla's web dashboard", unsupported: "no dashboard yet" }),
  engineering: obj({
    show_nerdstats: bool({
      default: false,
      env: "OLLA_SHOW_NERD_STATS",
      doc: "print runtime stats at shutdown",
      unsupported: "see /internal/process",
    }),
  }),
});

/** The validated configuration olla-ts runs with. */
export type Config = SpecType<typeof configSpec>;
/** One endpoint's configuration. */
export type EndpointConfig = SpecType<typeof endpointSpec>;
/** An endpoint's outbound credentials. */
export type EndpointAuth = NonNullable<EndpointConfig["auth"]>;
/** One inbound API key entry. */
export type InboundKeyConfig = Config["server"]["auth"]["keys"][number];
export type { ObjectType };
