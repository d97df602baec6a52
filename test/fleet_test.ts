/**
 * The runtime endpoint set: LMDeploy node registration over real sockets (a node that
 * registers while still down, idempotent adds, removal while a stream runs on it,
 * refusal from outside the allowed addresses, the state file), root /v1 routes, hot
 * reload (SIGHUP swapping endpoints under a running stream, a broken file, a rate-limit
 * change), and the bounds of adding and removing an endpoint a thousand times.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import process from "node:process";
import { describe, test } from "node:test";
import {
  chat,
  configYaml,
  endpointYaml,
  FAKE_MODEL,
  inProcessOlla,
  post,
  readText,
  startOlla,
  until,
} from "./_harness.ts";
import { MAIN, runArgs, startOlla as startProcess, tempFile } from "./_olla_process.ts";
import { freePort } from "./_serve.ts";
import { jsonResponse } from "./fakes/fetch.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { parseConfig } from "../lib/config/load.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import type { RegistrationStore } from "../lib/startup/registration.ts";

const REGISTRATION = `
  registration:
    enabled: true
    defaults: { check_interval: 200ms, check_timeout: 500ms }
`;

/** A config with registration on and no static endpoints. */
function registrationYaml(extra = ""): string {
  return `server:
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
${extra}discovery:
  static:
    endpoints: []
${REGISTRATION}`;
}

