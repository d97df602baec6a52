/**
 * Admission control for one endpoint (`max_concurrent_requests`): at most that many
 * requests are sent at once; more wait in a bounded FIFO queue for at most
 * `queue_timeout`. A full queue answers 429 and an expired wait 503, both with a
 * `Retry-After` estimated from the queue length and recent request durations, instead
 * of piling work onto the GPU server.
 *
 * A slot is held until the answer has been sent completely (a streamed answer keeps the
 * GPU busy until its last token).
 *
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import { OllaError } from "../errors.ts";

/** Options for {@linkcode Admission}. */
export interface AdmissionOptions {
  /** 0 means unlimited. */
  maxConcurrent: number;
  queueSize: number;
  queueTimeoutMs: number;
  clock: Clock;
  /** For error messages. */
  endpoint: string;
}

interface Waiter {
  grant: (release: () => void) => void;
  timer: TimerId;
}

/** The concurrency gate of one endpoint. */
export class Admission {
  readonly #options: AdmissionOptions;
  readonly #queue: Waiter[] = [];
  #active = 0;
  /** Exponentially weighted mean time a slot is held, ms. */
  #meanHoldMs = 1_000;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Whether a request would be sent at once. */
  get hasFreeSlot(): boolean {
    return this.#options.maxConcurrent === 0 || this.#active < this.#options.maxConcurrent;
  }

  /** Seconds after which a new request could expect a slot. */
  retryAfterSeconds(): number {
    const { maxConcurrent } = this.#options;
    if (maxConcurrent === 0) return 1;
    return Math.max(
      1,
      Math.ceil((this.#meanHoldMs * (this.#queue.length + 1)) / maxConcurrent / 1000),
    );
  }

  /**
   * Waits for a slot and returns the function that frees it (call it once).
   *
   * @throws {OllaError} 429 when the queue is full, 503 when the wait times out.
   * @throws the signal's reason when the client goes away while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const { maxConcurrent, queueSize, queueTimeoutMs, clock, endpoint } = this.#options;
    if (maxConcurrent === 0) return Promise.resolve(() => {});
    if (this.#active < maxConcurrent) return Promise.resolve(this.#grant());
    if (this.#queue.length >= queueSize) {
      return Promise.reject(
        new OllaError(
          429,
          `Endpoint "${endpoint}" is at its limit of ${maxConcurrent} requests and its queue is full`,
          {
            code: "queue_full",
            fault: "policy",
            retryAfterSeconds: this.retryAfterSeconds(),
          },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: clock.setTimeout(() => {
          this.#remove(waiter);
          reject(
            new OllaError(
              503,
              `No free slot on endpoint "${endpoint}" within ${queueTimeoutMs}ms (queue_timeout)`,
              {
                code: "queue_timeout",
                fault: "policy",
                retryAfterSeconds: this.retryAfterSeconds(),
              },
            ),
          );
        }, queueTimeoutMs),
      };
      signal?.addEventListener("abort", () => {
        if (this.#remove(waiter)) {
          clock.clearTimeout(waiter.timer);
          reject(signal.reason);
        }
      }, { once: true });
      this.#queue.push(waiter);
    });
  }

  #grant(): () => void {
    this.#active++;
    const started = this.#options.clock.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#meanHoldMs = this.#meanHoldMs * 0.8 + (this.#options.clock.now() - started) * 0.2;
      this.#active--;
      const next = this.#queue.shift();
      if (next) {
        this.#options.clock.clearTimeout(next.timer);
        next.grant(this.#grant());
      }
    };
  }

  #remove(waiter: Waiter): boolean {
    const index = this.#queue.indexOf(waiter);
    if (index === -1) return false;
    this.#queue.splice(index, 1);
    return true;
  }
}
