/**
 * The `cluster:` section: several olla-ts instances behind one address sharing rate
 * limits, sticky pins, registered nodes and load through Redis. Without `redis_url` an
 * instance keeps all of it to itself, exactly as a lone olla-ts does.
 *
 * @module
 */
import { obj } from "../schema/composites.ts";
import { bool, duration, str } from "../schema/scalars.ts";

const share = (what: string, env: string) =>
  bool({ default: true, env, doc: `share ${what} (only with redis_url)` });

/** The `cluster:` section. */
export const clusterSpec = obj({
  redis_url: str({
    default: "",
    env: "OLLA_CLUSTER_REDIS_URL",
    doc: "redis:// or rediss:// (TLS) URL, password in it or in ${VAR}; empty: one instance, " +
      "nothing shared",
  }),
  key_prefix: str({ default: "olla:", doc: "prefix of every Redis key and channel olla-ts uses" }),
  instance_id: str({
    default: "",
    env: "OLLA_CLUSTER_INSTANCE_ID",
    doc: "this instance's name among the others (empty: <hostname>:<port>)",
  }),
  timeout: duration({
    default: "50ms",
    min: "1ms",
    doc: "longest wait for Redis; past it the request goes on with this instance's own state",
  }),
  rate_limits_on_redis_failure: str({
    default: "local",
    oneOf: ["local", "open", "closed"],
    doc: "while Redis is unreachable: local (per-instance buckets), open (no limit) or " +
      "closed (503)",
  }),
  share: obj({
    rate_limits: share("rate-limit buckets", "OLLA_CLUSTER_SHARE_RATE_LIMITS"),
    sticky_sessions: share(
      "sticky-session and LMDeploy session_id pins",
      "OLLA_CLUSTER_SHARE_STICKY_SESSIONS",
    ),
    registrations: share("registered LMDeploy nodes", "OLLA_CLUSTER_SHARE_REGISTRATIONS"),
    load: share("requests in flight per endpoint", "OLLA_CLUSTER_SHARE_LOAD"),
  }),
}, { doc: "several olla-ts instances sharing limits, pins, nodes and load through Redis" });