describe("LMDeploy node registration", () => {
  test("a node registering while still down is probed in the background, then serves", async () => {
    const olla = await startOlla(registrationYaml(), { waitForHealthy: false });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    try {
      const started = Date.now();
      const added = await post(olla, "/nodes/add", {
        url,
        status: { models: [FAKE_MODEL], role: 1 },
      });
      assert.equal(await added.json(), "Added successfully");
      assert.ok(Date.now() - started < 1_000, "add returns at once");
      const status = await (await fetch(`${olla.url}/nodes/status`)).json();
      assert.deepEqual(status[url].models, [FAKE_MODEL]);
      assert.equal(status[url].role, 1);

      const fake = await startFakeLmdeploy({ port });
      try {
        await until(
          () => olla.service.registry.get(`127.0.0.1:${port}`)?.status === "healthy",
          5_000,
        );
        const answer = await chat(olla);
        assert.equal(answer.status, 200);
        assert.equal(answer.headers.get("x-olla-endpoint"), `127.0.0.1:${port}`);
        await answer.body?.cancel();
        const listed = await (await fetch(`${olla.url}/internal/status/endpoints`)).json();
        assert.equal(listed.endpoints[0].source, "registered");
      } finally {
        await fake.close();
      }
    } finally {
      await olla.close();
    }
  });

  test("add is idempotent on the URL; 0.0.0.0 is recorded as the address it came from", async () => {
    const olla = await startOlla(registrationYaml(), { waitForHealthy: false });
    try {
      for (let i = 0; i < 3; i++) {
        const added = await post(olla, "/nodes/add", {
          url: "http://0.0.0.0:23999",
          status: { models: ["m"], speed: 2 },
        });
        assert.equal(await added.json(), "Added successfully");
      }
      const registered = olla.service.registry.endpoints.filter((e) => e.source === "registered");
      assert.equal(registered.length, 1);
      assert.equal(registered[0].config.url, "http://127.0.0.1:23999");
      assert.equal(registered[0].config.weight, 2, "speed is the weight");
      assert.equal(
        await (await post(olla, "/nodes/remove", { url: "http://nowhere:1" })).json(),
        "Deleted successfully",
      );
      const wrongType = await fetch(`${olla.url}/nodes/add`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "{}",
      });
      assert.equal(wrongType.status, 422);
      assert.deepEqual(await wrongType.json(), {
        detail: ["Unsupported Media Type: Only 'application/json' is allowed"],
      });
    } finally {
      await olla.close();
    }
  });

  test("removing a node while a stream runs on it: the stream finishes, new requests go elsewhere", async () => {
    const a = await startFakeLmdeploy();
    const b = await startFakeLmdeploy();
    const olla = await startOlla(registrationYaml());
    try {
      for (const fake of [a, b]) {
        await post(olla, "/nodes/add", { url: fake.url, status: { models: [FAKE_MODEL] } });
      }
      const nameOf = (url: string) => url.replace("http://", "");
      await until(
        () => olla.service.registry.endpoints.every((e) => e.status === "healthy"),
        5_000,
      );
      let streamed: Response | undefined;
      for (let i = 0; i < 6 && !streamed; i++) {
        const response = await chat(olla, { stream: true }, {
          "x-fake-tokens": "20",
          "x-fake-itl-ms": "50",
        });
        if (response.headers.get("x-olla-endpoint") === nameOf(a.url)) streamed = response;
        else await response.body?.cancel();
      }
      assert.ok(streamed, "one stream landed on a");
      const removed = await post(olla, "/nodes/remove", { url: a.url });
      assert.equal(await removed.json(), "Deleted successfully");
      for (let i = 0; i < 4; i++) {
        const next = await chat(olla);
        assert.equal(next.headers.get("x-olla-endpoint"), nameOf(b.url));
        await next.body?.cancel();
      }
      const text = await readText(streamed);
      assert.match(text, /data: \[DONE\]/, "the stream on the removed node ran to its end");
      await until(() => olla.service.registry.endpoints.length === 1, 3_000);
    } finally {
      await olla.close();
      await a.close();
      await b.close();
    }
  });

  test("/nodes/* is refused outside server.internal.allowed_cidrs; terminate needs management routes", async () => {
    const olla = inProcessOlla(registrationYaml(), () => jsonResponse(200, {}));
    const add = (remote: string) =>
      olla.request("/nodes/add", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url: "http://10.0.0.9:23333", status: { models: ["m"] } }),
      }, remote);
    assert.equal((await add("203.0.113.7")).status, 403);
    assert.equal((await add("127.0.0.1")).status, 200);
    const terminate = await olla.request("/nodes/terminate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: "http://10.0.0.9:23333" }),
    });
    assert.equal(terminate.status, 403);
  });

  test("the state file round-trips in LMDeploy's format; a corrupt one is reported, not fatal", async () => {
    let saved = "";
    const store: RegistrationStore = {
      load: () => Promise.resolve(saved),
      save: (text) => {
        saved = text;
        return Promise.resolve();
      },
    };
    const first = inProcessOlla(registrationYaml(), () => jsonResponse(200, {}), {
      registrationStore: store,
    });
    first.service.registration.add({
      url: "http://10.0.0.5:23333",
      status: { models: ["m"], role: 1 },
    }, "");
    await until(() => saved !== "", 1_000);
    const table = JSON.parse(saved);
    assert.deepEqual(Object.keys(table), ["http://10.0.0.5:23333"]);
    assert.equal(
      typeof table["http://10.0.0.5:23333"],
      "string",
      "each status double-encoded, as LMDeploy writes it",
    );
    assert.deepEqual(JSON.parse(table["http://10.0.0.5:23333"]).models, ["m"]);

    const second = inProcessOlla(registrationYaml(), () => jsonResponse(200, {}), {
      registrationStore: store,
    });
    await second.service.registration.restore();
    assert.equal(second.service.registry.get("10.0.0.5:23333")?.source, "registered");

    saved = "{ not json";
    const third = inProcessOlla(registrationYaml(), () => jsonResponse(200, {}), {
      registrationStore: store,
    });
    await third.service.registration.restore();
    assert.equal(third.service.registry.endpoints.length, 0);
    assert.ok(
      third.logs.some((log) =>
        log.msg === "registration state file is not valid; starting without it"
      ),
    );
  });
});

describe("root /v1 routes", () => {
  const yaml = (on: boolean) =>
    `server:\n  root_v1_routes: ${on}\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\ndiscovery:\n  static:\n    endpoints:\n      - { name: a, url: "http://a:23333", type: lmdeploy }\n`;
  const answer = () => jsonResponse(200, { id: "x", object: "chat.completion", choices: [] });

  test("answer as /olla/openai/v1/ does when server.root_v1_routes is on, and are 404s otherwise", async () => {
    const on = inProcessOlla(yaml(true), answer);
    on.serve("a", ["m"]);
    const request = () => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [] }),
    });
    const chatted = await on.request("/v1/chat/completions", request());
    assert.equal(chatted.status, 200);
    assert.equal(on.upstream.calls.at(-1)?.url, "http://a:23333/v1/chat/completions");
    const models = await (await on.request("/v1/models")).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), ["m"]);

    const off = inProcessOlla(yaml(false), answer);
    off.serve("a", ["m"]);
    assert.equal((await off.request("/v1/chat/completions", request())).status, 404);
  });
});

