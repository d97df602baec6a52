/**
 * One request to a backend, bounded in time from the first byte sent to the last byte
 * read: the health probe, model discovery, engine metrics and the wake-up call all need
 * exactly this, on an injected `fetch` and clock so tests never wait. Redirects are never
 * followed: a redirect would carry the endpoint's credentials to another host and let it
 * decide the endpoint's health or models; the 3xx itself is the answer.
 *
 * @module
 */
import type { Clock } from "../clock.ts";

/** Options for {@linkcode fetchWithin}. */
export interface TimedFetchOptions {
  fetch: typeof fetch;
  clock: Clock;
  timeoutMs: number;
  /** The error a timeout rejects with; built only when the timer fires. */
  timeoutError: () => Error;
}

/**
 * Sends the request and reads its answer with `read`, all within `timeoutMs`.
 *
 * @throws the `timeoutError` when the time runs out, else whatever `fetch` or `read` threw.
 *
 * @example Usage
 * ```ts
 * const text = await fetchWithin(
 *   { fetch, clock: systemClock, timeoutMs: 2_000, timeoutError: () => new Error("slow") },
 *   "http://gpu-1:23333/health",
 *   {},
 *   (response) => response.text(),
 * );
 * ```
 */
export async function fetchWithin<T>(
  options: TimedFetchOptions,
  url: string,
  init: RequestInit,
  read: (response: Response) => Promise<T>,
): Promise<T> {
  const { clock, timeoutMs } = options;
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(options.timeoutError()), timeoutMs);
  try {
    return await read(
      await options.fetch(url, { ...init, redirect: "manual", signal: controller.signal }),
    );
  } catch (error) {
    throw controller.signal.aborted ? controller.signal.reason : error;
  } finally {
    clock.clearTimeout(timer);
  }
}
