/**
 * Upstream requests in flight are not capped by the runtime: Bun's fetch queues beyond
 * BUN_CONFIG_MAX_HTTP_REQUESTS (256 unless set at process start), so olla-ts relaunches
 * itself under Bun with the limit its configuration needs. Checked with olla-ts as a real
 * process in front of a fake that counts the requests it holds at once.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { until } from "./_harness.ts";
import { IS_BUN, startOlla } from "./_olla_process.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { parseConfig } from "../lib/config/load.ts";
import {
  BUN_LIMIT_VARIABLE,
  BUN_OPTIONS_VARIABLE,
  bunHeaderLimit,
  MIN_UPSTREAM_REQUESTS,
  RELAUNCHED_VARIABLE,
  relaunchEnvironment,
  upstreamRequestsNeeded,
} from "../lib/startup/bun_launch.ts";

function configOf(yaml: string) {
  return parseConfig(yaml, { env: () => undefined, knownTypes: undefined }).config;
}

const endpoint = (name: string, extra = "") =>
  `      - { name: ${name}, url: "http://127.0.0.1:1", type: lmdeploy${extra} }\n`;

describe("upstreamRequestsNeeded()", () => {
  test("sums the endpoints' concurrency limits and their own background requests", () => {
    const config = configOf(
      "discovery:\n  static:\n    endpoints:\n" +
        endpoint("a", ", max_concurrent_requests: 1000") +
        endpoint("b", ", max_concurrent_requests: 500") +
        endpoint("c"),
    );
    assert.equal(upstreamRequestsNeeded(config), 1000 + 500 + 1024 + 3 * 4);
  });

  test("never asks for less than the floor; proxy.max_upstream_connections wins", () => {
    const small = configOf(
      "discovery:\n  static:\n    endpoints:\n" + endpoint("a", ", max_concurrent_requests: 8"),
    );
    assert.equal(upstreamRequestsNeeded(small), MIN_UPSTREAM_REQUESTS);
    const fixed = configOf("proxy:\n  max_upstream_connections: 3000\n");
    assert.equal(upstreamRequestsNeeded(fixed), 3000);
  });

  test("relaunches only when the environment gives less, and never twice", () => {
    const config = configOf("proxy:\n  max_upstream_connections: 3000\n");
    const headers = `--max-http-header-size=${bunHeaderLimit(config)}`;
    assert.ok(
      bunHeaderLimit(config) > 2 * 1024 ** 2,
      "well above max_header_size: olla-ts answers 431",
    );
    const env = (values: Record<string, string>) => (name: string) => values[name];
    assert.deepEqual(relaunchEnvironment(config, env({})), {
      [BUN_LIMIT_VARIABLE]: "3000",
      [BUN_OPTIONS_VARIABLE]: headers,
      [RELAUNCHED_VARIABLE]: "1",
    });
    assert.equal(
      relaunchEnvironment(
        config,
        env({ [BUN_LIMIT_VARIABLE]: "4000", [BUN_OPTIONS_VARIABLE]: `--smol ${headers}` }),
      ),
      undefined,
      "both already given",
    );
    assert.deepEqual(
      relaunchEnvironment(
        config,
        env({ [BUN_LIMIT_VARIABLE]: "4000", [BUN_OPTIONS_VARIABLE]: "--smol" }),
      ),
      {
        [BUN_LIMIT_VARIABLE]: "4000",
        [BUN_OPTIONS_VARIABLE]: `--smol ${headers}`,
        [RELAUNCHED_VARIABLE]: "1",
      },
      "the operator's own options and larger limit are kept",
    );
    assert.equal(relaunchEnvironment(config, env({ [RELAUNCHED_VARIABLE]: "1" })), undefined);
  });
});

/** A POST over its own TCP connection; resolves to the status line's code. */
function rawChat(port: number, model: string): Promise<number> {
  const body = JSON.stringify({ model, messages: [] });
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () =>
      socket.write(
        "POST /olla/lmdeploy/v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" +
          `content-type: application/json\r\nx-fake-ttft-ms: 1500\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      ));
    let head = "";
    socket.setTimeout(20_000, () => socket.destroy(new Error("timed out")));
    socket.on("data", (chunk) => head += chunk);
    socket.on("error", reject);
    socket.on("close", () => resolve(Number(head.slice(9, 12))));
  });
}

describe("upstream concurrency", () => {
  test(
    `400 requests held by one endpoint are all in flight at once (${
      IS_BUN ? "Bun relaunches with its limit raised" : "Deno has no limit"
    })`,
    async () => {
      const fake = await startFakeLmdeploy();
      const olla = await startOlla({
        config: "server:\n  host: 127.0.0.1\n  port: 0\n  request_logging: false\n" +
          "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n" +
          `discovery:\n  static:\n    endpoints:\n      - { name: gpu, url: "${fake.url}", type: lmdeploy, check_interval: 500ms }\n`,
        // As on a machine where nothing set it: Bun's default of 256.
        env: { [BUN_LIMIT_VARIABLE]: "", [BUN_OPTIONS_VARIABLE]: "", [RELAUNCHED_VARIABLE]: "" },
      });
      try {
        await until(
          () => fake.count("/v1/models") > 0,
          10_000,
          "the endpoint discovered",
        );
        const statuses = Promise.all(
          Array.from({ length: 400 }, () => rawChat(olla.port, fake.modelName)),
        );
        await until(() => fake.maxActive >= 400, 10_000, "400 requests held at once");
        const healthy = await fetch(`http://127.0.0.1:${olla.port}/internal/status/endpoints`);
        assert.match(await healthy.text(), /"healthy"/, "probes did not queue behind the load");
        assert.deepEqual(new Set(await statuses), new Set([200]));
      } finally {
        olla.signal("SIGTERM");
        const { code } = await olla.exited;
        assert.equal(code, 0, "SIGTERM reached the relaunched process, which drained and exited");
        await fake.close();
      }
    },
  );
});

describe("request header limits", () => {
  test(
    `a 100 KB header reaches olla-ts's own limit, not the runtime's (${
      IS_BUN
        ? "Bun relaunched with --max-http-header-size"
        : "Deno refuses above 64 KiB: documented"
    })`,
    async () => {
      const olla = await startOlla({
        config: "server:\n  host: 127.0.0.1\n  port: 0\n  request_logging: false\n" +
          "  request_limits: { max_header_size: 200KB }\n",
        env: { [BUN_OPTIONS_VARIABLE]: "", [RELAUNCHED_VARIABLE]: "" },
      });
      try {
        const base = `http://127.0.0.1:${olla.port}`;
        const status = (size: number) =>
          fetch(`${base}/internal/health`, { headers: { "x-big": "b".repeat(size) } }).then(
            async (r) => {
              await r.body?.cancel();
              return r.status;
            },
          );
        assert.equal(await status(10_000), 200);
        if (IS_BUN) {
          assert.equal(await status(100_000), 200, "under max_header_size: served");
          const over = await fetch(`${base}/internal/health`, {
            headers: { "x-big": "b".repeat(250_000) },
          });
          assert.equal(over.status, 431);
          assert.match(await over.text(), /max_header_size/, "olla-ts's own 431, in JSON");
        }
      } finally {
        olla.signal("SIGTERM");
        await olla.exited;
      }
    },
  );
});
