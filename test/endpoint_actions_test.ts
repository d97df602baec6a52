/**
 * Endpoint actions (`POST /internal/endpoints/{name}/{action}`): only with
 * proxy.allow_management_routes and, when server.auth is on, an admin key; drain takes an
 * endpoint out of rotation until undrain; sleep and wake call LMDeploy's own routes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat, endpointYaml, until, withOllaAndFakes } from "./_harness.ts";

const yaml = (url: string, extra: string) =>
  `server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n${extra}` +
  `discovery:\n  static:\n    endpoints:\n${endpointYaml("gpu", url)}`;

function act(base: string, action: string, headers: Record<string, string> = {}) {
  return fetch(`${base}/internal/endpoints/gpu/${action}`, { method: "POST", headers });
}

describe("endpoint actions", () => {
  test("are refused unless proxy.allow_management_routes is on", async () => {
    await withOllaAndFakes([{}], ([url]) => yaml(url, ""), async (olla) => {
      const answer = await (await fetch(`${olla.url}/internal/endpoints/actions`)).json();
      assert.equal(answer.enabled, false);
      const refused = await act(olla.url, "drain");
      assert.equal(refused.status, 403);
      assert.match((await refused.json()).error.message, /allow_management_routes/);
      assert.equal(olla.service.registry.get("gpu")?.held, false);
    });
  });

  test("drain, undrain, sleep and wake, with an admin key when auth is on", async () => {
    const auth =
      "  auth:\n    enabled: true\n    keys:\n      - { name: ops, key: sk-ops-1234567, admin: true }\n" +
      "      - { name: app, key: sk-app-1234567 }\n";
    await withOllaAndFakes(
      [{}],
      ([url]) => yaml(url, auth) + "proxy:\n  allow_management_routes: true\n",
      async (olla, [fake]) => {
        const admin = { authorization: "Bearer sk-ops-1234567" };
        const user = { authorization: "Bearer sk-app-1234567" };
        assert.equal((await act(olla.url, "drain", user)).status, 403, "not an admin key");
        const drained = await act(olla.url, "drain", admin);
        assert.equal(drained.status, 200);
        assert.equal((await drained.json()).held, true);
        const refused = await chat(olla, {}, user);
        assert.equal(refused.status, 503);
        assert.match((await refused.json()).error.message, /gpu: drained by an operator/);
        assert.equal((await act(olla.url, "undrain", admin)).status, 200);
        const served = await chat(olla, {}, user);
        assert.equal(served.status, 200);
        await served.body?.cancel();

        const slept = await act(olla.url, "sleep", admin);
        assert.equal(slept.status, 200, await slept.clone().text());
        assert.equal(fake.sleeping, true);
        await until(() => olla.service.registry.get("gpu")?.status === "sleeping", 3_000);
        assert.equal((await act(olla.url, "wake", admin)).status, 200);
        assert.equal(fake.sleeping, false);
        const actions = olla.logs.filter((log) => log.msg === "endpoint action").map((log) =>
          log.action
        );
        assert.deepEqual(actions, ["drain", "undrain", "sleep", "wake"]);
        assert.ok(olla.logs.every((log) => log.msg !== "endpoint action" || log.by === "ops"));
        assert.equal((await act(olla.url, "reboot", admin)).status, 404);
      },
    );
  });
});
