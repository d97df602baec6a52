/**
 * Robustness suite: thousands of malformed requests, sent over raw sockets to a real
 * olla-ts process (main.ts on this runtime) in front of the fake LMDeploy. Checks that
 * the process stays up, every answer is a well-formed HTTP response below 500 unless a
 * backend produced it, nothing reaches the backend that should not, and memory returns
 * to its idle level.
 *
 * Knobs: FUZZ_ITERATIONS (default 2000) for long runs, FUZZ_SEED to replay a run.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "node:net";
import process from "node:process";
import { describe, test } from "node:test";
import { startOlla } from "./_olla_process.ts";
import { parseResponse } from "./_raw_http.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { LMDEPLOY_PROFILE } from "../lib/profiles/built_in.ts";

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 32;

/** mulberry32: small, seedable, good enough to vary inputs reproducibly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const int = (max: number) => Math.floor(random() * max);

const METHODS = [
  "GET",
  "POST",
  "POST",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "HEAD",
  "TRACE",
  "FOO",
  "get",
];
const PATHS = [
  "/olla/lmdeploy/v1/chat/completions",
  "/olla/lmdeploy/v1/completions",
  "/olla/lmdeploy/generate",
  "/olla/lmdeploy/v1/encode",
  "/olla/lmdeploy/pooling",
  "/olla/lmdeploy/v1/models",
  "/olla/lmdeploy/health",
  "/olla/lmdeploy/v1/embeddings",
  "/olla/lmdeploy/sleep",
  "/olla/lmdeploy/terminate",
  "/olla/lmdeploy/distserve/free_cache",
  "/olla/models",
  "/olla/models/internlm/internlm2_5-7b-chat",
  "/internal/status",
  "/internal/metrics",
  "/version",
  "/",
  "/olla/",
  "/olla/nosuch/v1/models",
];
const TRAVERSALS = [
  "../",
  "..%2f",
  "%2e%2e/",
  "%2e%2e%2f",
  "%252e%252e%252f",
  "..%5c",
  "%c0%ae%c0%ae/",
  "..;/",
  "%00",
  "//",
  "./",
  "\\..\\",
  "%2f",
  "\u00e9",
];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded",
  "garbage/\u0001",
  "",
];
const MODELS = [
  '"internlm/internlm2_5-7b-chat"',
  '"unknown/model"',
  "42",
  "null",
  '"a\\u0000b"',
  '"' + "m".repeat(5000) + '"',
  '["x"]',
];

function jsonBody(): Uint8Array {
  switch (int(9)) {
    case 0:
      return Buffer.from(
        `{"model": ${pick(MODELS)}, "messages": [{"role": "user", "content": "hi"}]}`,
      );
    case 1:
      return Buffer.from('{"model": "internlm/internlm2_5-7b-chat", "messages": [');
    case 2:
      return Buffer.from("[".repeat(20_000 + int(80_000)) + "]".repeat(int(3)));
    case 3:
      return Buffer.from(
        `{"model":"internlm/internlm2_5-7b-chat","messages":${"[".repeat(5_000)}${
          "]".repeat(5_000)
        }}`,
      );
    case 4:
      return Uint8Array.from({ length: 1 + int(3000) }, () => int(256));
    case 5:
      return Buffer.from(
        `{"model":"internlm/internlm2_5-7b-chat","prompt":"${"x".repeat(70_000 + int(50_000))}"}`,
      );
    case 6:
      return Buffer.concat([
        Buffer.from('{"model":"'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from('","input":"x"}'),
      ]);
    case 7:
      return Buffer.from(
        `{"prompt":"hello","stream":${pick(["true", "false", '"yes"'])},"session_id":${
          pick(["1", "-1", '"x"', "1e400"])
        }}`,
      );
    default:
      return Buffer.from(
        `{"input": ${pick(['"hello"', '["a","b"]', "[]", "{}", "1"])}, "model": ${pick(MODELS)}}`,
      );
  }
}

function headersFor(body: Uint8Array): string[] {
  const headers = [`Host: ${pick(["127.0.0.1", "x", "", "evil.example:99999"])}`];
  if (random() < 0.9) headers.push(`Content-Type: ${pick(CONTENT_TYPES)}`);
  if (random() < 0.3) headers.push(`Authorization: Bearer client-secret-${int(1000)}`);
  if (random() < 0.2) headers.push("Cookie: session=abc", "X-Api-Key: client-key");
  if (random() < 0.2) headers.push(`X-Olla-Endpoint: spoof-${int(9)}`);
  if (random() < 0.15) {
    for (let i = 0; i < 50 + int(400); i++) headers.push(`X-Many-${i}: ${"v".repeat(int(64))}`);
  }
  if (random() < 0.08) headers.push(`X-Huge: ${"h".repeat(20_000 + int(40_000))}`);
  if (random() < 0.1) headers.push(`X-Broken:\u0001\u0002`);
  switch (int(6)) {
    case 0:
      headers.push(`Content-Length: ${body.length + int(50)}`); // promises more than it sends
      break;
    case 1:
      headers.push(`Content-Length: ${Math.max(0, body.length - int(10))}`);
      break;
    case 2:
      headers.push("Content-Length: -5");
      break;
    case 3:
      headers.push("Transfer-Encoding: chunked");
      break;
    case 4:
      headers.push("Transfer-Encoding: chunked", `Content-Length: ${body.length}`);
      break;
    default:
      headers.push(`Content-Length: ${body.length}`);
  }
  headers.push("Connection: close");
  return headers;
}

function chunked(body: Uint8Array): Uint8Array {
  const broken = int(4);
  if (broken === 0) {
    return Buffer.concat([Buffer.from(`zz\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]);
  }
  if (broken === 1) {
    return Buffer.concat([Buffer.from(`${(body.length + 100).toString(16)}\r\n`), body]);
  }
  if (broken === 2) return Buffer.concat([Buffer.from(`ffffffffffffffff\r\n`), body]);
  return Buffer.concat([
    Buffer.from(`${body.length.toString(16)}\r\n`),
    body,
    Buffer.from("\r\n0\r\n\r\n"),
  ]);
}

/** One malformed request's bytes. */
function malformedRequest(): Uint8Array {
  const method = pick(METHODS);
  let path = pick(PATHS);
  if (random() < 0.35) {
    const at = path.lastIndexOf("/") + 1;
    path = path.slice(0, at) + Array.from({ length: 1 + int(4) }, () => pick(TRAVERSALS)).join("") +
      path.slice(at);
  }
  if (random() < 0.05) path += "/" + "a".repeat(4_000 + int(8_000));
  if (random() < 0.1) path += `?${pick(["api_key=s3cret", "x=%zz", "a=1&a=2", "\u00ff"])}`;
  if (random() < 0.03) {
    path = pick(["*", "http://elsewhere/olla/lmdeploy/health", "", "olla/lmdeploy/health"]);
  }
  const body = random() < 0.85 ? jsonBody() : new Uint8Array(0);
  const headers = headersFor(body);
  const head = `${method} ${path} ${
    pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/9.9"])
  }\r\n${headers.join("\r\n")}\r\n\r\n`;
  const payload = headers.includes("Transfer-Encoding: chunked") ? chunked(body) : body;
  return Buffer.concat([Buffer.from(head, "latin1"), payload]);
}

