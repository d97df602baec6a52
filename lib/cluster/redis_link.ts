/**
 * The one connection to Redis (and its pub/sub twin), and the rule that keeps Redis off
 * the critical path: every command is given `cluster.timeout` (50 ms by default) and
 * then abandoned, and while Redis is down or slow the link is *degraded* and commands
 * are not sent at all, so callers go on with their own state at once. Going degraded is
 * logged once and counted (`olla_cluster_redis_errors_total`, `olla_cluster_degraded`);
 * a ping every second notices when Redis answers in time again, and the link's rejoin
 * listeners resynchronise what was missed.
 *
 * The client is node-redis's core (`@redis/client`): Redis's own client, no
 * dependencies, and measured cheapest per command of the well-kept clients on both
 * runtimes (README, "Scale-out"). Its offline queue is off, so a command while
 * disconnected fails at once instead of waiting for a reconnect.
 *
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { Counter, Gauge, type MetricsRegistry } from "../observability/prometheus.ts";

/** What olla-ts uses of a Redis client (node-redis's `RedisClientType`). */
export interface RedisClientLike {
  connect(): Promise<unknown>;
  sendCommand<T>(args: readonly string[]): Promise<T>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  duplicate(): RedisClientLike;
  SUBSCRIBE(channel: string, listener: (message: string) => void): Promise<void>;
  destroy(): void;
}

/** Options of {@linkcode RedisLink}. */
export interface RedisLinkOptions {
  url: string;
  /** `cluster.timeout`. */
  timeoutMs: number;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Time between pings while degraded. @default {1000} */
  probeIntervalMs?: number;
  /** Makes the client. @default {node-redis's createClient, loaded on first use} */
  createClient?: (url: string) => Promise<RedisClientLike>;
}

/** A command that did not answer within the timeout. */
class RedisTimeout extends Error {}

/** The link; `up` says whether commands are sent. */
export class RedisLink {
  readonly #options: RedisLinkOptions;
  readonly #errors: Counter;
  #client: RedisClientLike | undefined;
  #subscriber: RedisClientLike | undefined;
  #connected = false;
  /** Degraded by a timeout or error while connected, until a ping answers in time. */
  #slow = false;
  /** The state last logged; `undefined` before the first. */
  #reportedUp: boolean | undefined;
  #epoch = 0;
  #lastError = "";
  #probe: TimerId | undefined;
  #stopped = false;
  readonly #rejoinListeners: (() => void)[] = [];

