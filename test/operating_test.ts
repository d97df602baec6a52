/**
 * What an operator and their clients see when something is not right: an honest 503
 * while a backend is down or undiscovered (404 only for a model nobody serves), a scraper
 * the API's rate limit never throttles, and log levels that pick out what needs a look.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import {
  chat,
  configYaml,
  endpointYaml,
  FAKE_MODEL,
  post,
  startOlla,
  until,
  withOllaAndFakes,
} from "./_harness.ts";
import { accessLevel } from "../lib/observability/access_log.ts";
import { RequestRecord } from "../lib/proxy/request_record.ts";

describe("unknown model versus unavailable endpoints", () => {
  test("with the only LMDeploy endpoint down since startup, a chat is a 503 naming it, not a 404", async () => {
    const olla = await startOlla(configYaml([endpointYaml("gpu", "http://127.0.0.1:1")]), {
      waitForHealthy: false,
    });
    try {
      await until(() => olla.service.registry.get("gpu")?.status === "offline", 3_000);
      const response = await chat(olla);
      assert.equal(response.status, 503);
      assert.ok(Number(response.headers.get("retry-after")) >= 1);
      const body = await response.json();
      assert.match(body.error.message, /gpu: offline/);
      assert.equal(response.headers.get("x-olla-routing-reason"), "model_endpoints_unavailable");
    } finally {
      await olla.close();
    }
  });

  test("with every endpoint up and discovered, a model none serves is a 404; one down that lacked it changes nothing", async () => {
    await withOllaAndFakes(
      [{}, {}],
      ([a, b]) => configYaml([endpointYaml("a", a), endpointYaml("b", b)]),
      async (olla, [, second]) => {
        const missing = await chat(olla, { model: "no-such-model" });
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
        await second.close();
        await until(() => olla.service.registry.get("b")?.status === "offline", 3_000);
        const still = await chat(olla, { model: "no-such-model" });
        assert.equal(still.status, 404, "b's model list is known and lacks it");
        await still.body?.cancel();
      },
    );
  });
});

describe("the operator's own scraper", () => {
  test("after the API's rate limit is spent, /internal/* still answers, with no API bucket", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) =>
        `server:\n  request_logging: false\n  rate_limits: { per_ip_requests_per_minute: 20, burst_size: 20 }\n` +
        `discovery:\n  static:\n    endpoints:\n${endpointYaml("gpu", url)}`,
      async (olla) => {
        let refused = 0;
        for (let i = 0; i < 30; i++) {
          const response = await chat(olla);
          if (response.status === 429) refused++;
          await response.body?.cancel();
        }
        assert.ok(refused >= 5, `the API bucket is spent (${refused} refused)`);
        for (
          const path of ["/internal/metrics", "/internal/status", "/internal/status/endpoints"]
        ) {
          const response = await fetch(`${olla.url}${path}`);
          assert.equal(response.status, 200, path);
          assert.equal(
            response.headers.get("x-ratelimit-limit"),
            null,
            `${path} spends no API token`,
          );
          await response.body?.cancel();
        }
        const api = await chat(olla);
        assert.equal(api.status, 429);
        assert.equal(
          api.headers.get("x-ratelimit-limit"),
          "20",
          "the bucket that applied, as configured",
        );
        await api.body?.cancel();
      },
    );
  });
});

describe("log levels", () => {
  const accessOf = (logs: Record<string, unknown>[], id: string | null) =>
    logs.find((log) => log.msg === "access" && log.request_id === id);

  test("access lines: info when fine, warn for upstream faults and broken streams; debug shows routing and probes", async () => {
    await withOllaAndFakes([{}], ([url]) => configYaml([endpointYaml("gpu", url)]), async (
      olla,
    ) => {
      const ok = await chat(olla);
      await ok.text();
      const failing = await chat(olla, {}, { "x-fake-fault": "status:500" });
      await failing.text();
      const broken = await chat(olla, { stream: true }, {
        "x-fake-fault": "midstream-error",
        "x-fake-tokens": "2",
      });
      await broken.text();
      const unknown = await chat(olla, { model: "no-such-model" });
      await unknown.text();
      await until(() => olla.logs.filter((log) => log.msg === "access").length >= 4);
      const level = (response: Response) =>
        accessOf(olla.logs, response.headers.get("x-olla-request-id"))?.level;
      assert.equal(level(ok), "info");
      assert.equal(level(failing), "warn", "a backend's 5xx");
      assert.equal(level(broken), "warn", "a stream ended by an error event");
      assert.equal(level(unknown), "info", "a client's mistake");
      assert.ok(olla.logs.some((log) => log.msg === "routed" && log.level === "debug"));
      assert.ok(olla.logs.some((log) => log.msg === "probe" && log.endpoint === "gpu"));
    });
  });

  test("an error of olla-ts's own is logged at error", () => {
    const record = new RequestRecord("r1", "POST", "127.0.0.1", 0, "/x");
    record.status = 500;
    record.error = { fault: "proxy", code: "internal_error", message: "bug" };
    assert.equal(accessLevel(record), "error");
    record.error = undefined;
    record.status = 200;
    record.outcome = "shutdown";
    assert.equal(accessLevel(record), "warn");
  });
});

describe("404s that say what to do", () => {
  test("models.retrieve() with a slash in the id works through the OpenAI SDK, on both route families", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) => configYaml([endpointYaml("gpu", url)]),
      async (olla) => {
        for (const base of ["/olla/lmdeploy/v1", "/olla/openai/v1"]) {
          const client = new OpenAI({
            baseURL: `${olla.url}${base}`,
            apiKey: "unused",
            maxRetries: 0,
          });
          const model = await client.models.retrieve(FAKE_MODEL);
          assert.equal(model.id, FAKE_MODEL, base);
          assert.equal(model.object, "model");
        }
        const plain = await fetch(`${olla.url}/olla/lmdeploy/v1/models/${FAKE_MODEL}`);
        assert.equal((await plain.json()).id, FAKE_MODEL, "the slash sent as it is");
        const traversal = await fetch(
          `${olla.url}/olla/lmdeploy/v1/models/..%2F..%2F..%2Finternal%2Fstatus`,
        );
        assert.equal(traversal.status, 404, "an encoded dot segment is only a model id");
        await traversal.body?.cancel();
      },
    );
  });

  test("an unknown model names the closest ids served and where they are listed", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) => configYaml([endpointYaml("gpu", url)]),
      async (olla) => {
        const response = await chat(olla, { model: "internlm/internlm2_5-7b" });
        assert.equal(response.status, 404);
        const { error } = await response.json();
        assert.match(error.message, /did you mean 'internlm\/internlm2_5-7b-chat'\?/);
        assert.match(error.message, /GET \/olla\/lmdeploy\/v1\/models lists/);
      },
    );
  });

  test("a root /v1/ path names the prefixed base URLs; an unknown provider lists the configured ones", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) => configYaml([endpointYaml("gpu", url)]),
      async (olla) => {
        const root = await post(olla, "/v1/chat/completions", { model: FAKE_MODEL, messages: [] });
        assert.equal(root.status, 404);
        const rootMessage = (await root.json()).error.message;
        assert.match(rootMessage, /\/olla\/openai\/v1/);
        assert.match(rootMessage, /\/olla\/lmdeploy\/v1/);
        const unknown = await fetch(`${olla.url}/olla/nope/v1/models`);
        assert.equal(unknown.status, 404);
        assert.match((await unknown.json()).error.message, /\/olla\/lmdeploy\//);
      },
    );
  });
});

describe("bytes_out of olla-ts's own answers", () => {
  test("a model list, a status answer and an error are logged with their real size", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) => configYaml([endpointYaml("gpu", url)]),
      async (olla) => {
        const answers = await Promise.all(
          ["/olla/lmdeploy/v1/models", "/internal/status", "/olla/nope/v1/models"].map(
            async (path) => {
              const response = await fetch(`${olla.url}${path}`);
              const size = (await response.arrayBuffer()).byteLength;
              return {
                id: response.headers.get("x-olla-request-id"),
                size,
                length: response.headers.get("content-length"),
              };
            },
          ),
        );
        await until(() =>
          answers.every(({ id }) =>
            olla.logs.some((log) => log.msg === "access" && log.request_id === id)
          )
        );
        for (const { id, size, length } of answers) {
          const line = olla.logs.find((log) => log.msg === "access" && log.request_id === id);
          assert.ok(size > 0);
          assert.equal(line?.bytes_out, size, String(line?.path));
          assert.equal(length, String(size));
        }
      },
    );
  });
});
