import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsonUsageObserver, ndjsonUsageObserver } from "../lib/proxy/usage.ts";

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

describe("native answers: Ollama and llama.cpp", () => {
  test("a whole Ollama answer: prompt_eval_count, eval_count and done_reason", () => {
    const summary = usageOf({
      model: "llama3.2:3b",
      message: { role: "assistant", content: "Hi" },
      done_reason: "length",
      done: true,
      prompt_eval_count: 26,
      eval_count: 298,
    });
    assert.equal(summary.promptTokens, 26);
    assert.equal(summary.completionTokens, 298);
    assert.equal(summary.finishReason, "length");
  });

  test("a whole llama.cpp /completion answer: tokens_evaluated and tokens_predicted", () => {
    const summary = usageOf({
      content: "Hi",
      stop: true,
      tokens_predicted: 3,
      tokens_evaluated: 9,
    });
    assert.equal(summary.promptTokens, 9);
    assert.equal(summary.completionTokens, 3);
  });

  const lines = (path: "chat" | "generate") => {
    const line = (content: string, done: boolean) =>
      JSON.stringify({
        model: "m",
        ...(path === "chat" ? { message: { role: "assistant", content } } : { response: content }),
        done,
        ...(done ? { done_reason: "stop", prompt_eval_count: 7, eval_count: 3 } : {}),
      });
    // Ollama's first chat line may be empty; "\u00e9" and the emoji straddle chunk cuts below.
    return [
      line("", false),
      line("Bonjour \u00e9", false),
      line(" \u{1f44b}", false),
      line("", true),
    ]
      .join("\n") + "\n";
  };

  for (const path of ["chat", "generate"] as const) {
    test(`an NDJSON /api/${path} stream, however it is cut: first token, counts, reason`, () => {
      const bytes = new TextEncoder().encode(lines(path));
      const firstContentAt = bytes.indexOf(0x0a) + 1;
      for (let cut = 1; cut < bytes.length; cut++) {
        const observer = ndjsonUsageObserver();
        observer.push(bytes.subarray(0, cut), cut);
        observer.push(bytes.subarray(cut), bytes.length);
        const summary = observer.finish();
        assert.deepEqual(summary, {
          estimated: false,
          contentEvents: 2,
          errorEvent: false,
          // The content line ends in the first chunk only when the cut lies past it.
          firstTokenAt: cut > bytes.indexOf(0x0a, firstContentAt) ? cut : bytes.length,
          promptTokens: 7,
          completionTokens: 3,
          finishReason: "stop",
        }, `cut at ${cut}`);
      }
    });
  }

  test("an Ollama error line is noted", () => {
    const observer = ndjsonUsageObserver();
    observer.push(new TextEncoder().encode('{"error":"model requires more memory"}\n'), 1);
    assert.equal(observer.finish().errorEvent, true);
  });
});
