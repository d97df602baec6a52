// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock } from "./fakes/clock.ts";
import { Deadlines } from "../lib/deadlines.ts";
import { OllaError } from "../lib/errors.ts";
import { BodyBudget } from "../lib/proxy/body_budget.ts";
import { readBody } from "../lib/proxy/body_read.ts";
import { replaceModel, scanBody } from "../lib/proxy/body_scan.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("scanBody()", () => {
  test("finds top-level model, session_id and messages, skipping nested lookalikes", () => {
    const body = bytes(
      '{"messages":[{"role":"user","content":"{\\"model\\": \\"fake\\"}"}],"meta":{"model":"nested"},' +
        '"model":"Qwen/Qwen2.5-7B-Instruct","session_id":7}',
    );
    const fields = scanBody(body);
    assert.equal(fields.model, "Qwen/Qwen2.5-7B-Instruct");
    assert.equal(fields.sessionId, "7");
    assert.equal(
      text(body.subarray(...fields.conversationRange!)),
      '[{"role":"user","content":"{\\"model\\": \\"fake\\"}"}]',
    );
    assert.equal(text(body.subarray(...fields.modelRange!)), '"Qwen/Qwen2.5-7B-Instruct"');
  });

  test("decodes escapes in the model name", () => {
    assert.equal(scanBody(bytes('{"model": "a\\u002fb"}')).model, "a/b");
  });

  test("ignores session_id -1 (LMDeploy's default) and a non-string model", () => {
    const body = bytes('{"model": 5, "session_id": -1, "prompt": "x"}');
    const fields = scanBody(body);
    assert.equal(fields.model, undefined);
    assert.equal(fields.sessionId, undefined);
    assert.equal(
      text(body.subarray(...fields.conversationRange!)),
      '"x"',
      "prompt stands in for messages",
    );
  });

  test("yields nothing for malformed JSON or non-objects", () => {
    for (const bad of ['{"model": "a"', "[1,2]", "", '{"model" "a"}', '{"a":tru', "not json"]) {
      assert.deepEqual(scanBody(bytes(bad)), {}, bad);
    }
  });
});

describe("replaceModel()", () => {
  test("splices the new name in and keeps every other byte", () => {
    const body = bytes('{ "x": [1, {"model":"keep"}], "model" : "chat" ,"y":"\u2603"}');
    const fields = scanBody(body);
    assert.equal(
      text(replaceModel(body, fields.modelRange!, "org/real-model")),
      '{ "x": [1, {"model":"keep"}], "model" : "org/real-model" ,"y":"\u2603"}',
    );
  });
});

describe("readBody()", () => {
  const options = (maxBytes: number, budget = new BodyBudget(1 << 20)) => ({
    maxBytes,
    timeoutMs: 1_000,
    deadlines: new Deadlines(new FakeClock()),
    budget,
  });

  test("reads a body under the limit", async () => {
    const request = new Request("http://x/", { method: "POST", body: "hello" });
    assert.equal(text(await readBody(request, options(10))), "hello");
  });

  test("refuses a declared Content-Length over the limit before reading", async () => {
    const request = new Request("http://x/", {
      method: "POST",
      body: "x".repeat(20),
      headers: { "content-length": "20" },
    });
    await assert.rejects(readBody(request, options(10)), (e: OllaError) => e.status === 413);
  });

  test("refuses a chunked body the moment it passes the limit", async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(4));
      },
    });
    const request = new Request(
      "http://x/",
      { method: "POST", body: stream, duplex: "half" } as RequestInit,
    );
    await assert.rejects(readBody(request, options(10)), (e: OllaError) => e.status === 413);
    assert.ok(pulled <= 4, "stopped reading right after the limit");
  });

  test("refuses a body that trickles in slower than the read timeout", async () => {
    const clock = new FakeClock();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(1));
      },
    });
    const request = new Request(
      "http://x/",
      { method: "POST", body: stream, duplex: "half" } as RequestInit,
    );
    const reading = readBody(request, {
      maxBytes: 100,
      timeoutMs: 500,
      deadlines: new Deadlines(clock),
      budget: new BodyBudget(1 << 20),
    });
    const rejected = assert.rejects(
      reading,
      (e: OllaError) => e.status === 408 && /read_timeout/.test(e.message),
    );
    await clock.advance(500);
    await rejected;
  });

  test("takes each body's bytes from the shared budget and refuses what would pass it", async () => {
    const budget = new BodyBudget(10);
    const post = (body: string | ReadableStream<Uint8Array>) =>
      new Request("http://x/", { method: "POST", body, duplex: "half" } as RequestInit);
    const first = await readBody(post("x".repeat(8)), options(100, budget));
    assert.equal(budget.held, 8, "a declared body is taken before it is read");
    await assert.rejects(
      readBody(post("y".repeat(4)), options(100, budget)),
      (e: OllaError) =>
        e.status === 503 && e.retryAfterSeconds === 1 && /max_buffered_bytes/.test(e.message),
    );
    assert.equal(budget.held, 8, "a refused body takes nothing");
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(1));
        controller.enqueue(new Uint8Array(4));
        controller.close();
      },
    });
    await assert.rejects(
      readBody(post(chunked), options(100, budget)),
      (e: OllaError) => e.status === 503,
    );
    assert.equal(budget.held, 8, "a chunked body refused midway gives back what it took");
    budget.give(first.byteLength);
    const lone = await readBody(post("z".repeat(40)), options(100, budget));
    assert.equal(lone.byteLength, 40, "with nothing held, one body over the budget is admitted");
    assert.equal(budget.held, 40);
  });
});
