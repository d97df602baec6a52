import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  describeFetchError,
  isConnectionError,
  isMalformedAnswer,
} from "../lib/upstream/fetch_errors.ts";

describe("fetch error texts", () => {
  test("never carry Bun's verbose hint or a backend's address into answers and logs", () => {
    const bun = Object.assign(
      new TypeError(
        "Unable to connect. Is the computer able to access the url? For more information, pass `verbose: true` in the second argument to fetch()",
      ),
      { code: "ConnectionRefused" },
    );
    const text = describeFetchError(bun);
    assert.doesNotMatch(text, /verbose/);
    assert.match(text, /Unable to connect/);
    assert.match(text, /ConnectionRefused/);
    const deno = new TypeError(
      "error sending request from 127.0.0.1:51234 for http://10.0.0.7:23333/v1/chat/completions (10.0.0.7:23333): client error (Connect)",
    );
    assert.doesNotMatch(describeFetchError(deno), /10\.0\.0\.7|127\.0\.0\.1/);
    assert.ok(isConnectionError(deno));
  });

  test("a malformed answer is the upstream's fault, not a connection failure", () => {
    const malformed = Object.assign(new TypeError("Malformed_HTTP_Response"), {
      code: "Malformed_HTTP_Response",
    });
    assert.ok(isMalformedAnswer(malformed));
    assert.ok(!isConnectionError(malformed));
  });
});
