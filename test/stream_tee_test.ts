// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock, settle } from "./fakes/clock.ts";
import { Deadlines } from "../lib/deadlines.ts";
import { LiveStreams } from "../lib/proxy/live_streams.ts";
import {
  FIRST_READ_BYTES,
  LARGEST_READ_BYTES,
  type StreamOutcome,
  teeBody,
} from "../lib/proxy/stream_stage.ts";
import { MAX_EVENT_CHARS, sseUsageObserver } from "../lib/proxy/usage.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** An upstream body the test feeds by hand. */
function upstream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled: unknown = undefined;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: (reason) => void (cancelled = reason ?? "cancelled"),
  });
  return {
    body,
    push: (text: string) => controller.enqueue(encode(text)),
    end: () => controller.close(),
    fail: (error: Error) => controller.error(error),
    get cancelled() {
      return cancelled;
    },
  };
}

function tee(
  source: ReadableStream<Uint8Array>,
  options: {
    sse?: boolean;
    idleTimeoutMs?: number;
    deadline?: number;
    clock?: FakeClock;
    live?: LiveStreams;
  } = {},
) {
  const clock = options.clock ?? new FakeClock();
  const ends: [StreamOutcome, number][] = [];
  const aborts: unknown[] = [];
  const seen: string[] = [];
  const stream = teeBody(source, {
    clock,
    deadlines: new Deadlines(clock),
    idleTimeoutMs: options.idleTimeoutMs ?? 0,
    deadline: options.deadline,
    sse: options.sse ?? true,
    abortUpstream: (reason) => aborts.push(reason),
    live: options.live,
    onChunk: (chunk) => seen.push(decode(chunk)),
    onEnd: (outcome, bytes) => ends.push([outcome, bytes]),
  });
  return { stream, reader: stream.getReader(), ends, aborts, seen, clock };
}

