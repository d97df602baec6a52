/**
 * The answers being streamed right now, so shutdown can end them properly: when
 * `server.shutdown_timeout` runs out with streams still open, each SSE answer gets a
 * final error event (and `[DONE]`) before its socket closes, instead of a silent cut the
 * client would take for a complete answer.
 *
 * @module
 */

/** Streams in flight, each with the function that ends it. */
export class LiveStreams {
  readonly #stops = new Set<() => void>();

  /** Number of streams in flight. */
  get size(): number {
    return this.#stops.size;
  }

  /** Tracks one stream; returns the function that forgets it (when it has ended). */
  track(stop: () => void): () => void {
    this.#stops.add(stop);
    return () => this.#stops.delete(stop);
  }

  /** Ends every stream in flight; returns how many there were. */
  stopAll(): number {
    const stops = [...this.#stops];
    this.#stops.clear();
    for (const stop of stops) stop();
    return stops.length;
  }
}
