/**
 * Scale-out: the pieces several instances share through Redis (`cluster:`), built over
 * one {@linkcode RedisLink}: rate limits, sticky pins, registered nodes, and the
 * instances' table that carries their load and what each of them sees. Each piece has
 * its switch under `cluster.share`; health is never shared (each instance probes on its
 * own).
 *
 * @module
 */
import { type PeerRecord, Peers } from "./peers.ts";
import { type RedisClientLike, RedisLink } from "./redis_link.ts";
import { SharedNodes } from "./shared_nodes.ts";
import { SharedPins } from "./shared_pins.ts";
import { SharedRateLimits } from "./shared_rate_limits.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { urlForDisplay } from "../config/validate.ts";
import type { Logger } from "../log.ts";
import type { MetricsRegistry } from "../observability/prometheus.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { StickyTable } from "../routing/sticky.ts";
import type { RateLimits, RateLimitSettings } from "../server/rate_limit.ts";

/** Collaborators of {@linkcode Cluster}. */
export interface ClusterDeps {
  settings: Config["cluster"];
  /** `cluster.instance_id`, or the default made from the host name and port. */
  instanceId: string;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  /** This instance's entry in the instances' table. */
  describe(): Omit<PeerRecord, "last_seen" | "id" | "self">;
  /** This instance's pin table and `proxy.sticky_sessions`. */
  sticky: { table: StickyTable; idle_ttl_seconds: number; max_sessions: number };
  /** @default {node-redis} */
  createClient?: (url: string) => Promise<RedisClientLike>;
}

/** How long startup waits for Redis before going on degraded. */
const STARTUP_WAIT_MS = 1_000;

/** The shared state of one instance among several. */
export class Cluster {
  readonly #link: RedisLink;
  readonly #peers: Peers;
  /** The shared node table, with `share.registrations`. */
  readonly nodes: SharedNodes | undefined;
  /** The shared pins, with `share.sticky_sessions`. */
  readonly pins: SharedPins | undefined;
  readonly #deps: ClusterDeps;

  constructor(deps: ClusterDeps) {
    this.#deps = deps;
    const { settings, clock, instanceId } = deps;
    // Instances tell each other apart by a token of their own, not by instance_id: two
    // instances given the same id (or the same default, as under `deno serve --port`)
    // would otherwise ignore each other's messages and overwrite each other's entry.
    const self = crypto.randomUUID();
    this.#link = new RedisLink({
      url: settings.redis_url,
      timeoutMs: settings.timeout,
      clock,
      logger: deps.logger,
      metrics: deps.metrics,
      createClient: deps.createClient,
    });
    const keyPrefix = settings.key_prefix;
    this.#peers = new Peers({
      link: this.#link,
      keyPrefix,
      self,
      clock,
      describe: () => ({ id: instanceId, ...deps.describe() }),
    });
    this.nodes = settings.share.registrations
      ? new SharedNodes({ link: this.#link, keyPrefix, self, clock })
      : undefined;
    const { sticky } = deps;
    this.pins = settings.share.sticky_sessions
      ? new SharedPins({
        table: sticky.table,
        link: this.#link,
        keyPrefix,
        self,
        idleTtlMs: sticky.idle_ttl_seconds * 1000,
        maxEntries: sticky.max_sessions,
        clock,
      })
      : undefined;
  }

  /**
   * Connects (waiting up to a second), subscribes and starts the instances' heartbeat.
   * The node table is started by the registration, which applies it.
   */
  async start(): Promise<void> {
    await this.#link.start(STARTUP_WAIT_MS);
    await this.pins?.start();
    await this.#peers.start();
  }

  async stop(): Promise<void> {
    this.nodes?.stop();
    await this.#peers.stop();
    this.#link.stop();
  }

  /** Rate limits over Redis, or `undefined` when `share.rate_limits` is off. */
  rateLimits(settings: RateLimitSettings): RateLimits | undefined {
    const cluster = this.#deps.settings;
    if (!cluster.share.rate_limits) return undefined;
    return new SharedRateLimits({
      settings,
      link: this.#link,
      keyPrefix: cluster.key_prefix,
      onRedisFailure: cluster.rate_limits_on_redis_failure,
      clock: this.#deps.clock,
    });
  }

  /** The other instances' requests in flight at an endpoint, with `share.load`. */
  readonly peerInflight = (endpoint: EndpointView): number =>
    this.#deps.settings.share.load ? this.#peers.inflightAt(endpoint) : 0;

  /** `/internal/cluster`. */
  status(): Record<string, unknown> {
    const { settings, instanceId } = this.#deps;
    return {
      enabled: true,
      instance_id: instanceId,
      redis: {
        url: urlForDisplay(settings.redis_url),
        state: this.#link.up ? "connected" : "degraded",
        timeout_ms: settings.timeout,
      },
      shared: { ...settings.share },
      rate_limits_on_redis_failure: settings.rate_limits_on_redis_failure,
      instances: this.#peers.others,
    };
  }
}