  constructor(options: RedisLinkOptions) {
    this.#options = options;
    this.#errors = options.metrics.add(
      new Counter(
        "olla_cluster_redis_errors_total",
        "Redis commands that failed or did not answer within cluster.timeout, by operation.",
      ),
    );
    options.metrics.add(
      new Gauge(
        "olla_cluster_degraded",
        "1 while Redis is unreachable or slow and this instance uses its own state.",
        () => [[{}, this.up ? 0 : 1]],
      ),
    );
  }

  /**
   * Counts the times the link came up; Redis may have restarted in between, losing
   * loaded scripts (redis_script.ts).
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether commands are sent to Redis now. */
  get up(): boolean {
    return this.#connected && !this.#slow;
  }

  /**
   * Connects, waiting at most `waitMs` for Redis to answer (startup goes on degraded
   * after that; the link keeps reconnecting).
   */
  async start(waitMs: number): Promise<void> {
    const create = this.#options.createClient ?? createNodeRedisClient;
    this.#client = await create(this.#options.url);
    this.#subscriber = this.#client.duplicate();
    this.#watch(this.#client, (connected) => {
      this.#connected = connected;
      this.#changed();
    });
    this.#watch(this.#subscriber, () => {});
    const { clock } = this.#options;
    let timer: TimerId | undefined;
    const connected = await Promise.race([
      Promise.all([this.#client.connect(), this.#subscriber.connect()]).then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => timer = clock.setTimeout(() => resolve(false), waitMs)),
    ]);
    clock.clearTimeout(timer);
    // Not up in time: say so now rather than at the first failed command.
    if (!connected) this.#changed();
    this.#scheduleProbe();
  }

  /** Stops the link and closes its connections. */
  stop(): void {
    this.#stopped = true;
    if (this.#probe !== undefined) this.#options.clock.clearTimeout(this.#probe);
    this.#client?.destroy();
    this.#subscriber?.destroy();
    this.#connected = false;
  }

  /** Called each time Redis is usable again after being down or slow. */
  onRejoin(listener: () => void): void {
    this.#rejoinListeners.push(listener);
  }

  /**
   * Sends one command; its reply, or `undefined` when the link is degraded, the command
   * fails or it does not answer within the timeout (the link is degraded then).
   * `operation` labels the error counter.
   */
  async command<T>(operation: string, args: readonly string[]): Promise<T | undefined> {
    const client = this.#client;
    if (!client || !this.up) return undefined;
    try {
      return await this.#timed(client.sendCommand<T>(args));
    } catch (error) {
      this.#failed(operation, error);
      return undefined;
    }
  }

  /** Subscribes to a channel (messages from every instance, this one included). */
  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    const subscriber = this.#subscriber;
    if (!subscriber) return;
    try {
      // node-redis subscribes again by itself after a reconnect.
      await subscriber.SUBSCRIBE(channel, onMessage);
    } catch (error) {
      this.#failed("subscribe", error);
    }
  }

  #failed(operation: string, error: unknown): void {
    this.#errors.inc({ operation });
    if (this.#connected && !this.#slow) {
      this.#slow = true;
      this.#changed(error instanceof RedisTimeout ? "no answer in time" : String(error));
    }
  }

  #timed<T>(reply: Promise<T>): Promise<T> {
    const { clock, timeoutMs } = this.#options;
    let timer: TimerId | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(
        () => reject(new RedisTimeout(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    // A reply after the timeout is dropped; node-redis keeps its replies in order.
    reply.catch(() => {});
    return Promise.race([reply, timeout]).finally(() => clock.clearTimeout(timer));
  }

  #watch(client: RedisClientLike, connectedNow: (connected: boolean) => void): void {
    client.on("ready", () => connectedNow(true));
    client.on("end", () => connectedNow(false));
    client.on("reconnecting", () => connectedNow(false));
    client.on("error", (error) => {
      this.#errors.inc({ operation: "connection" });
      this.#lastError = String(error);
      connectedNow(false);
    });
  }

  /** Logs each change between up and degraded once; tells the rejoin listeners when Redis is back. */
  #changed(reason = this.#lastError || "not connected"): void {
    const up = this.up;
    if (this.#stopped || up === this.#reportedUp) return;
    const rejoined = up && this.#epoch > 0;
    this.#reportedUp = up;
    if (!up) {
      this.#options.logger.warn("redis unavailable; using this instance's own state", { reason });
      return;
    }
    this.#epoch++;
    this.#options.logger.info(
      rejoined ? "redis is back; resyncing shared state" : "redis connected; sharing state",
    );
    for (const listener of this.#rejoinListeners) listener();
  }

  /** While connected but slow, pings; an answer in time ends the degraded state. */
  #scheduleProbe(): void {
    const { clock } = this.#options;
    this.#probe = clock.setTimeout(async () => {
      const client = this.#client;
      if (this.#stopped || !client) return;
      if (this.#connected && this.#slow) {
        try {
          await this.#timed(client.sendCommand(["PING"]));
          this.#slow = false;
          this.#changed();
        } catch {
          // Still slow: stay degraded and try again.
        }
      }
      if (!this.#stopped) this.#scheduleProbe();
    }, this.#options.probeIntervalMs ?? 1000);
  }
}

/** node-redis's client, reconnecting with backoff (50 ms doubling to 1 s), no offline queue. */
async function createNodeRedisClient(url: string): Promise<RedisClientLike> {
  const { createClient } = await import("@redis/client");
  return createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000),
    },
  }) as unknown as RedisClientLike;
}
