import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock } from "./fakes/clock.ts";
import { hash53 } from "../lib/hash.ts";
import { affinityKey, StickyTable } from "../lib/routing/sticky.ts";

const base = {
  scope: "lmdeploy",
  model: "m",
  sessionId: undefined,
  sessionHeader: null,
  conversation: undefined,
  authorization: null,
  clientIp: "10.0.0.1",
  sticky: {
    enabled: true,
    key_sources: ["session_header", "prefix_hash", "auth_header"] as const,
    prefix_hash_bytes: 8,
  },
};

describe("affinityKey()", () => {
  test("an LMDeploy session_id always pins, even with sticky sessions off", () => {
    const key = affinityKey({
      ...base,
      sessionId: "42",
      sticky: { ...base.sticky, enabled: false },
    });
    assert.deepEqual(key, { key: "lmdeploy|m|session_id:42", source: "session_id" });
  });

  test("with sticky sessions off and no session_id, nothing pins", () => {
    assert.equal(
      affinityKey({ ...base, sessionHeader: "abc", sticky: { ...base.sticky, enabled: false } }),
      undefined,
    );
  });

  test("uses the first configured source that applies", () => {
    const conversation = new TextEncoder().encode('[{"role":"user","content":"hello there"}]');
    assert.equal(
      affinityKey({ ...base, sessionHeader: "s1", conversation })?.source,
      "session_header",
    );
    assert.equal(
      affinityKey({ ...base, conversation, authorization: "Bearer x" })?.source,
      "prefix_hash",
    );
    assert.equal(affinityKey({ ...base, authorization: "Bearer x" })?.source, "auth_header");
    assert.equal(affinityKey(base), undefined);
    assert.equal(
      affinityKey({ ...base, sticky: { ...base.sticky, key_sources: ["ip"] } })?.key,
      "lmdeploy|m|ip:10.0.0.1",
    );
  });

  test("the prefix hash covers only the first prefix_hash_bytes, so a growing conversation keeps its pin", () => {
    const first = new TextEncoder().encode('[{"role":"user","content":"hi"}]');
    const longer = new TextEncoder().encode(
      '[{"role":"user","content":"hi"},{"role":"assistant"}]',
    );
    assert.equal(
      affinityKey({ ...base, conversation: first })?.key,
      affinityKey({ ...base, conversation: longer })?.key,
    );
  });

  test("keys are scoped by provider and model", () => {
    const a = affinityKey({ ...base, sessionId: "1" })?.key;
    assert.notEqual(a, affinityKey({ ...base, sessionId: "1", model: "other" })?.key);
    assert.notEqual(a, affinityKey({ ...base, sessionId: "1", scope: "unified" })?.key);
  });

  test("hash53() is stable and spreads", () => {
    assert.equal(hash53("abc"), hash53(new TextEncoder().encode("abc")));
    assert.notEqual(hash53("abc"), hash53("abd"));
  });
});

describe("StickyTable", () => {
  test("keeps pins until they sit idle past the TTL", async () => {
    const clock = new FakeClock();
    const table = new StickyTable({ maxEntries: 10, idleTtlMs: 1_000, clock });
    table.set("k", "gpu-1");
    await clock.advance(900);
    assert.equal(table.get("k"), "gpu-1", "use refreshes the TTL");
    await clock.advance(900);
    assert.equal(table.get("k"), "gpu-1");
    await clock.advance(1_001);
    assert.equal(table.get("k"), undefined);
  });

  test("is bounded, dropping the least recently used pin", () => {
    const table = new StickyTable({ maxEntries: 2, idleTtlMs: 60_000, clock: new FakeClock() });
    table.set("a", "1");
    table.set("b", "2");
    table.get("a");
    table.set("c", "3");
    assert.equal(table.size, 2);
    assert.equal(table.get("b"), undefined);
    assert.equal(table.get("a"), "1");
  });

  test("unpins every key of an endpoint that stopped being routable", () => {
    const table = new StickyTable({ maxEntries: 10, idleTtlMs: 60_000, clock: new FakeClock() });
    table.set("a", "gpu-1");
    table.set("b", "gpu-2");
    table.unpinEndpoint("gpu-1");
    assert.equal(table.get("a"), undefined);
    assert.equal(table.get("b"), "gpu-2");
  });
});
