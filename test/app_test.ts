/**
 * The app without sockets (the real service handed Requests): middleware order, the
 * request context, the guard and route labels.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FAKE_MODEL, inProcessOlla } from "./_harness.ts";
import { jsonResponse } from "./fakes/fetch.ts";

const ENDPOINT = `discovery:
  static:
    endpoints:
      - { name: gpu-a, url: "http://gpu-a:23333", type: lmdeploy }
`;
const NO_LIMITS =
  "server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n";
const answer = () => jsonResponse(200, { object: "chat.completion", choices: [] });
const chatInit = (headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify({ model: FAKE_MODEL, messages: [] }),
});
const accessLines = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === "access");

describe("middleware order", () => {
  test("the request context comes first: a guard's 429 carries the request id and is logged", async () => {
    const olla = inProcessOlla(
      "server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 60, burst_size: 1 }\n" +
        ENDPOINT,
      answer,
    );
    olla.serve("gpu-a", [FAKE_MODEL]);
    const first = await olla.request("/olla/lmdeploy/v1/chat/completions", chatInit());
    assert.equal(first.status, 200);
    const limited = await olla.request(
      "/olla/lmdeploy/v1/chat/completions",
      chatInit({ "x-request-id": "req-42" }),
    );
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("x-olla-request-id"), "req-42");
    assert.equal(olla.upstream.calls.length, 1, "the refused request never left");
    await Promise.resolve();
    const lines = accessLines(olla.logs);
    assert.equal(lines.at(-1)?.status, 429);
    assert.equal(lines.at(-1)?.fault, "policy");
  });

  test("CORS answers a preflight before the guard asks for a key", async () => {
    const olla = inProcessOlla(
      NO_LIMITS +
        "  cors: { enabled: true, allowed_origins: [https://app.example] }\n" +
        '  auth: { enabled: true, keys: [{ name: a, key: "sk-aaaaaaaaaa" }] }\n' +
        ENDPOINT,
      answer,
    );
    const preflight = await olla.request("/olla/lmdeploy/v1/chat/completions", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
    const noKey = await olla.request("/olla/lmdeploy/v1/chat/completions", chatInit());
    assert.equal(noKey.status, 401);
  });

  test("a draining service refuses new requests with 503 and Connection: close", async () => {
    const olla = inProcessOlla(NO_LIMITS + ENDPOINT, answer);
    olla.service.inflight.drain();
    const response = await olla.request("/internal/health");
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("connection"), "close");
    assert.equal((await response.json()).error.code, "shutting_down");
  });
});

describe("the guard", () => {
  test("refuses headers over max_header_size with 431", async () => {
    const olla = inProcessOlla(
      NO_LIMITS + "  request_limits: { max_header_size: 2KB }\n" + ENDPOINT,
      answer,
    );
    const response = await olla.request("/olla/lmdeploy/health", {
      headers: { "x-padding": "p".repeat(4_000) },
    });
    assert.equal(response.status, 431);
    assert.equal((await response.json()).error.code, "headers_too_large");
  });

  test("/internal/* answers allowed addresses and admin keys only; liveness stays open", async () => {
    const olla = inProcessOlla(
      NO_LIMITS +
        '  auth: { enabled: true, keys: [{ name: ops, key: "sk-ops-admin-1", admin: true }, { name: t, key: "sk-team-0001" }] }\n' +
        ENDPOINT,
      answer,
    );
    const stranger = "203.0.113.7";
    assert.equal((await olla.request("/internal/status", {}, "127.0.0.1")).status, 200);
    assert.equal((await olla.request("/internal/status", {}, stranger)).status, 403);
    const team = { headers: { authorization: "Bearer sk-team-0001" } };
    assert.equal((await olla.request("/internal/status", team, stranger)).status, 403);
    const admin = { headers: { authorization: "Bearer sk-ops-admin-1" } };
    assert.equal((await olla.request("/internal/status", admin, stranger)).status, 200);
    assert.equal((await olla.request("/internal/health", {}, stranger)).status, 200);
  });

  test("names the key in the record for the access log, never the key itself", async () => {
    const olla = inProcessOlla(
      NO_LIMITS + '  auth: { enabled: true, keys: [{ name: team-a, key: "sk-team-a-1234" }] }\n' +
        ENDPOINT,
      answer,
    );
    olla.serve("gpu-a", [FAKE_MODEL]);
    const response = await olla.request(
      "/olla/lmdeploy/v1/chat/completions",
      chatInit({ authorization: "Bearer sk-team-a-1234" }),
    );
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    await Promise.resolve();
    assert.equal(accessLines(olla.logs).at(-1)?.key, "team-a");
    assert.ok(!olla.rawLogs.join("").includes("sk-team-a-1234"));
  });
});

describe("route labels", () => {
  test("come from Hono's route template, the provider's profile path, or unmatched", async () => {
    const olla = inProcessOlla(NO_LIMITS + ENDPOINT, answer);
    olla.serve("gpu-a", [FAKE_MODEL]);
    for (
      const path of ["/internal/status", "/olla/models/x/y", "/olla/lmdeploy/health", "/nowhere"]
    ) {
      await (await olla.request(path)).arrayBuffer();
    }
    await (await olla.request("/olla/lmdeploy/v1/chat/completions", chatInit())).arrayBuffer();
    await Promise.resolve();
    assert.deepEqual(accessLines(olla.logs).map((line) => line.route), [
      "/internal/status",
      "/olla/models/*",
      "/olla/lmdeploy/health",
      "unmatched",
      "/olla/lmdeploy/v1/chat/completions",
    ]);
  });

  test("a provider route's local answer carries its backend type", async () => {
    const olla = inProcessOlla(NO_LIMITS + ENDPOINT, answer);
    const response = await olla.request("/olla/lmdeploy/health");
    assert.equal(response.headers.get("x-olla-backend-type"), "lmdeploy");
    assert.equal(response.headers.get("x-olla-endpoint"), null);
  });
});
