import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fetchModels } from "../lib/health/discovery.ts";
import { boundedText, MAX_ANSWER_BYTES } from "../lib/upstream/bounded_text.ts";

const encoder = new TextEncoder();

/** A body of `chunks`, without a declared length; `cancelled` says whether it was cut off. */
function streamed(chunks: string[], headers: Record<string, string> = {}) {
  const state = { cancelled: false, pulled: 0 };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[state.pulled++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(encoder.encode(chunk));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { response: new Response(body, { headers }), state };
}

describe("boundedText()", () => {
  test("reads a body up to the limit whole, characters split across chunks included", async () => {
    const { response } = streamed(["ab", "\u00e9"[0], "cd"]);
    assert.equal(await boundedText(response, "x", { maxBytes: 8 }), "ab\u00e9cd");
    const bytes = encoder.encode("h\u00e9llo");
    const split = new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(bytes.subarray(0, 2));
          controller.enqueue(bytes.subarray(2));
          controller.close();
        },
      }),
    );
    assert.equal(await boundedText(split, "x"), "h\u00e9llo");
  });

  test("refuses a longer body, declared or not, and stops reading it", async () => {
    const declared = streamed(["x"], { "content-length": String(MAX_ANSWER_BYTES + 1) });
    await assert.rejects(boundedText(declared.response, "the list"), /the list is larger than/);
    assert.equal(declared.state.pulled <= 1, true, "not read");
    const endless = streamed(Array.from({ length: 100 }, () => "y".repeat(1_000)));
    await assert.rejects(
      boundedText(endless.response, "the list", { maxBytes: 10_000 }),
      /the list is larger than 10000 bytes/,
    );
    assert.ok(endless.state.cancelled, "the rest was cancelled");
    assert.ok(endless.state.pulled < 20, `${endless.state.pulled} chunks read`);
  });

  test("with truncate, keeps the start of a longer body", async () => {
    const { response, state } = streamed(["abc", "def", "ghi"]);
    assert.equal(await boundedText(response, "x", { maxBytes: 5, truncate: true }), "abcde");
    assert.ok(state.cancelled);
  });
});

describe("fetchModels() and an endless model list", () => {
  test("fails with the limit instead of holding it", async () => {
    const clock = new FakeClock();
    const registry = registryOf([{ name: "a", url: "http://a:23333" }], clock);
    const chunk = "x".repeat(1024 * 1024);
    let served = 0;
    const fetch = (() => {
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          served++;
          controller.enqueue(encoder.encode(chunk));
        },
      });
      return Promise.resolve(
        new Response(body, { headers: { "content-type": "application/json" } }),
      );
    }) as typeof globalThis.fetch;
    const endpoint = registry.get("a");
    assert.ok(endpoint);
    await assert.rejects(
      fetchModels(endpoint, { fetch, clock, timeoutMs: 60_000 }),
      /the model list is larger than 16777216 bytes/,
    );
    assert.ok(served <= 20, `${served} MiB read`);
  });
});
