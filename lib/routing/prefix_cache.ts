/**
 * What each endpoint has recently served, as prefix trees per model: a prompt is cut
 * into blocks and each block's hash chains the ones before it (as vLLM's and LMDeploy's
 * prefix caches hash KV blocks), so a node of the tree is one hash and a path from the
 * root is a prefix. Looking up a prompt walks its chain and finds, per endpoint, the
 * longest prefix that endpoint served.
 *
 * Memory is bounded (`maxBytes`, counted per node): the least recently used nodes go
 * first, as an engine's cache evicts.
 *
 * @module
 */
const BLOCK_BYTES = 64;
/** Bookkeeping per node: the map entry, its key and the endpoint set. */
const NODE_BYTES = 96;

/** The chained block hashes of a prompt (one per full block), in order. */
export function blockHashes(prompt: Uint8Array, model: string): string[] {
  const hashes: string[] = [];
  let hash = 0x811c9dc5;
  for (let i = 0; i < model.length; i++) hash = Math.imul(hash ^ model.charCodeAt(i), 0x01000193);
  for (let start = 0; start + BLOCK_BYTES <= prompt.length; start += BLOCK_BYTES) {
    for (let i = start; i < start + BLOCK_BYTES; i++) {
      hash = Math.imul(hash ^ prompt[i], 0x01000193);
    }
    // A second, independent mix keeps chains of different prompts from colliding.
    hashes.push(`${(hash >>> 0).toString(36)}.${start / BLOCK_BYTES}`);
  }
  return hashes;
}

/** The longest cached prefix per endpoint, in bytes. */
export type PrefixMatches = Map<string, number>;

/** The trees; one owner, the cache-aware balancer. */
export class PrefixCache {
  /** hash -> endpoints that served a prompt through this node; Map order is recency. */
  readonly #nodes = new Map<string, Set<string>>();
  readonly #maxNodes: number;

  constructor(maxBytes: number) {
    this.#maxNodes = Math.max(1, Math.floor(maxBytes / NODE_BYTES));
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** For each endpoint, how many leading bytes of the prompt it has served. */
  match(hashes: readonly string[]): PrefixMatches {
    const matches: PrefixMatches = new Map();
    // An endpoint's prefix goes on only while it is in every node so far.
    let alive: Set<string> | undefined;
    for (let i = 0; i < hashes.length; i++) {
      const endpoints = this.#nodes.get(hashes[i]);
      if (!endpoints) break;
      const still = new Set(
        [...endpoints].filter((name) => alive === undefined || alive.has(name)),
      );
      if (still.size === 0) break;
      for (const endpoint of still) matches.set(endpoint, (i + 1) * BLOCK_BYTES);
      alive = still;
    }
    return matches;
  }

  /** Records that `endpoint` served this prompt (refreshing its nodes' recency). */
  insert(hashes: readonly string[], endpoint: string): void {
    for (const hash of hashes) {
      let endpoints = this.#nodes.get(hash);
      if (endpoints) this.#nodes.delete(hash);
      else endpoints = new Set();
      endpoints.add(endpoint);
      this.#nodes.set(hash, endpoints);
    }
    while (this.#nodes.size > this.#maxNodes) {
      this.#nodes.delete(this.#nodes.keys().next().value as string);
    }
  }

  /** Forgets an endpoint (removed, or no longer serving). */
  forget(endpoint: string): void {
    for (const [hash, endpoints] of this.#nodes) {
      endpoints.delete(endpoint);
      if (endpoints.size === 0) this.#nodes.delete(hash);
    }
  }
}
