import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { retryingResetOnce } from "../lib/upstream/reset_retry.ts";

const FRESH = { keepalive: false } as const;

/** How Deno reports a pooled connection the server closed. */
function reset(): TypeError {
  return new TypeError("fetch failed", {
    cause: new Error("connection closed before message completed"),
  });
}

/** A fetch that fails with `failures` in turn, then answers 200; it records each init. */
function scripted(...failures: unknown[]) {
  const inits: (RequestInit | undefined)[] = [];
  const fetch = (_input: RequestInfo | URL, init?: RequestInit) => {
    inits.push(init);
    const failure = failures.shift();
    return failure === undefined ? Promise.resolve(new Response("ok")) : Promise.reject(failure);
  };
  return { fetch: fetch as typeof globalThis.fetch, inits };
}

describe("retryingResetOnce()", () => {
  test("sends a reset request once more, on a new connection, with the same options", async () => {
    const { fetch, inits } = scripted(reset());
    const response = await retryingResetOnce(fetch, FRESH)("http://gpu-1/health", {
      headers: { authorization: "Bearer k" },
    });
    assert.equal(await response.text(), "ok");
    assert.equal(inits.length, 2);
    assert.equal(inits[0]?.keepalive, undefined, "the first try uses the pool");
    assert.deepEqual(inits[1], { headers: { authorization: "Bearer k" }, keepalive: false });
  });

  test("a second reset is the answer: no further tries", async () => {
    const { fetch, inits } = scripted(reset(), reset());
    await assert.rejects(retryingResetOnce(fetch, FRESH)("http://gpu-1/health"), /fetch failed/);
    assert.equal(inits.length, 2);
  });

  test("other failures and aborted requests are not retried", async () => {
    const refused = new TypeError("fetch failed", {
      cause: new Error("tcp connect error: Connection refused (os error 111)"),
    });
    for (
      const [failure, init] of [
        [refused, undefined],
        [new Error("connection reset"), undefined],
        [reset(), { signal: AbortSignal.abort() }],
      ] as const
    ) {
      const { fetch, inits } = scripted(failure);
      await assert.rejects(retryingResetOnce(fetch, FRESH)("http://gpu-1/health", init));
      assert.equal(inits.length, 1, String(failure));
    }
  });
});
