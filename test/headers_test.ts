import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  headerEntries,
  setClientResponseHeaders,
  upstreamRequestHeaders,
} from "../lib/proxy/headers.ts";
import { applyOllaHeaders } from "../lib/proxy/olla_headers.ts";
import { RequestRecord } from "../lib/proxy/request_record.ts";

describe("header shaping", () => {
  test("upstreamRequestHeaders() drops hop-by-hop, credentials and X-Olla-*, adds forwarding", () => {
    const out = upstreamRequestHeaders(
      new Headers({
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        authorization: "Bearer client-key",
        cookie: "a=b",
        "x-olla-endpoint": "spoofed",
        "x-forwarded-for": "198.51.100.1",
        "content-type": "application/json",
      }),
      {
        clientIp: "203.0.113.9",
        proto: "https",
        host: "olla.example",
        endpointHeaders: [["authorization", "Bearer backend-key"]],
      },
    );
    assert.equal(out["x-secret-hop"], undefined);
    assert.equal(out["cookie"], undefined);
    assert.equal(out["x-olla-endpoint"], undefined);
    assert.equal(out["authorization"], "Bearer backend-key");
    assert.equal(out["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
    assert.equal(out["x-forwarded-proto"], "https");
    assert.equal(out["x-forwarded-host"], "olla.example");
    assert.equal(out["accept-encoding"], "identity");
    assert.equal(out["content-type"], "application/json");
  });

  test("headerEntries() yields the pairs iteration yields: lower-cased, combined, set-cookie apart", () => {
    const headers = new Headers([
      ["X-B", "2"],
      ["a", "1"],
      ["x-b", "3"],
      ["Set-Cookie", "s=1"],
      ["set-cookie", "t=2"],
    ]);
    // In the runtime's order (Bun puts set-cookie last; the standard sorts it in).
    assert.deepEqual(headerEntries(headers), [...headers]);
    assert.deepEqual([...headerEntries(headers)].sort(), [
      ["a", "1"],
      ["set-cookie", "s=1"],
      ["set-cookie", "t=2"],
      ["x-b", "2, 3"],
    ]);
    assert.equal(headerEntries(headers), headerEntries(headers), "read once");
  });

  test("setClientResponseHeaders() strips cookies and X-Olla-*, marks streams unbuffered", () => {
    const out = new Headers();
    setClientResponseHeaders(
      new Headers({
        "content-type": "text/event-stream",
        "set-cookie": "s=1",
        "x-olla-endpoint": "upstream-says",
        "transfer-encoding": "chunked",
      }),
      out,
    );
    assert.equal(out.get("set-cookie"), null);
    assert.equal(out.get("x-olla-endpoint"), null);
    assert.equal(out.get("transfer-encoding"), null);
    assert.equal(out.get("x-accel-buffering"), "no");
    assert.equal(out.get("via"), "1.1 olla-ts");
    assert.match(out.get("x-served-by") ?? "", /^olla-ts\//);
  });

  test("applyOllaHeaders() writes what the record knows, the route's type as a fallback", () => {
    const record = new RequestRecord("req-1", "POST", "127.0.0.1", 1_000, "/x");
    record.model = "caf\u00e9";
    record.failovers.push({ endpoint: "gpu:1", reason: "upstream_502" });
    record.upstreamHeadersAt = 1_012;
    record.respondedAt = 1_020;
    record.upstreamWaitMs = 12;
    const headers = new Headers();
    applyOllaHeaders(headers, record, "lmdeploy");
    assert.equal(headers.get("x-olla-request-id"), "req-1");
    assert.equal(headers.get("x-olla-model"), "caf%C3%A9");
    assert.equal(headers.get("x-olla-backend-type"), "lmdeploy");
    assert.equal(headers.get("x-olla-failovers"), "1");
    assert.equal(headers.get("x-olla-response-time"), "12ms");
    assert.equal(headers.get("server-timing"), 'olla;desc="proxy overhead";dur=8, upstream;dur=12');
    record.backendType = "vllm";
    applyOllaHeaders(headers, record, "lmdeploy");
    assert.equal(headers.get("x-olla-backend-type"), "vllm");
  });
});
