import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { clipped, quoted } from "../lib/errors.ts";
import { nearestKey, nearestNames } from "../lib/suggest.ts";

const MODELS = ["internlm/internlm2_5-7b-chat", "Qwen/Qwen2.5-7B-Instruct", "llama3"];

describe("suggestions", () => {
  test("nearestNames() finds close names, closest first, case ignored", () => {
    assert.deepEqual(nearestNames("internlm/internlm2_5-7b-chta", MODELS), [MODELS[0]]);
    assert.deepEqual(nearestNames("qwen/qwen2.5-7b-instruct", MODELS), [MODELS[1]]);
    assert.deepEqual(nearestNames("gpt-4o", MODELS), []);
  });

  test("a candidate as many characters longer as the edits allowed is still suggested", () => {
    // "llama" is 1 edit from "llama3"; at least 2 edits are always allowed.
    assert.deepEqual(nearestNames("llama", MODELS), ["llama3"]);
    assert.deepEqual(nearestNames("llam", MODELS), ["llama3"]);
    assert.equal(
      nearestKey("chek_interval", ["check_interval", "check_timeout"]),
      "check_interval",
    );
  });

  test("a name far longer than every candidate gets none", () => {
    const huge = `${MODELS[0]}${"x".repeat(1_000_000)}`;
    assert.deepEqual(nearestNames(huge, MODELS), []);
    assert.equal(nearestKey(huge, MODELS), undefined);
  });
});

describe("quoted() and clipped()", () => {
  test("quotes a value whole up to 128 characters, else cut with its length", () => {
    assert.equal(quoted("llama3"), "'llama3'");
    assert.equal(quoted("a".repeat(128)), `'${"a".repeat(128)}'`);
    assert.equal(quoted("a".repeat(129)), `'${"a".repeat(128)}...' (129 characters)`);
  });

  test("clipped() cuts unquoted, after 128 characters or the limit given", () => {
    assert.equal(clipped("/v1/models"), "/v1/models");
    assert.equal(clipped("/".repeat(129)), `${"/".repeat(128)}... (129 characters)`);
    assert.equal(clipped("abcdef", 3), "abc... (6 characters)");
  });
});