describe("hot reload", () => {
  test("SIGHUP swaps the endpoints while a stream runs on the removed one", async () => {
    const a = await startFakeLmdeploy();
    const b = await startFakeLmdeploy();
    const config = (url: string, name: string) =>
      configYaml([endpointYaml(name, url)]).replace("server:\n", "server:\n  port: 0\n");
    const path = await tempFile("config.yaml", config(a.url, "gpu-a"));
    const olla = await startProcess({
      command: [process.execPath, runArgs(MAIN, ["--config", path])],
    });
    const base = `http://127.0.0.1:${olla.port}`;
    try {
      await until(
        async () =>
          (await fetch(`${base}/olla/lmdeploy/v1/models`).then((r) => r.json())).data?.length === 1,
        5_000,
      );
      const stream = await post(base, "/olla/lmdeploy/v1/chat/completions", {
        model: FAKE_MODEL,
        messages: [],
        stream: true,
      }, { "x-fake-tokens": "20", "x-fake-itl-ms": "50" });
      assert.equal(stream.headers.get("x-olla-endpoint"), "gpu-a");
      await writeFile(path, config(b.url, "gpu-b"));
      olla.signal("SIGHUP");
      await until(() => olla.logs.some((log) => log.msg === "configuration reloaded"), 5_000);
      const line = olla.logs.find((log) => log.msg === "configuration reloaded");
      assert.deepEqual(line?.added, ["gpu-b"]);
      assert.deepEqual(line?.removed, ["gpu-a"]);
      await until(async () => {
        const response = await post(base, "/olla/lmdeploy/v1/chat/completions", {
          model: FAKE_MODEL,
          messages: [],
        });
        await response.body?.cancel();
        return response.headers.get("x-olla-endpoint") === "gpu-b";
      }, 5_000);
      assert.match(await readText(stream), /data: \[DONE\]/, "the stream on gpu-a ran to its end");
      const metrics = await (await fetch(`${base}/internal/metrics`)).text();
      assert.match(metrics, /^olla_config_reloads_total\{outcome="applied"\} 1$/m);
    } finally {
      olla.signal("SIGTERM");
      await olla.exited;
      await a.close();
      await b.close();
    }
  });

  test("a broken file changes nothing: the reload answers 400 with every problem", async () => {
    const a = await startFakeLmdeploy();
    const path = await tempFile(
      "config.yaml",
      configYaml([endpointYaml("gpu-a", a.url)]).replace("server:\n", "server:\n  port: 0\n"),
    );
    const olla = await startProcess({
      command: [process.execPath, runArgs(MAIN, ["--config", path])],
    });
    const base = `http://127.0.0.1:${olla.port}`;
    try {
      await writeFile(path, "server:\n  port: [unclosed\nproxy:\n  load_balancer: round_robbin\n");
      const response = await fetch(`${base}/internal/reload`, { method: "POST" });
      assert.equal(response.status, 400);
      const outcome = await response.json();
      assert.equal(outcome.ok, false);
      assert.ok(outcome.problems.length >= 1, JSON.stringify(outcome));
      const status = await (await fetch(`${base}/internal/status/endpoints`)).json();
      assert.deepEqual(status.endpoints.map((e: { name: string }) => e.name), ["gpu-a"]);
      const metrics = await (await fetch(`${base}/internal/metrics`)).text();
      assert.match(metrics, /^olla_config_reloads_total\{outcome="invalid"\} 1$/m);
    } finally {
      olla.signal("SIGTERM");
      await olla.exited;
      await a.close();
    }
  });

  test("a reload that lowers the rate limit takes effect for the next request", async () => {
    const yaml = (perIp: number) =>
      `server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: ${perIp}, burst_size: 1 }\ndiscovery:\n  static:\n    endpoints:\n      - { name: a, url: "http://a:23333", type: lmdeploy }\n`;
    const olla = inProcessOlla(yaml(0), () => jsonResponse(200, { choices: [] }));
    olla.serve("a", ["m"]);
    const send = async () => {
      const response = await olla.request("/olla/lmdeploy/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [] }),
      });
      await response.body?.cancel();
      return response.status;
    };
    assert.deepEqual([await send(), await send(), await send()], [200, 200, 200]);
    const profiles = new ProfileSet(BUILT_IN_PROFILES);
    const next =
      parseConfig(yaml(1), { env: () => undefined, knownTypes: profiles.typeNames }).config;
    const report = olla.service.reconfigure(next, profiles);
    assert.deepEqual(report.endpoints, { added: [], removed: [], changed: [] });
    assert.deepEqual([await send(), await send()], [200, 429]);
  });

  test("new profiles, the balancer and the log level apply at once", async () => {
    const yaml =
      'discovery:\n  static:\n    endpoints:\n      - { name: a, url: "http://a:23333", type: lmdeploy }\n';
    const olla = inProcessOlla(yaml, () => jsonResponse(200, {}));
    const lmdeploy = BUILT_IN_PROFILES.find((profile) => profile.name === "lmdeploy");
    assert.ok(lmdeploy);
    const replaced = { ...lmdeploy, health: { ...lmdeploy.health, path: "/custom-health" } };
    const profiles = new ProfileSet([replaced, ...BUILT_IN_PROFILES.filter((p) => p !== lmdeploy)]);
    const next = parseConfig(
      yaml + "proxy:\n  load_balancer: round-robin\nlogging:\n  level: error\n",
      { env: () => undefined, knownTypes: profiles.typeNames },
    ).config;
    olla.service.reconfigure(next, profiles);
    assert.equal(olla.service.registry.get("a")?.profile.health.path, "/custom-health");
    const metrics = await (await olla.request("/internal/metrics")).text();
    assert.match(metrics, /^olla_info\{[^}]*balancer="round-robin"/m);
  });

  test("settings read only at startup are reported as needing a restart", () => {
    const olla = inProcessOlla("server:\n  port: 1111\n", () => jsonResponse(200, {}));
    const profiles = new ProfileSet(BUILT_IN_PROFILES);
    const next = parseConfig("server:\n  port: 2222\n", {
      env: () => undefined,
      knownTypes: profiles.typeNames,
    }).config;
    assert.deepEqual(olla.service.reconfigure(next, profiles).restartNeeded, ["server.port"]);
    const clustered = parseConfig(
      "server:\n  port: 2222\ncluster:\n  redis_url: redis://127.0.0.1:1\n",
      { env: () => undefined, knownTypes: profiles.typeNames },
    ).config;
    assert.deepEqual(olla.service.reconfigure(clustered, profiles).restartNeeded, ["cluster"]);
  });
});