/** Sends raw bytes; resolves with the answer text (or "" when the server closed silently). */
function send(port: number, bytes: Uint8Array): Promise<{ text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let settled = false;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString("latin1"), timedOut });
    };
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(bytes, () => {}));
    const timer = setTimeout(() => finish(true), 8_000);
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      const response = parseResponse(Buffer.concat(chunks).toString("latin1"));
      const length = Number(response.headers["content-length"] ?? NaN);
      if (
        response.status > 0 && Number.isFinite(length) &&
        Buffer.byteLength(response.body, "latin1") >= length
      ) {
        finish(false);
      }
    });
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}

async function memory(port: number): Promise<{ rss: number; heapUsed: number }> {
  return (await (await fetch(`http://127.0.0.1:${port}/internal/process`)).json()).memory;
}

const ALLOWED_UPSTREAM = new Set(
  LMDEPLOY_PROFILE.routes.filter((rule) => rule.action === "proxy").flatMap((rule) =>
    rule.methods.map((method) => `${method} /${rule.path}`)
  ),
);
// olla-ts's own requests: health probes, model lists and the engine's load (engine_metrics).
const PROBES = new Set(["GET /health", "GET /is_sleeping", "GET /v1/models", "GET /metrics"]);
/** What a runtime's own HTTP layer may answer to a request it cannot parse. */
const RUNTIME_PROTOCOL_ANSWERS = new Set([400, 405, 408, 413, 414, 431, 501, 505]);

