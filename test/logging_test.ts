/**
 * Logging never stalls proxying: olla-ts as a real process whose stdout is a pipe nobody
 * reads keeps answering, drops and counts the lines that do not fit its buffer, and says
 * so once its output drains.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { describe, test } from "node:test";
import { until } from "./_harness.ts";
import { MAIN, runArgs, tempFile } from "./_olla_process.ts";
import { freePort } from "./_serve.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";

describe("logging with a blocked stdout", () => {
  test("a child whose stdout nobody reads keeps serving, and counts the lines it drops", async () => {
    const fake = await startFakeLmdeploy();
    const port = await freePort();
    const config = await tempFile(
      "config.yaml",
      `server:\n  host: 127.0.0.1\n  port: ${port}\n` +
        "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n" +
        `discovery:\n  static:\n    endpoints:\n      - { name: gpu, url: "${fake.url}", type: lmdeploy }\n`,
    );
    const child = spawn(process.execPath, runArgs(MAIN, ["--config", config]), {
      env: { ...process.env, OLLA_LOGGING_FORMAT: "json" },
      stdio: ["ignore", "pipe", "ignore"],
    });
    // Nobody reads stdout: the pipe fills after 64 KiB and stays full.
    child.stdout.pause();
    const base = `http://127.0.0.1:${port}`;
    try {
      await until(
        () =>
          fetch(`${base}/olla/lmdeploy/v1/models`).then(
            async (r) => (await r.json()).data?.length > 0,
            () => false,
          ),
        20_000,
        "olla-ts serving",
      );
      // ~2.5 KiB access-log lines (the query string is logged, up to 2,048 characters):
      // 800 of them are well over the pipe and the writer's 1 MiB buffer.
      const query = `?pad=${"p".repeat(4_000)}`;
      let ok = 0;
      for (let batch = 0; batch < 100; batch++) {
        const statuses = await Promise.all(Array.from({ length: 8 }, async () => {
          const response = await fetch(`${base}/olla/lmdeploy/v1/chat/completions${query}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: fake.modelName, messages: [] }),
            signal: AbortSignal.timeout(5_000),
          });
          await response.arrayBuffer();
          return response.status;
        }));
        ok += statuses.filter((status) => status === 200).length;
      }
      assert.equal(ok, 800, "every request was answered while stdout was blocked");
      const metrics = await (await fetch(`${base}/internal/metrics`)).text();
      const dropped = Number(/^olla_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(dropped > 0, `dropped lines are counted (${dropped})`);

      let output = "";
      child.stdout.on("data", (chunk) => output += chunk);
      child.stdout.resume();
      await until(
        () => output.includes('"msg":"log output was blocked; lines were dropped"'),
        10_000,
        "the drop warning once stdout drains",
      );
    } finally {
      child.kill("SIGKILL");
      await fake.close();
    }
  });
});
