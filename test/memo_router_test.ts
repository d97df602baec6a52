import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TrieRouter } from "hono/router/trie-router";
import { MEMO_ENTRIES, MEMO_PATH_LENGTH, MemoRouter } from "../lib/server/memo_router.ts";

/** The same routes in a memo router and a plain trie router. */
function routers() {
  const memo = new MemoRouter<string>();
  const trie = new TrieRouter<string>();
  for (const router of [memo, trie]) {
    router.add("ALL", "/*", "context");
    router.add("GET", "/olla/models", "models");
    router.add("ALL", "/olla/:prefix/*", "provider");
    router.add("GET", "/internal/status/endpoints/:name", "endpoint");
  }
  return { memo, trie };
}

describe("MemoRouter", () => {
  test("answers as the trie router does, parameters included", () => {
    const { memo, trie } = routers();
    for (
      const [method, path] of [
        ["POST", "/olla/lmdeploy/v1/chat/completions"],
        ["GET", "/olla/models"],
        ["GET", "/internal/status/endpoints/gpu-a"],
        ["GET", "/nowhere"],
      ]
    ) {
      assert.deepEqual(memo.match(method, path), trie.match(method, path));
      assert.deepEqual(memo.match(method, path), trie.match(method, path), "remembered");
    }
  });

  test("remembers per method and path: a repeated match is the same answer", () => {
    const { memo } = routers();
    const first = memo.match("POST", "/olla/lmdeploy/v1/chat/completions");
    assert.equal(memo.match("POST", "/olla/lmdeploy/v1/chat/completions"), first);
    assert.notEqual(memo.match("GET", "/olla/lmdeploy/v1/chat/completions"), first);
    assert.notEqual(memo.match("POST", "/olla/vllm/v1/chat/completions"), first);
  });

  test("keeps at most MEMO_ENTRIES answers, and matches long paths every time", () => {
    const { memo } = routers();
    const first = memo.match("GET", "/internal/status/endpoints/e0");
    for (let i = 1; i < MEMO_ENTRIES; i++) memo.match("GET", `/internal/status/endpoints/e${i}`);
    assert.equal(memo.match("GET", "/internal/status/endpoints/e0"), first, "still remembered");
    memo.match("GET", "/internal/status/endpoints/one-too-many");
    const again = memo.match("GET", "/internal/status/endpoints/e0");
    assert.notEqual(again, first, "started over");
    assert.deepEqual(again, first);

    const long = `/olla/lmdeploy/${"x".repeat(MEMO_PATH_LENGTH)}`;
    assert.notEqual(memo.match("POST", long), memo.match("POST", long));
  });

  test("a route added later is found on paths matched before", () => {
    const { memo } = routers();
    assert.deepEqual(memo.match("GET", "/olla/health")[0].map(([handler]) => handler), [
      "context",
      "provider",
    ]);
    memo.add("GET", "/olla/health", "health");
    assert.deepEqual(memo.match("GET", "/olla/health")[0].map(([handler]) => handler), [
      "context",
      "provider",
      "health",
    ]);
  });
});
