/**
 * A per-endpoint circuit breaker over proxied requests. It opens after
 * `failureThreshold` consecutive failures (connection errors, timeouts and 5xx answers;
 * unlike Olla, a 5xx is a failure), stays open for `cooldownMs`, then lets exactly one
 * trial request through (half-open): success closes it, failure opens it again.
 *
 * Pure state plus the current time passed in; no timers.
 *
 * @module
 */

/** Breaker states, as shown in status output and metrics. */
export type BreakerState = "closed" | "open" | "half_open";

/** Options for {@linkcode CircuitBreaker}. */
export interface BreakerOptions {
  /** @default {5} */
  failureThreshold?: number;
  /** @default {30_000} */
  cooldownMs?: number;
}

/** Circuit breaker for one endpoint. */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAt = 0;
  #trialInFlight = false;

  constructor(options: BreakerOptions = {}) {
    this.#threshold = options.failureThreshold ?? 5;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
  }

  /** The state at `now` (an open breaker whose cooldown has passed reads as half-open). */
  state(now: number): BreakerState {
    if (this.#state === "open" && now - this.#openedAt >= this.#cooldownMs) return "half_open";
    return this.#state;
  }

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until an open breaker allows its trial request (0 when it allows now). */
  remainingMs(now: number): number {
    return this.#state === "open" ? Math.max(0, this.#openedAt + this.#cooldownMs - now) : 0;
  }

  /** Whether a request may be sent now: closed, or half-open with no trial in flight. */
  allows(now: number): boolean {
    const state = this.state(now);
    return state === "closed" || (state === "half_open" && !this.#trialInFlight);
  }

  /** Records that a request is being sent; in half-open state it becomes the trial. */
  onSend(now: number): void {
    if (this.state(now) === "half_open") {
      this.#state = "half_open";
      this.#trialInFlight = true;
    }
  }

  recordSuccess(): void {
    this.#state = "closed";
    this.#failures = 0;
    this.#trialInFlight = false;
  }

  recordFailure(now: number): void {
    this.#failures++;
    const trialFailed = this.#state === "half_open" || this.state(now) === "half_open";
    if (trialFailed || this.#failures >= this.#threshold) {
      this.#state = "open";
      this.#openedAt = now;
    }
    this.#trialInFlight = false;
  }

  /** Ends a trial that neither succeeded nor failed (the client went away). */
  releaseTrial(): void {
    this.#trialInFlight = false;
  }

  /** Closes the breaker: the endpoint was re-admitted by a health probe after being down. */
  reset(): void {
    this.recordSuccess();
  }
}
