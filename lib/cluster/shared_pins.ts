/**
 * Sticky-session and LMDeploy `session_id` pins shared by every instance, so a
 * conversation lands on the same endpoint whichever instance receives it.
 *
 * This instance's table answers first; a key it does not hold is looked up in Redis
 * (`<prefix>pin:<key>`, one GET within `cluster.timeout`) and, when found, copied into
 * the table. Each pin is written to Redis with the configured idle lifetime, refreshed
 * when used (at most every quarter lifetime, off the request's path), and a pin that
 * moves to another endpoint is announced on `<prefix>pins` so the other instances stop
 * sending that conversation to the old one. While Redis is degraded the table alone
 * decides, as on a single instance.
 *
 * @module
 */
import type { RedisLink } from "./redis_link.ts";
import type { Clock } from "../clock.ts";
import type { PinStore, StickyTable } from "../routing/sticky.ts";

/** Options of {@linkcode SharedPins}. */
export interface SharedPinsOptions {
  table: StickyTable;
  link: RedisLink;
  keyPrefix: string;
  /** This process's token among the instances (cluster.ts), to skip its own messages. */
  self: string;
  idleTtlMs: number;
  maxEntries: number;
  clock: Clock;
}

/** A pin moved, as announced on the channel. */
interface PinMoved {
  key: string;
  endpoint: string;
  from: string;
}

/** The shared pin store. */
export class SharedPins implements PinStore {
  readonly #options: SharedPinsOptions;
  /** Key -> when its Redis lifetime was last renewed (bounded like the table). */
  readonly #renewedAt = new Map<string, number>();

  constructor(options: SharedPinsOptions) {
    this.#options = options;
  }

  get #channel(): string {
    return `${this.#options.keyPrefix}pins`;
  }

  /** Listens for pins moved by the other instances. */
  async start(): Promise<void> {
    await this.#options.link.subscribe(this.#channel, (message) => {
      let moved: PinMoved;
      try {
        moved = JSON.parse(message);
      } catch {
        return;
      }
      if (moved.from === this.#options.self) return;
      // Only a pin held here can be wrong here; any other is read from Redis when needed.
      if (this.#options.table.peek(moved.key) !== undefined) {
        this.#options.table.set(moved.key, moved.endpoint);
      }
    });
  }

  get(key: string): string | undefined | Promise<string | undefined> {
    const { table, link } = this.#options;
    const local = table.get(key);
    if (local !== undefined) {
      void this.#renew(key, local, false);
      return local;
    }
    if (!link.up) return undefined;
    return link.command<string | null>("sticky_get", ["GET", this.#redisKey(key)]).then(
      (shared) => {
        if (typeof shared !== "string" || shared === "") return undefined;
        table.set(key, shared);
        this.#renewedAt.set(key, this.#options.clock.now());
        return shared;
      },
    );
  }

  /**
   * Pins `key` here and in Redis. A new or moved pin is stored before the answer goes out
   * (the returned promise, at most `cluster.timeout`): the client's next turn may reach
   * another instance the moment it has the answer, and must find the pin there.
   */
  set(key: string, endpoint: string): void | Promise<void> {
    const previous = this.#options.table.peek(key);
    this.#options.table.set(key, endpoint);
    if (previous === endpoint) {
      // The same pin used again: a renewal, if one is due, need not hold the answer.
      void this.#renew(key, endpoint, false);
      return undefined;
    }
    if (previous !== undefined) {
      const moved: PinMoved = { key, endpoint, from: this.#options.self };
      void this.#options.link.command("sticky_publish", [
        "PUBLISH",
        this.#channel,
        JSON.stringify(moved),
      ]);
    }
    return this.#renew(key, endpoint, true);
  }

  /**
   * Writes the pin with a fresh lifetime when it changed or a quarter lifetime went by;
   * the write, settled when Redis answered (or gave up), or `undefined` when none is due.
   */
  #renew(key: string, endpoint: string, changed: boolean): Promise<void> | undefined {
    const { clock, idleTtlMs, link, maxEntries } = this.#options;
    const now = clock.now();
    const renewed = this.#renewedAt.get(key);
    if (!changed && renewed !== undefined && now - renewed < idleTtlMs / 4) return undefined;
    if (!link.up) return undefined;
    this.#renewedAt.delete(key);
    this.#renewedAt.set(key, now);
    if (this.#renewedAt.size > maxEntries) {
      this.#renewedAt.delete(this.#renewedAt.keys().next().value as string);
    }
    return link.command("sticky_set", [
      "SET",
      this.#redisKey(key),
      endpoint,
      "PX",
      String(Math.max(1, Math.round(idleTtlMs))),
    ]).then(() => {});
  }

  #redisKey(key: string): string {
    return `${this.#options.keyPrefix}pin:${key}`;
  }
}
