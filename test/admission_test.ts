import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock } from "./fakes/clock.ts";
import { OllaError } from "../lib/errors.ts";
import { Admission } from "../lib/proxy/admission.ts";

function gate(maxConcurrent: number, queueSize = 2, queueTimeoutMs = 1_000) {
  const clock = new FakeClock();
  return {
    clock,
    admission: new Admission({ maxConcurrent, queueSize, queueTimeoutMs, clock, endpoint: "gpu" }),
  };
}

describe("Admission", () => {
  test("lets max_concurrent_requests through at once and queues the rest in order", async () => {
    const { admission } = gate(2);
    const first = await admission.acquire();
    await admission.acquire();
    assert.equal(admission.active, 2);
    const order: string[] = [];
    const third = admission.acquire().then((release) => (order.push("third"), release));
    const fourth = admission.acquire().then((release) => (order.push("fourth"), release));
    assert.equal(admission.queued, 2);
    first();
    (await third)();
    await fourth;
    assert.deepEqual(order, ["third", "fourth"]);
    assert.equal(admission.active, 2);
  });

  test("answers 429 with Retry-After when the queue is full", async () => {
    const { admission } = gate(1, 1);
    await admission.acquire();
    admission.acquire();
    await assert.rejects(admission.acquire(), (error: OllaError) => {
      assert.equal(error.status, 429);
      assert.equal(error.code, "queue_full");
      assert.ok((error.retryAfterSeconds ?? 0) >= 1);
      return true;
    });
  });

  test("answers 503 with Retry-After when the wait expires", async () => {
    const { clock, admission } = gate(1, 5, 1_000);
    await admission.acquire();
    const waiting = admission.acquire();
    const rejected = assert.rejects(
      waiting,
      (error: OllaError) => error.status === 503 && error.code === "queue_timeout",
    );
    await clock.advance(1_000);
    await rejected;
    assert.equal(admission.queued, 0);
  });

  test("a waiter whose client leaves gives up its place", async () => {
    const { admission } = gate(1);
    await admission.acquire();
    const controller = new AbortController();
    const waiting = admission.acquire(controller.signal);
    controller.abort(new Error("gone"));
    await assert.rejects(waiting, /gone/);
    assert.equal(admission.queued, 0);
  });

  test("a release is counted once, however often it is called", async () => {
    const { admission } = gate(1);
    const release = await admission.acquire();
    release();
    release();
    assert.equal(admission.active, 0);
  });

  test("0 means unlimited", async () => {
    const { admission } = gate(0);
    await Promise.all(Array.from({ length: 100 }, () => admission.acquire()));
    assert.equal(admission.hasFreeSlot, true);
  });
});
