/**
 * The other instances: every half second each instance writes what it sees (its
 * endpoints' status and requests in flight) into one Redis hash, `<prefix>instances`,
 * and reads everyone's back with the same script. Entries carry their expiry on
 * Redis's clock (three intervals), and the script drops expired ones, so an instance
 * that died leaves the table (and stops counting as load) within 1.5 s.
 *
 * The load-aware balancers add the others' requests in flight to this instance's own
 * ({@linkcode Peers.inflightAt}), matched by endpoint URL; `/internal/cluster` shows the
 * table. Health stays each instance's own: the others' views are shown, never used.
 *
 * @module
 */
import type { RedisLink } from "./redis_link.ts";
import { RedisScript } from "./redis_script.ts";
import type { Clock, TimerId } from "../clock.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** One endpoint as an instance sees it. */
export interface PeerEndpoint {
  name: string;
  url: string;
  status: string;
  inflight: number;
}

/** One instance's entry. */
export interface PeerRecord {
  /** `cluster.instance_id`: a name for people; two instances may share it by mistake. */
  id: string;
  /** The process's token (cluster.ts): what tells instances apart. */
  self: string;
  version: string;
  runtime: string;
  started_at: string;
  last_seen: string;
  endpoints: PeerEndpoint[];
}

/** Options of {@linkcode Peers}. */
export interface PeersOptions {
  link: RedisLink;
  keyPrefix: string;
  /** This process's token among the instances (cluster.ts): its field in the table. */
  self: string;
  clock: Clock;
  /** This instance's entry minus its token and `last_seen` (read at each heartbeat). */
  describe(): Omit<PeerRecord, "last_seen" | "self">;
  /** @default {500} */
  intervalMs?: number;
}

/** KEYS[1]: the hash. ARGV: own token, own JSON, lifetime ms. Replies every live entry's JSON. */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. ' ' .. ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local space = string.find(all[i + 1], ' ', 1, true)
  local expires = space and tonumber(string.sub(all[i + 1], 1, space - 1))
  if expires == nil or expires < now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = string.sub(all[i + 1], space + 1)
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 20)
return live
`;

/** The instances' table, as last read. */
export class Peers {
  readonly #options: PeersOptions;
  readonly #script: RedisScript;
  #others: PeerRecord[] = [];
  /** URL -> the other instances' requests in flight there. */
  #inflight = new Map<string, number>();
  #readAt = -Infinity;
  #timer: TimerId | undefined;
  #stopped = false;

  constructor(options: PeersOptions) {
    this.#options = options;
    this.#script = new RedisScript(options.link, HEARTBEAT_SCRIPT);
  }

  get #intervalMs(): number {
    return this.#options.intervalMs ?? 500;
  }

  get #key(): string {
    return `${this.#options.keyPrefix}instances`;
  }

  /** Writes the first heartbeat and keeps beating. */
  async start(): Promise<void> {
    await this.beat();
    this.#schedule();
  }

  /** Stops beating and takes this instance out of the table. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    await this.#options.link.command("peers_leave", ["HDEL", this.#key, this.#options.self]);
  }

  /** One heartbeat: write this instance's entry, read everyone's. */
  async beat(): Promise<void> {
    const { clock, self } = this.#options;
    const now = clock.now();
    const own: PeerRecord = {
      ...this.#options.describe(),
      self,
      last_seen: new Date(now).toISOString(),
    };
    const reply = await this.#script.run<string[]>("peers", [this.#key], [
      self,
      JSON.stringify(own),
      String(this.#intervalMs * 3),
    ]);
    if (!Array.isArray(reply)) return;
    const others: PeerRecord[] = [];
    const inflight = new Map<string, number>();
    for (const text of reply) {
      let record: PeerRecord;
      try {
        record = JSON.parse(text);
      } catch {
        continue;
      }
      if (record.self === self || !Array.isArray(record.endpoints)) continue;
      others.push(record);
      for (const endpoint of record.endpoints) {
        inflight.set(endpoint.url, (inflight.get(endpoint.url) ?? 0) + (endpoint.inflight || 0));
      }
    }
    this.#others = others.sort((a, b) => a.id.localeCompare(b.id));
    this.#inflight = inflight;
    this.#readAt = now;
  }

  /** The other instances, as last read (empty once the reading is three intervals old). */
  get others(): readonly PeerRecord[] {
    return this.#fresh() ? this.#others : [];
  }

  /** The other instances' requests in flight at this endpoint (0 when the table is stale). */
  inflightAt(endpoint: EndpointView): number {
    return this.#fresh() ? this.#inflight.get(endpoint.config.url) ?? 0 : 0;
  }

  #fresh(): boolean {
    return this.#options.clock.now() - this.#readAt <= this.#intervalMs * 3;
  }

  #schedule(): void {
    this.#timer = this.#options.clock.setTimeout(async () => {
      if (this.#stopped) return;
      await this.beat();
      if (!this.#stopped) this.#schedule();
    }, this.#intervalMs);
  }
}