describe("fuzz", () => {
  test(`thousands of malformed requests never crash olla-ts (${ITERATIONS} requests, seed ${SEED})`, async () => {
    const fake = await startFakeLmdeploy({ rewardModel: true });
    const olla = await startOlla({
      config: `
server:
  host: 127.0.0.1
  port: 0
  read_timeout: 500ms
  request_logging: false
  request_limits: { max_body_size: 64KB, max_header_size: 32KB }
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
proxy:
  circuit_breaker: { failure_threshold: 1000000 }
discovery:
  static:
    endpoints:
      - { name: gpu, url: "${fake.url}", type: lmdeploy, check_interval: 2s }
`,
    });
    try {
      // Warm up (JIT, pools) before the idle memory baseline.
      for (let i = 0; i < 200; i++) await send(olla.port, malformedRequest());
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const idle = await memory(olla.port);
      const problems: string[] = [];
      let answered = 0;
      let index = 0;
      const worker = async () => {
        while (index < ITERATIONS) {
          index++;
          const request = malformedRequest();
          const { text, timedOut } = await send(olla.port, request);
          const head = Buffer.from(request).subarray(0, 120).toString("latin1").split("\r\n")[0];
          if (timedOut) {
            problems.push(`no answer within 8s: ${head}`);
            continue;
          }
          if (text === "") continue; // the runtime's HTTP parser closed the connection
          const response = parseResponse(text);
          if (!/^HTTP\/1\.[01] \d{3}/.test(text)) {
            problems.push(`malformed answer to ${head}: ${text.slice(0, 80)}`);
          }
          answered++;
          // Without X-Olla-Request-ID the answer came from the runtime's HTTP parser, which
          // rejects protocol errors itself (Bun answers HTTP/9.9 with 505, as RFC 9110 says).
          const fromRuntime = response.headers["x-olla-request-id"] === undefined;
          if (fromRuntime && !RUNTIME_PROTOCOL_ANSWERS.has(response.status)) {
            problems.push(`the runtime answered ${response.status} to ${head}`);
          }
          if (
            !fromRuntime && response.status >= 500 &&
            response.headers["x-olla-endpoint"] === undefined
          ) {
            problems.push(
              `olla-ts answered ${response.status} to ${head}: ${response.body.slice(0, 200)}`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const internalErrors = olla.logs.filter((log) => log.msg === "unhandled error").slice(0, 5);
      assert.deepEqual(
        problems.slice(0, 10),
        [],
        `${problems.length} problems (seed ${SEED}); ${JSON.stringify(internalErrors)}`,
      );
      assert.ok(answered > ITERATIONS / 2, `only ${answered} answers`);

      // The process is still up and serving.
      const health = await fetch(`http://127.0.0.1:${olla.port}/internal/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();

      // Nothing reached the backend that should not have.
      for (const request of fake.requests) {
        const line = `${request.method} ${request.path}`;
        assert.ok(ALLOWED_UPSTREAM.has(line) || PROBES.has(line), `forwarded ${line}`);
        for (const name of ["authorization", "cookie", "x-api-key", "x-olla-endpoint"]) {
          assert.equal(request.headers.get(name), null, `${line} carried ${name}`);
        }
      }

      // Memory settles back near its idle level once the load stops.
      let settled = await memory(olla.port);
      const deadline = Date.now() + 15_000;
      while (settled.heapUsed > idle.heapUsed + 32 * 1024 ** 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        settled = await memory(olla.port);
      }
      assert.ok(
        settled.heapUsed <= idle.heapUsed + 32 * 1024 ** 2,
        `heap ${Math.round(settled.heapUsed / 2 ** 20)} MiB after load vs ${
          Math.round(idle.heapUsed / 2 ** 20)
        } MiB idle`,
      );
    } finally {
      olla.signal("SIGKILL");
      await olla.exited;
      await fake.close();
    }
  });
});
