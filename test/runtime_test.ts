import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { withParsableUrl } from "../lib/startup/runtime_api.ts";

describe("withParsableUrl()", () => {
  const fakeRequest = (url: string) =>
    ({
      url,
      method: "GET",
      headers: new Headers({ host: "" }),
      body: null,
      signal: new AbortController().signal,
    }) as unknown as Request;

  test("passes a well-formed request through untouched", () => {
    const request = new Request("http://127.0.0.1:40114/v1/models?x=1");
    assert.equal(withParsableUrl(request), request);
  });

  test("rebuilds a path-only URL (no Host) on a placeholder host, keeping path and query", () => {
    const rebuilt = withParsableUrl(fakeRequest("/version?a=1"));
    assert.equal(rebuilt.url, "http://unknown-host/version?a=1");
  });

  test("rebuilds URLs with an empty or invalid host", () => {
    assert.equal(
      withParsableUrl(fakeRequest("http:///olla/models")).url,
      "http://unknown-host/olla/models",
    );
    assert.equal(
      withParsableUrl(fakeRequest("http://evil.example:99999/x")).url,
      "http://unknown-host/x",
    );
  });
});
