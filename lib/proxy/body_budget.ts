/**
 * The bytes all in-flight request bodies may hold together
 * (`server.request_limits.max_buffered_bytes`). Every proxied body is read whole into
 * memory (failover replays it), so without a shared cap a few concurrent large uploads
 * can exhaust memory well inside `max_body_size` each. A body that would pass the cap is
 * refused with a 503 and `Retry-After` before it is read; its bytes are returned when
 * the request no longer needs them (an answer's head arrived, or it failed).
 *
 * One body is always admitted when nothing else is held, so a `max_buffered_bytes`
 * below `max_body_size` never makes a lone large body impossible.
 *
 * @module
 */
import { OllaError } from "../errors.ts";

/** The shared allowance of buffered request-body bytes. */
export class BodyBudget {
  #held = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes held now by in-flight request bodies. */
  get held(): number {
    return this.#held;
  }

  /**
   * Takes `bytes` from the allowance.
   *
   * @throws {OllaError} 503 with `Retry-After` when they would pass the limit.
   */
  take(bytes: number): void {
    if (this.#held > 0 && this.#held + bytes > this.limitBytes) {
      throw new OllaError(
        503,
        `olla-ts is holding ${this.#held} bytes of request bodies; ${bytes} more would pass ` +
          `server.request_limits.max_buffered_bytes (${this.limitBytes}); retry shortly`,
        {
          code: "request_bodies_over_budget",
          fault: "proxy",
          retryAfterSeconds: 1,
          // The body was not read: the connection cannot carry another request.
          headers: { connection: "close" },
        },
      );
    }
    this.#held += bytes;
  }

  /** Returns bytes taken with {@linkcode take}. */
  give(bytes: number): void {
    this.#held -= bytes;
  }
}