describe("teeBody()", () => {
  test("reads a byte stream (Deno's fetch body) into its own buffer and forwards every byte", async () => {
    // Frames of every size up to three times the read buffer, each enqueued separately.
    const sizes = [1, 200, 16_384, 16_385, 40_000, 7];
    const frames = sizes.map((size, i) => new Uint8Array(size).fill(97 + i));
    let next = 0;
    const byteSource = new ReadableStream({
      type: "bytes",
      pull(controller) {
        if (next < frames.length) {
          // Like Deno's default reader: each chunk a view into its own 64 KiB allocation.
          const frame = frames[next++];
          const backing = new Uint8Array(64 * 1024);
          backing.set(frame);
          return controller.enqueue(backing.subarray(0, frame.byteLength));
        }
        controller.close();
        // A byte source ends a pending BYOB read this way (Deno's fetch body does too).
        controller.byobRequest?.respond(0);
      },
    });
    const { reader, ends } = tee(byteSource, { sse: false });
    const received: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received.push(value);
    }
    const joined = new Uint8Array(received.reduce((n, chunk) => n + chunk.byteLength, 0));
    received.reduce((at, chunk) => (joined.set(chunk, at), at + chunk.byteLength), 0);
    const expected = new Uint8Array(sizes.reduce((n, size) => n + size, 0));
    frames.reduce((at, frame) => (expected.set(frame, at), at + frame.byteLength), 0);
    assert.deepEqual(joined, expected);
    // Small frames are never merged with the next one.
    assert.equal(received[0].byteLength, 1);
    assert.equal(received[1].byteLength, 200);
    // Each chunk owns its memory: none is a view into a shared read buffer.
    for (const chunk of received) assert.equal(chunk.buffer.byteLength, chunk.byteLength);
    await settle();
    assert.deepEqual(ends, [["complete", expected.byteLength]]);
  });

  test("reads a byte stream into a small buffer, grown fourfold while reads fill it", async () => {
    // Each pull answers the read in place with as many bytes as the view holds, up to what
    // is pending: two small frames, then a body arriving faster than it is read.
    const pending = [300, 250, 200_000, 200_000, 100];
    const views: number[] = [];
    const byteSource = new ReadableStream({
      type: "bytes",
      pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        views.push(view.byteLength);
        if (pending.length === 0) {
          controller.close();
          return request.respond(0);
        }
        const size = Math.min(pending[0], view.byteLength);
        pending[0] -= size;
        if (pending[0] === 0) pending.shift();
        new Uint8Array(view.buffer, view.byteOffset, size).fill(1);
        request.respond(size);
      },
    });
    const { reader, ends } = tee(byteSource, { sse: false });
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
    }
    assert.equal(total, 300 + 250 + 400_000 + 100);
    // SSE-sized chunks keep the first buffer; the first full read grows it, and so on.
    assert.deepEqual(views.slice(0, 5), [
      FIRST_READ_BYTES,
      FIRST_READ_BYTES,
      FIRST_READ_BYTES,
      FIRST_READ_BYTES * 4,
      FIRST_READ_BYTES * 16,
    ]);
    assert.equal(Math.max(...views), LARGEST_READ_BYTES);
    // 400 KB arrive in about 400/64 reads once grown, not 400/4.
    assert.ok(views.length < 15, `${views.length} reads`);
    await settle();
    assert.deepEqual(ends, [["complete", total]]);
  });

  test("hands each chunk to the client before the next exists, unchanged", async () => {
    const source = upstream();
    const { reader, seen, ends } = tee(source.body);
    source.push("data: 1\n\n");
    assert.equal(decode((await reader.read()).value!), "data: 1\n\n");
    source.push("data: 2\n\n");
    assert.equal(decode((await reader.read()).value!), "data: 2\n\n");
    source.end();
    assert.equal((await reader.read()).done, true);
    await settle();
    assert.deepEqual(seen, ["data: 1\n\n", "data: 2\n\n"]);
    assert.deepEqual(ends, [["complete", 18]]);
  });

  test("ends an SSE stream cut by the upstream with an error event and [DONE]", async () => {
    const source = upstream();
    const { reader, ends } = tee(source.body);
    source.push("data: 1\n\n");
    await reader.read();
    source.fail(new TypeError("error reading a body from connection"));
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decode(value);
    }
    assert.match(
      rest,
      /^data: \{"error":\{"message":"The backend connection was lost[^\n]*\n\ndata: \[DONE\]\n\n$/,
    );
    await settle();
    assert.equal(ends[0][0], "upstream_error");
    assert.equal(ends[0][1], 9 + encode(rest).length, "the error tail counts as bytes sent");
  });

  test("errors a non-SSE body cut by the upstream (nothing valid can be appended)", async () => {
    const source = upstream();
    const { reader, ends } = tee(source.body, { sse: false });
    source.push('{"partial":');
    await reader.read();
    source.fail(new TypeError("reset"));
    await assert.rejects(reader.read());
    assert.equal(ends[0][0], "upstream_error");
  });

  // Each of olla-ts's own stops cancels the upstream body itself: the abort the test records
  // never reaches it, as on Deno once the fetch's inner Request has been collected.
  test("ends a stream silent past the idle timeout, aborting the upstream", async () => {
    const source = upstream();
    const { reader, aborts, ends, clock } = tee(source.body, { idleTimeoutMs: 1_000 });
    source.push("data: 1\n\n");
    await reader.read();
    await clock.advance(600);
    source.push("data: 2\n\n");
    await reader.read();
    await clock.advance(999);
    assert.equal(aborts.length, 0, "the timer counts from the last chunk");
    await clock.advance(1);
    assert.equal(aborts.length, 1);
    assert.ok(source.cancelled, "the upstream body was cancelled");
    const { value } = await reader.read();
    assert.match(decode(value!), /proxy\.read_timeout/);
    await settle();
    assert.equal(ends[0][0], "idle_timeout");
  });

  test("ends a stream at the response deadline", async () => {
    const source = upstream();
    const clock = new FakeClock();
    const { reader, aborts, ends } = tee(source.body, { deadline: clock.now() + 500, clock });
    source.push("data: 1\n\n");
    await reader.read();
    await clock.advance(500);
    assert.equal(aborts.length, 1);
    assert.ok(source.cancelled, "the upstream body was cancelled");
    assert.match(decode((await reader.read()).value!), /proxy\.response_timeout/);
    await settle();
    assert.equal(ends[0][0], "deadline");
  });

  test("shutdown ends a stream with its error event, a read already waiting included", async () => {
    const source = upstream();
    const live = new LiveStreams();
    const { reader, aborts, ends } = tee(source.body, { live });
    source.push("data: 1\n\n");
    await reader.read();
    const waiting = reader.read();
    await settle();
    assert.equal(live.stopAll(), 1);
    assert.equal(aborts.length, 1);
    assert.ok(source.cancelled, "the upstream body was cancelled");
    assert.match(decode((await waiting).value!), /"code":503.*\n\ndata: \[DONE\]\n\n$/s);
    assert.equal((await reader.read()).done, true);
    await settle();
    assert.deepEqual(ends.map(([outcome]) => outcome), ["shutdown"]);
  });

  test("a client that goes away cancels the upstream and ends once", async () => {
    const source = upstream();
    const { reader, aborts, ends } = tee(source.body);
    source.push("data: 1\n\n");
    await reader.read();
    await reader.cancel("client gone");
    await settle();
    assert.equal(aborts.length, 1);
    assert.ok(source.cancelled, "the upstream body was cancelled");
    assert.deepEqual(ends.map(([outcome]) => outcome), ["client_cancelled"]);
  });
});

