/**
 * Registered LMDeploy nodes shared by every instance: the table lives in Redis
 * (`<prefix>nodes`, URL -> status JSON, as LMDeploy's `proxy_config.json` keeps it), so
 * it survives a restart of any instance; each change is announced on `<prefix>nodes`
 * and applied by the others at once, and every 5 s (and whenever Redis is back) each
 * instance reads the whole table to mend what it missed.
 *
 * A change made while Redis is unreachable is kept as pending and written first when
 * Redis is back, so a node that registered during an outage is not dropped by the
 * resync that follows it. The table carries a marker field; a table found without it
 * was lost (a Redis restarted without persistence), and then every instance writes its
 * nodes back instead of removing them.
 *
 * @module
 */
import type { RedisLink } from "./redis_link.ts";
import type { Clock, TimerId } from "../clock.ts";

/** A change to the table, as announced. */
export interface NodeChange {
  op: "add" | "remove";
  url: string;
  /** The node's status JSON, for an add. */
  status?: string;
  from: string;
}

/** What the registration does with shared changes. */
export interface SharedNodesListener {
  /** Another instance added or removed a node. */
  applyChange(change: NodeChange): void;
  /**
   * The whole table (URL -> status JSON), after a resync; nodes missing from it are
   * removed only with `removeMissing`.
   */
  applyTable(table: Readonly<Record<string, string>>, removeMissing: boolean): void;
  /** This instance's registered nodes, to write back into a lost table. */
  localTable(): Record<string, string>;
}

/** The field that says the table is the cluster's (it is absent from a lost one). */
const MARKER = "__olla_nodes__";

/** Options of {@linkcode SharedNodes}. */
export interface SharedNodesOptions {
  link: RedisLink;
  keyPrefix: string;
  /** This process's token among the instances (cluster.ts), to skip its own messages. */
  self: string;
  clock: Clock;
  /** @default {5000} */
  resyncIntervalMs?: number;
}

/** The shared node table. */
export class SharedNodes {
  readonly #options: SharedNodesOptions;
  /** URL -> status JSON to write, or `null` to delete, not yet acknowledged by Redis. */
  readonly #pending = new Map<string, string | null>();
  #listener: SharedNodesListener | undefined;
  #timer: TimerId | undefined;
  #stopped = false;

  constructor(options: SharedNodesOptions) {
    this.#options = options;
  }

  get #key(): string {
    return `${this.#options.keyPrefix}nodes`;
  }

  /** Whether a change to `url` made here has not reached Redis yet. */
  isPending(url: string): boolean {
    return this.#pending.has(url);
  }

  /** Subscribes, reads the table once and resyncs from then on. */
  async start(listener: SharedNodesListener): Promise<void> {
    this.#listener = listener;
    const { link } = this.#options;
    await link.subscribe(this.#key, (message) => {
      let change: NodeChange;
      try {
        change = JSON.parse(message);
      } catch {
        return;
      }
      if (change.from !== this.#options.self) this.#listener?.applyChange(change);
    });
    link.onRejoin(() => void this.resync());
    await this.resync();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
  }

  /** Records an added (or updated) node and tells the other instances. */
  saved(url: string, status: string): void {
    this.#pending.set(url, status);
    void this.#write(url, status);
  }

  /** Records a removal and tells the other instances. */
  removed(url: string): void {
    this.#pending.set(url, null);
    void this.#write(url, null);
  }

  /** Writes what is pending, then hands the whole table to the listener. */
  async resync(): Promise<void> {
    const { link } = this.#options;
    if (!link.up) return;
    await Promise.all([...this.#pending].map(([url, status]) => this.#write(url, status)));
    const reply = await link.command<unknown>("nodes_read", ["HGETALL", this.#key]);
    if (reply === undefined || !this.#listener) return;
    const table = hashReply(reply);
    const intact = MARKER in table;
    delete table[MARKER];
    if (!intact) {
      await link.command("nodes_write", ["HSET", this.#key, MARKER, "1"]);
      for (const [url, status] of Object.entries(this.#listener.localTable())) {
        if (!(url in table)) this.saved(url, status);
      }
    }
    this.#listener.applyTable(table, intact);
  }

  async #write(url: string, status: string | null): Promise<void> {
    const { link, self } = this.#options;
    const change: NodeChange = status === null
      ? { op: "remove", url, from: self }
      : { op: "add", url, status, from: self };
    const stored = await link.command<number>(
      "nodes_write",
      status === null ? ["HDEL", this.#key, url] : ["HSET", this.#key, url, status],
    );
    if (stored === undefined) return;
    // A newer change to the same node made meanwhile stays pending.
    if (this.#pending.get(url) === status) this.#pending.delete(url);
    await link.command("nodes_publish", ["PUBLISH", this.#key, JSON.stringify(change)]);
  }

  #schedule(): void {
    this.#timer = this.#options.clock.setTimeout(async () => {
      if (this.#stopped) return;
      await this.resync();
      if (!this.#stopped) this.#schedule();
    }, this.#options.resyncIntervalMs ?? 5_000);
  }
}

/** An HGETALL reply as an object: node-redis gives a map, a plain RESP2 client a flat list. */
function hashReply(reply: unknown): Record<string, string> {
  const table: Record<string, string> = {};
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) table[String(reply[i])] = String(reply[i + 1]);
  } else if (reply !== null && typeof reply === "object") {
    for (const [field, value] of Object.entries(reply)) table[field] = String(value);
  }
  return table;
}
