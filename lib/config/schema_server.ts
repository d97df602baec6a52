/**
 * The schema of the `server:` section: listening, timeouts, request limits, rate limits,
 * CORS, inbound API keys and who may reach `/internal/*`.
 *
 * @module
 */
import { list, map, obj } from "../schema/composites.ts";
import { bool, duration, num, optStr, size, str } from "../schema/scalars.ts";

const PRIVATE_AND_LOOPBACK = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** The `server:` section. */
export const serverSpec = obj({
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
    doc: "Olla's Slowloris guard; neither runtime lets olla-ts set it (Bun drops such a " +
      "client after about 12 s by itself, Deno never): reported at startup when set",
  }),
  write_timeout: duration({
    default: "0s",
    env: "OLLA_SERVER_WRITE_TIMEOUT",
    doc: "must stay 0 for streaming",
    unsupported: "olla-ts never limits writes; use proxy.response_timeout",
    fits: (value) => value === 0,
  }),
  idle_timeout: duration({
    default: "0s",
    doc: "an idle keep-alive connection is closed after this (0: server.read_timeout, as " +
      "Olla's Go server does); Bun applies at most 255s, Deno cannot (reported at startup)",
  }),
  shutdown_timeout: duration({
    default: "10s",
    env: "OLLA_SERVER_SHUTDOWN_TIMEOUT",
    doc: "longest wait for in-flight requests on SIGINT/SIGTERM",
  }),
  request_logging: bool({ default: true, doc: "write one access-log line per request" }),
  root_v1_routes: bool({
    default: false,
    doc: "also answer the unified OpenAI routes at /v1/... (LMDeploy proxy clients keep their URL)",
  }),
  watch_config: bool({
    default: false,
    doc: "reload the configuration file when it changes (as SIGHUP does)",
  }),
  request_limits: obj({
    max_body_size: size({
      default: 100 * 1024 ** 2,
      env: "OLLA_SERVER_MAX_BODY_SIZE",
      doc: "largest request body in bytes (413 above it)",
    }),
    max_buffered_bytes: size({
      default: 512 * 1024 ** 2,
      doc: "request-body bytes all in-flight requests may hold together (503 above it)",
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
  ui: obj({
    enabled: bool({ default: true, doc: "serve the status page at /internal/ui/" }),
  }),
});
