/**
 * What an operator and their clients see when something is not right: an honest 503
 * while a backend is down or undiscovered (404 only for a model nobody serves).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat, configYaml, endpointYaml, startOlla, until, withOllaAndFakes } from "./_harness.ts";

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
