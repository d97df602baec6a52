import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock } from "./fakes/clock.ts";
import { Deadlines } from "../lib/deadlines.ts";

describe("Deadlines", () => {
  test("fires callbacks in time order at their exact times", async () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    const fired: string[] = [];
    const start = clock.now();
    deadlines.after(300, () => fired.push(`c@${clock.now() - start}`));
    deadlines.after(100, () => fired.push(`a@${clock.now() - start}`));
    deadlines.after(200, () => fired.push(`b@${clock.now() - start}`));
    await clock.advance(99);
    assert.deepEqual(fired, []);
    await clock.advance(201);
    assert.deepEqual(fired, ["a@100", "b@200", "c@300"]);
    assert.equal(deadlines.size, 0);
  });

  test("counts from the time the caller passes as now, when it passes one", async () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    const fired: number[] = [];
    const start = clock.now();
    await clock.advance(40);
    deadlines.after(100, () => fired.push(clock.now() - start), start);
    await clock.advance(59);
    assert.deepEqual(fired, []);
    await clock.advance(1);
    assert.deepEqual(fired, [100]);
  });

  test("a cancelled deadline never fires, and no timer is left once all are cancelled", async () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    let fired = false;
    const first = deadlines.after(100, () => fired = true);
    const second = deadlines.after(50, () => fired = true);
    second.cancel();
    first.cancel();
    first.cancel();
    assert.equal(clock.pending, 0);
    await clock.advance(200);
    assert.equal(fired, false);
  });

  test("holds one clock timer however many deadlines are armed", () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    for (let i = 0; i < 1_000; i++) deadlines.after(10_000 + i, () => {});
    assert.equal(clock.pending, 1);
  });

  test("cancelling removes the entry at once, so nothing it captured is kept", async () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    const keeper = deadlines.after(600_000, () => {});
    let fired = 0;
    for (let i = 0; i < 50_000; i++) deadlines.after(600_000 - i, () => fired++).cancel();
    assert.equal(deadlines.size, 1);
    const late = deadlines.after(10, () => fired++);
    await clock.advance(10);
    assert.equal(fired, 1, "only the live deadline fired");
    keeper.cancel();
    late.cancel();
    assert.equal(deadlines.size, 0);
  });

  test("keeps time order when entries in the middle of the heap are cancelled", async () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines(clock);
    const fired: number[] = [];
    // A fixed shuffle of 1..200, every third one cancelled.
    const order = Array.from({ length: 200 }, (_, i) => ((i * 73) % 200) + 1);
    const handles = order.map((ms) => ({ ms, handle: deadlines.after(ms, () => fired.push(ms)) }));
    for (const { ms, handle } of handles) if (ms % 3 === 0) handle.cancel();
    await clock.advance(200);
    const expected = order.filter((ms) => ms % 3 !== 0).sort((a, b) => a - b);
    assert.deepEqual(fired, expected);
    assert.equal(deadlines.size, 0);
  });
});
