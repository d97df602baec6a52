import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Logger } from "../lib/log.ts";

function capture(format: "json" | "text") {
  const lines: string[] = [];
  const logger = new Logger({
    format,
    level: "info",
    write: (line) => lines.push(line),
    now: () => Date.UTC(2026, 11, 1, 10, 0, 0, 123),
  });
  return { logger, lines };
}

describe("Logger", () => {
  test("writes a JSON line with time, level and msg first, then fields in order", () => {
    const { logger, lines } = capture("json");
    logger.info("hello", { b: 2, a: "x", skipped: undefined, error: new Error("boom") });
    assert.equal(
      lines[0],
      '{"time":"2026-12-01T10:00:00.123Z","level":"info","msg":"hello","b":2,"a":"x","error":"boom"}\n',
    );
  });

  test("logFixed() formats fixed keys without an object, leaving undefined values out", () => {
    const { logger, lines } = capture("json");
    logger.logFixed("info", "access", ["status", "model", "reasons", "ok"], [
      200,
      undefined,
      ["gpu:1:upstream_502"],
      true,
    ]);
    const parsed = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(parsed), ["time", "level", "msg", "status", "reasons", "ok"]);
    assert.deepEqual(parsed.reasons, ["gpu:1:upstream_502"]);
  });

  test("a line logged while another is being formatted leaves both whole", () => {
    const { logger, lines } = capture("json");
    const logsWhenSerialized = {
      toJSON() {
        logger.info("inner", { depth: 2 });
        return { ok: true };
      },
    };
    logger.info("outer", { before: "a", value: logsWhenSerialized, after: "b" });
    assert.equal(lines.length, 2);
    assert.deepEqual(JSON.parse(lines[0]), {
      time: "2026-12-01T10:00:00.123Z",
      level: "info",
      msg: "inner",
      depth: 2,
    });
    assert.deepEqual(JSON.parse(lines[1]), {
      time: "2026-12-01T10:00:00.123Z",
      level: "info",
      msg: "outer",
      before: "a",
      value: { ok: true },
      after: "b",
    });
  });

  test("the text format quotes values with spaces, quotes or equals signs", () => {
    const { logger, lines } = capture("text");
    logger.warn("slow", { endpoint: "gpu-1", detail: 'a "b"=c', n: 3 });
    assert.equal(
      lines[0],
      '2026-12-01T10:00:00.123Z WARN  slow endpoint=gpu-1 detail="a \\"b\\"=c" n=3\n',
    );
  });

  test("drops levels below its own", () => {
    const { logger, lines } = capture("json");
    logger.debug("quiet");
    logger.logFixed("debug", "quiet", [], []);
    logger.info("loud");
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]).msg, "loud");
  });

  test("child loggers add their fields to plain and fixed lines", () => {
    const { logger, lines } = capture("json");
    const child = logger.child({ component: "health" });
    child.info("a");
    child.logFixed("info", "b", ["x"], [1]);
    assert.equal(JSON.parse(lines[0]).component, "health");
    assert.deepEqual(Object.keys(JSON.parse(lines[1])), ["time", "level", "msg", "component", "x"]);
  });
});
