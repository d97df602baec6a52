/**
 * A Lua script run with one round trip: `EVAL` the first time after each (re)connection,
 * which also caches it in Redis, and `EVALSHA` with its SHA-1 after that. A Redis that
 * restarted (and so forgot the script) is a new link epoch, so the next call sends the
 * text again.
 *
 * @module
 */
import type { RedisLink } from "./redis_link.ts";

/** One script. */
export class RedisScript {
  readonly #link: RedisLink;
  readonly #source: string;
  #sha: string | undefined;
  #loadedEpoch = -1;

  constructor(link: RedisLink, source: string) {
    this.#link = link;
    this.#source = source;
    void crypto.subtle.digest("SHA-1", new TextEncoder().encode(source)).then((digest) => {
      this.#sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    });
  }

  /** The script's reply, or `undefined` when Redis cannot answer in time (see RedisLink). */
  async run<T>(operation: string, keys: readonly string[], args: readonly string[]) {
    const epoch = this.#link.epoch;
    const byHash = this.#sha !== undefined && this.#loadedEpoch === epoch;
    const reply = await this.#link.command<T>(operation, [
      byHash ? "EVALSHA" : "EVAL",
      byHash ? this.#sha as string : this.#source,
      String(keys.length),
      ...keys,
      ...args,
    ]);
    if (reply !== undefined) this.#loadedEpoch = epoch;
    return reply;
  }
}
