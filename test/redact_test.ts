import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createRedactor, redactPathAndQuery, redactUrl } from "../lib/observability/redact.ts";

describe("redactUrl() and redactPathAndQuery()", () => {
  test("remove user info and secret-looking query values", () => {
    assert.equal(
      redactUrl("http://u:p@host:1/v1?api_key=abc&x=1"),
      "http://host:1/v1?api_key=REDACTED&x=1",
    );
    assert.equal(
      redactPathAndQuery("/v1/models?token=t&limit=2"),
      "/v1/models?token=REDACTED&limit=2",
    );
    assert.equal(redactPathAndQuery("/v1/models"), "/v1/models");
  });
});

describe("createRedactor()", () => {
  const redact = createRedactor(["sk-secret-value", "abc"]);

  test("replaces configured secrets, ignoring ones too short to be safe to replace", () => {
    assert.equal(
      redact('{"error":"Bearer sk-secret-value refused","x":"abc"}'),
      '{"error":"Bearer [REDACTED] refused","x":"abc"}',
    );
  });

  test("redacts URLs in text only when they carry credentials or secret parameters", () => {
    assert.equal(redact("failed: http://user:pw@gpu:23333/x"), "failed: http://gpu:23333/x");
    assert.equal(
      redact("GET http://gpu:23333/v1?signature=zz"),
      "GET http://gpu:23333/v1?signature=REDACTED",
    );
    assert.equal(
      redact('{"address":"http://127.0.0.1:40114"}'),
      '{"address":"http://127.0.0.1:40114"}',
    );
  });
});
