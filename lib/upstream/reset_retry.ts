/**
 * The `fetch` olla-ts's own requests to backends use (probes, model discovery, engine
 * metrics, wake-ups, node checks, endpoint actions): a request whose connection is reset
 * before an answer arrives is sent once more, on a new connection. Such a reset is nearly
 * always a pooled keep-alive connection the backend closed while it sat idle (LMDeploy's
 * uvicorn closes them after 5 s), and the pool, which proxied requests share, may hold
 * several: a retry that took another one would fail the same way and report a live
 * endpoint down.
 *
 * Proxied requests do not go through this: the proxy decides its own retries
 * (attempt_failures.ts) and reports each failure to the registry.
 *
 * @module
 */
import { networkFailureKind } from "./fetch_errors.ts";

/**
 * Wraps `fetch` so that a reset is retried once with `freshConnection` (the runtime's
 * options for an unpooled connection). Only bodies that can be sent twice may pass
 * through it (none, a string, bytes), as every request it serves has.
 */
export function retryingResetOnce(
  fetch: typeof globalThis.fetch,
  freshConnection: RequestInit,
): typeof globalThis.fetch {
  return async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (error) {
      if (
        init?.signal?.aborted || !(error instanceof TypeError) ||
        networkFailureKind(error) !== "reset"
      ) {
        throw error;
      }
      return await fetch(input, { ...init, ...freshConnection });
    }
  };
}
