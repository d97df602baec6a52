/**
 * The schema of the `proxy:` section: balancer, upstream timeouts, retries, profiles,
 * management routes, wake-on-demand, circuit breaker and sticky sessions.
 *
 * @module
 */
import { list, obj, optObj } from "../schema/composites.ts";
import { bool, duration, num, optStr, size, str } from "../schema/scalars.ts";

/** Load balancer names, with the spellings older Olla configs use. */
export const LOAD_BALANCERS = [
  "priority",
  "round-robin",
  "least-connections",
  // LMDeploy proxy_server's --routing-strategy names.
  "random",
  "min_expected_latency",
  "min_observed_latency",
  // On the engines' own load (engine_metrics) and prefix caches.
  "least-loaded",
  "power-of-two",
  "cache-aware",
] as const;
const LOAD_BALANCER_ALIASES = {
  round_robin: "round-robin",
  least_conn: "least-connections",
  "least-conn": "least-connections",
  least_connections: "least-connections",
} as const;

/** The `proxy:` section. */
export const proxySpec = obj({
  engine: str({
    default: "olla",
    env: "OLLA_PROXY_ENGINE",
    doc: "Olla's proxy engine (olla or sherpa); olla-ts has one engine, which streams like both",
  }),
  profile: str({
    default: "auto",
    env: "OLLA_PROXY_PROFILE",
    doc: "Olla's flush profile (auto, streaming, standard)",
    unsupported: "olla-ts forwards every chunk as it arrives, as Olla's streaming profile does",
    fits: (value) => value === "auto" || value === "streaming",
  }),
  load_balancer: str({
    default: "least-connections",
    oneOf: LOAD_BALANCERS,
    aliases: LOAD_BALANCER_ALIASES,
    env: "OLLA_PROXY_LOAD_BALANCER",
    doc:
      "priority, round-robin, least-connections, or LMDeploy's random, min_expected_latency, min_observed_latency",
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
  max_upstream_connections: num({
    default: 0,
    min: 0,
    doc: "upstream requests in flight at once (Bun's fetch limit); 0 sizes it from the endpoints",
  }),
  max_response_header_size: size({
    default: 64 * 1024,
    doc: "largest response head olla-ts accepts from a backend; a larger one fails over",
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
    doc:
      "upstream TLS handshake limit; olla-ts bounds connecting and the handshake together by connection_timeout",
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
  retry: optObj({
    enabled: bool({ default: true, doc: "fail over to another endpoint before the answer starts" }),
    on_connection_failure: bool({
      default: true,
      doc: "fail over when the connection fails (refused, reset, timed out)",
    }),
    max_attempts: num({
      default: 0,
      min: 0,
      doc: "attempts in all; 0 tries every candidate once (Olla's meaning)",
    }),
  }, {
    doc: "Olla's retry block; when present it replaces max_retries",
    example: "retry: { enabled: true, on_connection_failure: true, max_attempts: 0 }",
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
});
