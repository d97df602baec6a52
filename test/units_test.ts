import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatDuration, parseDuration, parseSize } from "../lib/schema/units.ts";

describe("parseDuration()", () => {
  test("reads Go-style durations in milliseconds", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("5s"), 5_000);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("1.5s"), 1_500);
    assert.equal(parseDuration("250us"), 0.25);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("-2s"), -2_000);
  });

  test("refuses a bare number with a hint to add a unit", () => {
    assert.throws(() => parseDuration("5"), /add a unit, for example "5s"/);
  });

  test("refuses text that is not a duration, naming it", () => {
    assert.throws(() => parseDuration("5x"), /Cannot parse duration "5x"/);
    assert.throws(() => parseDuration("abc"), /Cannot parse duration "abc"/);
    assert.throws(() => parseDuration(""), /empty/);
  });
});

describe("formatDuration()", () => {
  test("renders milliseconds as short Go-style text", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(250), "250ms");
    assert.equal(formatDuration(90_000), "1m30s");
    assert.equal(formatDuration(5_400_000), "1h30m");
    assert.equal(formatDuration(1_500), "1.5s");
  });
});

describe("parseSize()", () => {
  test("reads bytes and 1024-based units", () => {
    assert.equal(parseSize(52428800), 52_428_800);
    assert.equal(parseSize("50MB"), 52_428_800);
    assert.equal(parseSize("50MiB"), 52_428_800);
    assert.equal(parseSize("512KB"), 524_288);
    assert.equal(parseSize("1GB"), 1024 ** 3);
    assert.equal(parseSize("100"), 100);
  });

  test("refuses negative and unknown sizes", () => {
    assert.throws(() => parseSize(-1), /non-negative/);
    assert.throws(() => parseSize("5 parsecs"), /Cannot parse size "5 parsecs"/);
  });
});
