import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsonUsageObserver } from "../lib/proxy/usage.ts";

function usageOf(answer: unknown, chunkSize = Infinity) {
  const bytes = new TextEncoder().encode(JSON.stringify(answer));
  const observer = jsonUsageObserver();
  for (let i = 0; i < bytes.length; i += chunkSize) {
    observer.push(bytes.subarray(i, Math.min(bytes.length, i + chunkSize)), 1);
  }
  return observer.finish();
}

describe("jsonUsageObserver()", () => {
  test("reads usage and finish_reason from the end, whatever the content holds", () => {
    const summary = usageOf({
      id: "chatcmpl-1",
      choices: [{
        message: { content: '{"usage": {"prompt_tokens": 999}} } {' },
        finish_reason: "length",
      }],
      usage: {
        prompt_tokens: 12,
        completion_tokens: 3,
        prompt_tokens_details: { cached_tokens: 8 },
      },
    });
    assert.equal(summary.promptTokens, 12);
    assert.equal(summary.completionTokens, 3);
    assert.equal(summary.finishReason, "length");
    assert.equal(summary.estimated, false);
  });

  test("finds usage after a long answer, in many chunks", () => {
    const summary = usageOf({
      choices: [{ message: { content: "x".repeat(50_000) }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 5000 },
    }, 1000);
    assert.equal(summary.completionTokens, 5000);
  });

  test("falls back to the whole answer when its end holds no usage", () => {
    const summary = usageOf({
      usage: { prompt_tokens: 7, completion_tokens: 2 },
      choices: [{ message: { content: "y".repeat(10_000) }, finish_reason: "stop" }],
    });
    assert.equal(summary.promptTokens, 7);
    assert.equal(summary.finishReason, "stop");
  });

  test("reads LMDeploy /generate meta_info", () => {
    const summary = usageOf({
      text: "hi",
      meta_info: { prompt_tokens: 4, completion_tokens: 2, finish_reason: { type: "stop" } },
    });
    assert.equal(summary.promptTokens, 4);
    assert.equal(summary.completionTokens, 2);
    assert.equal(summary.finishReason, "stop");
  });

  test("an answer that is not JSON yields no usage", () => {
    const observer = jsonUsageObserver();
    observer.push(new TextEncoder().encode("not json {"), 1);
    assert.equal(observer.finish().promptTokens, undefined);
  });
});
