/**
 * Olla's Anthropic inspector: each Messages request (and each translated answer, a stream
 * rebuilt whole) as a JSON line in <output_dir>/<date>/<session>.jsonl, private files.
 */
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { startOlla, until } from "./_harness.ts";
import { startAnthropicEngine } from "./fakes/anthropic_engine.ts";
import { parseConfig } from "../lib/config/load.ts";
import { inspectorSession } from "../lib/translate/inspector.ts";

describe("the Anthropic inspector", () => {
  test("writes the request and the rebuilt streamed answer per session; off, it writes nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "olla-inspector-"));
    const engine = await startAnthropicEngine({ models: ["sg-model"] });
    const olla = await startOlla(
      `server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n` +
        `translators:\n  anthropic:\n    inspector: { enabled: true, output_dir: "${dir}" }\n` +
        `discovery:\n  static:\n    endpoints:\n` +
        `      - { name: sg, url: "${engine.url}", type: sglang, check_interval: 1s }\n`,
    );
    try {
      await until(() => olla.service.registry.endpoints.every((e) => e.models?.size), 5_000);
      const client = new Anthropic({
        baseURL: `${olla.url}/olla/anthropic`,
        apiKey: "sk-ant-test",
        maxRetries: 0,
        defaultHeaders: { "X-Session-ID": "chat-42" },
      });
      const stream = client.messages.stream({
        model: "sg-model",
        max_tokens: 64,
        messages: [{ role: "user", content: "Hello" }],
      });
      const final = await stream.finalMessage();
      const day = new Date().toISOString().slice(0, 10);
      const file = join(dir, day, "chat-42.jsonl");
      await until(async () =>
        (await readFile(file, "utf8").catch(() => "")).split("\n").length > 2
      );
      const lines = (await readFile(file, "utf8")).trim().split("\n").map((line) =>
        JSON.parse(line)
      );
      assert.deepEqual(lines.map((line) => line.type), ["request", "response"]);
      assert.equal(lines[0].model, "sg-model");
      assert.deepEqual(lines[0].body.messages, [{ role: "user", content: "Hello" }]);
      assert.deepEqual(lines[1].body.content, final.content, "the stream rebuilt into one message");
      assert.equal(lines[1].body.stop_reason, final.stop_reason);
      assert.match(lines[1].ts, /^\d{4}-\d\d-\d\dT/);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, day))).mode & 0o777, 0o700);
      assert.ok(
        olla.logs.some((log) => String(log.msg).startsWith("the Anthropic inspector is on")),
      );
    } finally {
      await olla.close();
      await engine.close();
    }
    const quiet = await mkdtemp(join(tmpdir(), "olla-inspector-off-"));
    const engineOff = await startAnthropicEngine({ models: ["sg-model"] });
    const off = await startOlla(
      `translators:\n  anthropic:\n    inspector: { output_dir: "${quiet}" }\n` +
        `discovery:\n  static:\n    endpoints:\n      - { name: sg, url: "${engineOff.url}", type: sglang }\n`,
    );
    try {
      const response = await fetch(`${off.url}/olla/anthropic/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "sg-model",
          max_tokens: 8,
          messages: [{ role: "user", content: "x" }],
        }),
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.deepEqual(await readdir(quiet), [], "off by default");
    } finally {
      await off.close();
      await engineOff.close();
    }
  });

  test("session ids are safe file names, and system directories are refused", () => {
    const headers = (values: Record<string, string>) => new Headers(values);
    assert.equal(
      inspectorSession(headers({ "x-session-id": "abc_1-2" }), "X-Session-ID"),
      "abc_1-2",
    );
    assert.equal(
      inspectorSession(headers({ "x-session-id": "../../etc/passwd" }), "X-Session-ID"),
      "default",
    );
    assert.equal(inspectorSession(headers({ "x-request-id": "req-9" }), "X-Session-ID"), "req-9");
    assert.equal(inspectorSession(headers({}), "X-Session-ID"), "default");
    assert.throws(
      () =>
        parseConfig(
          "translators:\n  anthropic:\n    inspector: { enabled: true, output_dir: /etc/ }\n",
          {
            env: () => undefined,
            knownTypes: undefined,
          },
        ),
      /output_dir: "\/etc\/" is a system directory/,
    );
  });
});
