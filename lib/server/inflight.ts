/**
 * Counts requests that have not finished (a streamed answer finishes when its last byte
 * is sent) and drives graceful shutdown: once draining starts, new requests are refused
 * and {@linkcode InflightTracker.whenIdle} resolves when the last one ends.
 *
 * @module
 */

/** The count of unfinished requests, and the draining switch. */
export class InflightTracker {
  #count = 0;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  /** Number of requests begun and not yet ended. */
  get count(): number {
    return this.#count;
  }

  /** Whether shutdown has begun. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Counts one request; returns the function that ends it (safe to call twice). */
  begin(): () => void {
    this.#count++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#count--;
      if (this.#count === 0) this.#wakeIdleWaiters();
    };
  }

  /** Starts refusing new requests. */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves once no request is in flight. */
  whenIdle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