describe("sseUsageObserver()", () => {
  const feed = (text: string, split = 7) => {
    const observer = sseUsageObserver();
    const bytes = encode(text);
    for (let i = 0; i < bytes.length; i += split) {
      observer.push(bytes.subarray(i, i + split), 1_000 + i);
    }
    return observer.finish();
  };
  /** Each event a chunk of its own, the i-th arriving at 1_000 + i. */
  const feedEvents = (events: string[]) => {
    const observer = sseUsageObserver();
    events.forEach((event, i) => observer.push(encode(`${event}\n\n`), 1_000 + i));
    return observer.finish();
  };

  test("reads the include_usage chunk and the finish reason", () => {
    const stream = [
      'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}], "usage": null}',
      'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}], "usage": null}',
      'data: {"choices":[],"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}',
      "data: [DONE]",
      "",
    ].join("\n\n");
    assert.deepEqual(feed(stream, 100_000), {
      estimated: false,
      contentEvents: 1,
      errorEvent: false,
      firstTokenAt: 1_000,
      promptTokens: 12,
      completionTokens: 2,
      finishReason: "stop",
    });
  });

  test("estimates completion tokens from content events when the stream carries no usage", () => {
    const stream =
      ["Hel", "lo", " there"].map((t) =>
        `data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "${t}"}}]}`
      ).join("\n\n") +
      '\n\ndata: {"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "length"}]}\n\ndata: [DONE]\n\n';
    const summary = feed(stream);
    assert.equal(summary.completionTokens, 3);
    assert.equal(summary.estimated, true);
    assert.equal(summary.finishReason, "length");
  });

  test("reads /generate's cumulative meta_info", () => {
    const stream = [
      'data: {"text":"A","output_ids":[1],"meta_info":{"prompt_tokens":5,"completion_tokens":1,"finish_reason":null}}',
      'data: {"text":"","output_ids":[],"meta_info":{"prompt_tokens":5,"completion_tokens":4,"finish_reason":{"type":"stop"}}}',
      "data: [DONE]",
      "",
    ].join("\n\n");
    const summary = feed(stream, 3);
    assert.equal(summary.promptTokens, 5);
    assert.equal(summary.completionTokens, 4);
    assert.equal(summary.finishReason, "stop");
    assert.equal(summary.estimated, false);
  });

  test("reads events with CRLF endings, event: lines and data spread over lines", () => {
    const stream = [
      "event: message_start",
      'data: {"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}',
      "",
      'data: {"type":"content_block_delta","delta":{"type":"text_delta",',
      'data: "text":"Hi"}}',
      "",
      "event: message_delta",
      'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}',
      "",
      "",
    ].join("\r\n");
    // Split 5 bytes apart, so some chunks end between a "\r" and its "\n".
    for (const split of [5, 100_000]) {
      const summary = feed(stream, split);
      assert.equal(summary.contentEvents, 1, `split ${split}`);
      assert.equal(summary.promptTokens, 9, `split ${split}`);
      assert.equal(summary.completionTokens, 3, `split ${split}`);
      assert.equal(summary.finishReason, "end_turn", `split ${split}`);
    }
  });

  test("skips an event longer than MAX_EVENT_CHARS to its end, holding none of it, and reads on", () => {
    const content = (text: string) =>
      `data: {"choices": [{"index": 0, "delta": {"content": "${text}"}}]}`;
    const usage = 'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}';
    for (const newline of ["\n", "\r\n"]) {
      const end = newline + newline;
      const huge = content("x".repeat(MAX_EVENT_CHARS + 10));
      // The huge event's end is split between two chunks, as a read may split it.
      const cut = huge.length + end.length - 1;
      const stream = `${content("Hi")}${end}${huge}${end}${usage}${end}data: [DONE]${end}`;
      const start = content("Hi").length + end.length;
      const observer = sseUsageObserver();
      for (
        const piece of [
          stream.slice(0, start + 65_536),
          stream.slice(start + 65_536, start + cut),
          stream.slice(start + cut),
        ]
      ) {
        for (let i = 0; i < piece.length; i += 65_536) {
          observer.push(encode(piece.slice(i, i + 65_536)), 1_000);
        }
      }
      const summary = observer.finish();
      assert.equal(summary.contentEvents, 1, "the huge event is not read");
      assert.equal(summary.promptTokens, 7, JSON.stringify(newline));
      assert.equal(summary.completionTokens, 2);
    }
  });

  test("a stream of tool calls only: first-token time at the call's name, content counted", () => {
    const call = (fn: Record<string, string>, extra = "") =>
      `data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0${extra},"function":${
        JSON.stringify(fn)
      }}]},"finish_reason":null}]}`;
    const summary = feedEvents([
      'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
      call({ name: "get_weather", arguments: "" }, ',"id":"call_1","type":"function"'),
      call({ arguments: '{"city":' }),
      call({ arguments: '"Paris"}' }),
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
      "data: [DONE]",
    ]);
    assert.equal(summary.firstTokenAt, 1_001, "the chunk naming the function is the first token");
    assert.equal(summary.contentEvents, 3);
    assert.equal(summary.completionTokens, 3);
    assert.equal(summary.estimated, true);
    assert.equal(summary.finishReason, "tool_calls");
  });

  test("reads a Responses API stream: deltas as content, usage from response.completed", () => {
    const event = (type: string, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}`;
    const response = (status: string, usage: unknown, text: string) => ({
      id: "resp_1",
      object: "response",
      status,
      text: { format: { type: "text" } },
      output: text === "" ? [] : [{
        type: "message",
        role: "assistant",
        content: [{ type: "output_text", text }],
      }],
      usage,
    });
    const summary = feedEvents([
      event("response.created", { response: response("in_progress", null, "") }),
      event("response.output_item.added", {
        item: { type: "message", role: "assistant", content: [] },
      }),
      event("response.output_text.delta", { item_id: "m", delta: "Bon", logprobs: [] }),
      event("response.output_text.delta", { item_id: "m", delta: "jour", logprobs: [] }),
      event("response.output_text.done", { item_id: "m", text: "Bonjour" }),
      event("response.completed", {
        response: response("completed", {
          input_tokens: 14,
          output_tokens: 2,
          total_tokens: 16,
        }, "Bonjour"),
      }),
    ]);
    assert.equal(summary.firstTokenAt, 1_002, "the first text delta is the first token");
    assert.equal(summary.promptTokens, 14);
    assert.equal(summary.completionTokens, 2);
    assert.equal(summary.estimated, false);
  });

  test("notes an error event", () => {
    assert.equal(feed('data: {"error": {"message": "x"}}\n\ndata: [DONE]\n\n').errorEvent, true);
  });
});
