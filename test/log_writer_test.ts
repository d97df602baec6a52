import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LogWriter } from "../lib/log_writer.ts";
import { createRedactor } from "../lib/observability/redact.ts";
import { FakeClock, settle } from "./fakes/clock.ts";

/** An output whose writes complete only when the test says so. */
function output() {
  const writes: string[] = [];
  const pending: (() => void)[] = [];
  return {
    writes,
    write(bytes: Uint8Array): Promise<void> {
      writes.push(new TextDecoder().decode(bytes));
      return new Promise((resolve) => pending.push(resolve));
    },
    /** Completes the oldest write in flight. */
    async complete(): Promise<void> {
      pending.shift()?.();
      await settle();
    },
  };
}

describe("LogWriter", () => {
  test("writes lines together after flushMs, not one write per line", async () => {
    const clock = new FakeClock();
    const out = output();
    const writer = new LogWriter({ write: (b) => out.write(b), clock, flushMs: 50 });
    writer.line("a\n");
    writer.line("b\n");
    await clock.advance(49);
    assert.deepEqual(out.writes, []);
    await clock.advance(1);
    assert.deepEqual(out.writes, ["a\nb\n"]);
  });

  test("redacts every line of a batch: configured secrets and credentials in URLs", async () => {
    const clock = new FakeClock();
    const out = output();
    const writer = new LogWriter({
      write: (b) => out.write(b),
      clock,
      redact: createRedactor(["sk-secret-1234"]),
    });
    writer.line('{"msg":"a","token":"sk-secret-1234"}\n');
    writer.line('{"msg":"b","url":"http://user:pw@gpu-1:23333/v1?api_key=sk-other"}\n');
    writer.line('{"msg":"c sk-secret-1234 and sk-secret-1234"}\n');
    await clock.advance(50);
    assert.equal(out.writes.length, 1);
    const lines = out.writes[0].split("\n");
    assert.equal(lines.length, 4);
    assert.ok(!out.writes[0].includes("sk-secret-1234"), out.writes[0]);
    assert.ok(!out.writes[0].includes("user:pw"), out.writes[0]);
    assert.ok(!out.writes[0].includes("sk-other"), out.writes[0]);
    assert.equal(JSON.parse(lines[2]).msg, "c [REDACTED] and [REDACTED]");
  });

  test("writes at once when flushBytes have gathered", () => {
    const out = output();
    const writer = new LogWriter({
      write: (b) => out.write(b),
      clock: new FakeClock(),
      flushBytes: 10,
    });
    writer.line("12345\n");
    assert.equal(out.writes.length, 0);
    writer.line("67890\n");
    assert.deepEqual(out.writes, ["12345\n67890\n"]);
  });

  test("keeps one write in flight; lines meanwhile go out in the next one", async () => {
    const clock = new FakeClock();
    const out = output();
    const writer = new LogWriter({ write: (b) => out.write(b), clock, flushBytes: 4 });
    writer.line("one\n");
    writer.line("two\n");
    writer.line("three\n");
    assert.deepEqual(out.writes, ["one\n"]);
    await out.complete();
    assert.deepEqual(out.writes, ["one\n", "two\nthree\n"]);
  });

  test("drops and counts lines once the buffer is full, and warns once writing resumes", async () => {
    const clock = new FakeClock();
    const out = output();
    const warnings: number[] = [];
    const writer: LogWriter = new LogWriter({
      write: (b) => out.write(b),
      clock,
      flushBytes: 4,
      maxBufferedBytes: 20,
      onResumed: (dropped) => {
        warnings.push(dropped);
        writer.line(`dropped ${dropped}\n`);
      },
    });
    writer.line("first\n"); // written at once; the output then blocks
    for (let i = 0; i < 10; i++) writer.line(`line${i}\n`); // 6 bytes each: 3 fit
    assert.equal(writer.dropped, 7);
    assert.deepEqual(warnings, []);
    await out.complete();
    assert.deepEqual(warnings, [7]);
    assert.equal(out.writes[1], "line0\nline1\nline2\n");
    await out.complete();
    assert.equal(out.writes[2], "dropped 7\n");
    assert.equal(writer.dropped, 7);
  });

  test("close() writes out everything buffered", async () => {
    const clock = new FakeClock();
    const out = output();
    const writer = new LogWriter({ write: (b) => out.write(b), clock, flushBytes: 6 });
    writer.line("12345\n");
    writer.line("last\n");
    const closed = writer.close();
    await out.complete();
    await out.complete();
    await closed;
    assert.deepEqual(out.writes, ["12345\n", "last\n"]);
    assert.equal(clock.pending, 0, "no timer left behind");
  });
});
