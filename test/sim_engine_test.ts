/**
 * The simulated engine the fleet benchmark runs (bench/sim_engine.ts) behaves as the
 * benchmark assumes: a batch limit with a queue its /metrics reports, and a prefix cache
 * that makes a repeated prompt's first token come sooner.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readText } from "./_harness.ts";
import { startSimEngine } from "../bench/sim_engine.ts";
import { readSeries } from "../lib/health/prometheus_text.ts";

const body = (content: string, maxTokens = 4) =>
  JSON.stringify({
    model: "m",
    stream: true,
    max_tokens: maxTokens,
    messages: [{ role: "user", content }],
  });

async function firstTokenMs(url: string, content: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: body(content),
  });
  assert.ok(response.body);
  const reader = response.body.getReader();
  await reader.read();
  const at = performance.now() - started;
  while (!(await reader.read()).done) { /* drain */ }
  return at;
}

describe("bench/sim_engine.ts", () => {
  test("runs at most `batch` requests; the rest wait, and /metrics says so", async () => {
    const engine = await startSimEngine({
      model: "m",
      batch: 2,
      decodeMsPerToken: 50,
      metricsEveryMs: 20,
    });
    try {
      const streams = Array.from(
        { length: 5 },
        () => fetch(`${engine.url}/v1/chat/completions`, { method: "POST", body: body("hi", 6) }),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const text = await (await fetch(`${engine.url}/metrics`)).text();
      const series = readSeries(
        text,
        new Set(["lmdeploy:num_requests_running", "lmdeploy:num_requests_waiting"]),
      );
      assert.equal(series.get("lmdeploy:num_requests_running"), 2);
      assert.equal(series.get("lmdeploy:num_requests_waiting"), 3);
      await Promise.all((await Promise.all(streams)).map((response) => readText(response)));
      assert.equal(engine.completed, 5);
    } finally {
      await engine.close();
    }
  });

  test("a cached prefix makes the first token come sooner", async () => {
    const engine = await startSimEngine({
      model: "m",
      prefillMsPerToken: 0.5,
      decodeMsPerToken: 5,
    });
    try {
      const prompt = "x".repeat(4000);
      const cold = await firstTokenMs(engine.url, prompt);
      const warm = await firstTokenMs(engine.url, prompt);
      assert.ok(warm < cold / 2, `cold ${cold} ms, warm ${warm} ms`);
      assert.ok(engine.cachedTokens > 0);
    } finally {
      await engine.close();
    }
  });
});