describe("the endpoint set over time", () => {
  test("adding and removing an endpoint 1,000 times leaves no timers, series or state behind", async () => {
    const olla = inProcessOlla(
      'discovery:\n  static:\n    endpoints:\n      - { name: a, url: "http://a:23333", type: lmdeploy, check_interval: 1s }\n',
      () => jsonResponse(200, { object: "list", data: [{ id: "m", object: "model" }] }),
    );
    olla.service.start();
    await olla.clock.advance(10);
    const timers = olla.clock.pending;
    const scrape = async () =>
      (await (await olla.request("/internal/metrics")).text()).split("\n").length;
    await scrape(); // the scrape's own request series exist from here on
    const metrics = await scrape();
    const config = olla.config.discovery.static.endpoints[0];
    for (let i = 0; i < 1_000; i++) {
      olla.service.fleet.add({ ...config, name: `temp-${i}`, url: `http://t${i}:1` }, "static");
      // Now and then the new endpoint is probed and its models read before it goes.
      if (i % 100 === 0) await olla.clock.advance(5);
      await olla.service.fleet.remove(`temp-${i}`);
    }
    await olla.clock.advance(10);
    await olla.service.fleet.settled();
    assert.equal(olla.service.registry.endpoints.length, 1);
    assert.equal(olla.clock.pending, timers, "no timer left behind");
    const after = await scrape();
    assert.equal(after, metrics, "no metric series left behind");
    assert.deepEqual([...olla.service.registry.modelIds()], ["m"]);
    olla.service.stop();
  });
});
