/**
 * Session affinity. LMDeploy's interactive `session_id` always pins a request to the
 * endpoint holding that session; optional sticky sessions (`proxy.sticky_sessions`) also
 * keep a conversation on one endpoint so its prefix cache is reused, keyed by the
 * `X-Olla-Session-ID` header, a hash of the conversation's first bytes, a hash of the
 * client's Authorization header, or its address (the first that applies).
 *
 * The pin table is bounded (least recently used entries go first) and pins expire after
 * `idle_ttl_seconds` without use.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { hash53 } from "../hash.ts";

/** Where an affinity key came from, reported in `X-Olla-Sticky-Key-Source`. */
export type KeySource = "session_id" | "session_header" | "prefix_hash" | "auth_header" | "ip";

/** An affinity key for one request. */
export interface AffinityKey {
  readonly key: string;
  readonly source: KeySource;
}

/** What {@linkcode affinityKey} reads from a request. */
export interface AffinityInput {
  /** Route scope, so the same session id on two providers does not collide. */
  scope: string;
  model: string | undefined;
  /** LMDeploy `session_id` from the body. */
  sessionId: string | undefined;
  sessionHeader: string | null;
  /** The conversation bytes (`messages`, else `prompt`). */
  conversation: Uint8Array | undefined;
  authorization: string | null;
  clientIp: string;
  sticky: { enabled: boolean; key_sources: readonly KeySource[]; prefix_hash_bytes: number };
}

/**
 * Whether a request can have an affinity key at all: it carries a `session_id`, or sticky
 * sessions are on. When not, a caller need not gather {@linkcode AffinityInput}.
 */
export function seeksAffinity(
  sessionId: string | undefined,
  sticky: Pick<AffinityInput["sticky"], "enabled">,
): boolean {
  return sessionId !== undefined || sticky.enabled;
}

/**
 * The affinity key for a request: its LMDeploy `session_id` whenever present, else, with
 * sticky sessions on, the first configured key source that applies.
 */
export function affinityKey(input: AffinityInput): AffinityKey | undefined {
  if (!seeksAffinity(input.sessionId, input.sticky)) return undefined;
  const base = `${input.scope}|${input.model ?? ""}|`;
  if (input.sessionId !== undefined) {
    return { key: `${base}session_id:${input.sessionId}`, source: "session_id" };
  }
  for (const source of input.sticky.key_sources) {
    if (source === "session_header" && input.sessionHeader) {
      return { key: `${base}h:${hash53(input.sessionHeader)}`, source };
    }
    if (source === "prefix_hash" && input.conversation && input.conversation.length > 0) {
      const prefix = input.conversation.subarray(0, input.sticky.prefix_hash_bytes);
      return { key: `${base}p:${hash53(prefix)}`, source };
    }
    if (source === "auth_header" && input.authorization) {
      return { key: `${base}a:${hash53(input.authorization)}`, source };
    }
    if (source === "ip" && input.clientIp) return { key: `${base}ip:${input.clientIp}`, source };
  }
  return undefined;
}

/**
 * Where pins are looked up and kept: this instance's {@linkcode StickyTable}, or the
 * cluster's, which may ask Redis on a miss (cluster/shared_pins.ts).
 */
export interface PinStore {
  get(key: string): string | undefined | Promise<string | undefined>;
  /** Pins `key`; a promise when the pin is being stored elsewhere, settled once it is. */
  set(key: string, endpoint: string): void | Promise<void>;
}

/** Options for {@linkcode StickyTable}. */
export interface StickyTableOptions {
  maxEntries: number;
  idleTtlMs: number;
  clock: Clock;
}

/** Lookup and churn counters of a {@linkcode StickyTable}, as `/internal/stats/sticky` shows them. */
export interface StickyCounters {
  /** Keys pinned for the first time (a re-pin of a live key is not an insertion). */
  insertions: number;
  /** Lookups that found a live pin. */
  hits: number;
  /** Lookups that found nothing, or a pin that had expired. */
  misses: number;
  /** Pins dropped for room, for idleness, or because their endpoint left rotation. */
  evictions: number;
}

/** A bounded, expiring key -> endpoint name table. */
export class StickyTable implements PinStore {
  readonly #entries = new Map<string, { endpoint: string; lastUsed: number }>();
  readonly #options: StickyTableOptions;
  readonly #counters: StickyCounters = { insertions: 0, hits: 0, misses: 0, evictions: 0 };

  constructor(options: StickyTableOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A copy of the counters since start. */
  get counters(): StickyCounters {
    return { ...this.#counters };
  }

  /** The pinned endpoint, refreshing the pin's lifetime; `undefined` when absent or expired. */
  get(key: string): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#counters.misses++;
      return undefined;
    }
    const now = this.#options.clock.now();
    this.#entries.delete(key);
    if (now - entry.lastUsed > this.#options.idleTtlMs) {
      this.#counters.misses++;
      this.#counters.evictions++;
      return undefined;
    }
    this.#counters.hits++;
    entry.lastUsed = now;
    this.#entries.set(key, entry);
    return entry.endpoint;
  }

  /** The live pin, without counting a lookup or refreshing it. */
  peek(key: string): string | undefined {
    const entry = this.#entries.get(key);
    return entry && this.#options.clock.now() - entry.lastUsed <= this.#options.idleTtlMs
      ? entry.endpoint
      : undefined;
  }

  set(key: string, endpoint: string): void {
    if (!this.#entries.delete(key)) this.#counters.insertions++;
    this.#entries.set(key, { endpoint, lastUsed: this.#options.clock.now() });
    while (this.#entries.size > this.#options.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as string);
      this.#counters.evictions++;
    }
  }

  /** Drops every pin to an endpoint (it stopped being routable). */
  unpinEndpoint(endpoint: string): void {
    for (const [key, entry] of this.#entries) {
      if (entry.endpoint === endpoint) {
        this.#entries.delete(key);
        this.#counters.evictions++;
      }
    }
  }
}
