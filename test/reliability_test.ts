// deno-lint-ignore-file no-non-null-assertion
/**
 * Reliability against hostile backends and clients, over real sockets on both runtimes:
 * redirects are never followed, JSON escapes cannot dodge model_filter, malformed or
 * oversized upstream heads are the upstream's fault, and no credential or internal URL
 * reaches a client.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import process from "node:process";
import { describe, test } from "node:test";
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
import { IS_BUN, MAIN, runArgs, startOlla as startOllaProcess } from "./_olla_process.ts";
import { serve } from "./_serve.ts";
import { type FakeLmdeploy, startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { type RawFault, startRawServer } from "./fakes/raw_server.ts";

const SECRET = "sk-endpoint-secret-4711";

/** A server that records every request it gets: where a redirect would lead. */
async function startElsewhere() {
  const seen: { path: string; headers: Headers }[] = [];
  const server = await serve((request) => {
    seen.push({ path: new URL(request.url).pathname, headers: request.headers });
    return Response.json({ status: "healthy", object: "list", data: [{ id: "evil-model" }] });
  });
  return { ...server, seen };
}

describe("redirects", () => {
  test("a probe answered with a redirect is unhealthy with its reason; credentials stay home", async () => {
    const elsewhere = await startElsewhere();
    const redirecting = await serve((request) =>
      new Response(null, {
        status: 302,
        headers: { location: `${elsewhere.url}${new URL(request.url).pathname}` },
      })
    );
    const olla = await startOlla(configYaml([endpointYaml(
      "gpu",
      redirecting.url,
      `        auth: { type: bearer, token: "${SECRET}" }\n        headers: { X-Tenant: tenant-secret }\n`,
    )]));
    try {
      await until(() => olla.service.registry.endpoints[0].status === "unhealthy", 3_000);
      const status = await (await fetch(`${olla.url}/internal/status/endpoints`)).json();
      assert.match(JSON.stringify(status), /redirect/i, "the reason names the redirect");
      assert.equal(elsewhere.seen.length, 0, "nothing was sent to the redirect's target");
      const models = await (await fetch(`${olla.url}/olla/models`)).json();
      assert.ok(!JSON.stringify(models).includes("evil-model"));
    } finally {
      await olla.close();
      await redirecting.close();
      await elsewhere.close();
    }
  });

  test("a proxied request's redirect is relayed to the client, not followed", async () => {
    const elsewhere = await startElsewhere();
    await withOllaAndFakes(
      [{}],
      ([url]) =>
        configYaml([
          endpointYaml("gpu", url, `        auth: { type: bearer, token: "${SECRET}" }\n`),
        ]),
      async (olla, [fake]) => {
        // The client itself must not follow it either, to see what olla-ts relayed.
        const response = await fetch(`${olla.url}/olla/lmdeploy/v1/chat/completions`, {
          method: "POST",
          redirect: "manual",
          headers: {
            "content-type": "application/json",
            "x-fake-fault": `redirect:${elsewhere.url}/v1/chat/completions`,
          },
          body: JSON.stringify({ model: FAKE_MODEL, messages: [] }),
        });
        assert.equal(response.status, 307);
        assert.equal(response.headers.get("location"), `${elsewhere.url}/v1/chat/completions`);
        await response.body?.cancel();
        assert.equal(fake.count("/v1/chat/completions"), 1);
        assert.equal(elsewhere.seen.length, 0);
      },
    );
    await elsewhere.close();
  });
});

describe("model_filter and JSON escapes", () => {
  test("an escaped key still routes by the model it names, so an excluded model stays excluded", async () => {
    await withOllaAndFakes(
      [{ adapters: ["secret-lora"] }],
      ([url]) =>
        configYaml([
          endpointYaml("gpu", url, "        model_filter: { exclude: [secret-lora] }\n"),
        ]),
      async (olla, [fake]) => {
        const escapedKey = '{"mod\\u0065l":"secret-lora","messages":[]}';
        const escapedValue = '{"model":"secret\\u002dlora","messages":[]}';
        for (const body of [escapedKey, escapedValue]) {
          const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", body);
          assert.equal(response.status, 404, body);
          await response.body?.cancel();
        }
        assert.equal(fake.count("/v1/chat/completions"), 0, "the excluded model was never asked");
        const allowed = await post(
          olla,
          "/olla/lmdeploy/v1/chat/completions",
          `{"mod\\u0065l":"${FAKE_MODEL.replace("/", "\\/")}","messages":[]}`,
        );
        assert.equal(allowed.status, 200, "an escaped key names an allowed model just as well");
        assert.equal(allowed.headers.get("x-olla-model"), FAKE_MODEL);
        await allowed.body?.cancel();
      },
    );
  });
});

describe("malformed upstream answers", () => {
  for (const fault of ["many-headers", "huge-header"] as RawFault[]) {
    test(`${fault}: fail over to a sound endpoint and penalise the one that sent it`, async () => {
      const broken = await startRawServer(fault);
      await withOllaAndFakes(
        [{}],
        ([url]) =>
          configYaml(
            [
              endpointYaml("broken", broken.url, "        priority: 200\n"),
              endpointYaml("sound", url, "        priority: 100\n"),
            ],
            "proxy:\n  load_balancer: priority\n",
          ),
        async (olla, [sound]) => {
          const response = await chat(olla);
          const text = await response.text();
          assert.equal(response.status, 200, text);
          assert.equal(response.headers.get("x-olla-endpoint"), "sound");
          assert.equal(response.headers.get("x-huge"), null, "no oversized header relayed");
          assert.equal(response.headers.get("x-extra-1"), null);
          assert.equal(sound.count("/v1/chat/completions"), 1);
          assert.ok(broken.served >= 1, "the broken endpoint was tried first");
          const endpoint = olla.service.registry.endpoints.find((e) => e.name === "broken");
          assert.ok(
            endpoint && endpoint.failures > 0,
            "the broken endpoint is penalised",
          );
        },
      );
      await broken.close();
    });
  }
});

describe("secrets and internals in answers", () => {
  test("X-Goog-Api-Key from a client is never forwarded", async () => {
    await withOllaAndFakes([{}], ([url]) => configYaml([endpointYaml("gpu", url)]), async (
      olla,
      [fake],
    ) => {
      const response = await chat(olla, {}, { "x-goog-api-key": "client-google-key" });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      const sent = fake.requests.find((r) => r.path === "/v1/chat/completions");
      assert.equal(sent?.headers.get("x-goog-api-key"), null);
    });
  });

  test("a backend error body that echoes the endpoint's token reaches the client redacted", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) =>
        configYaml([
          endpointYaml("gpu", url, `        auth: { type: bearer, token: "${SECRET}" }\n`),
        ]),
      async (olla, [fake]) => {
        for (const status of [400, 503]) {
          const response = await chat(olla, {}, { "x-fake-fault": `echo-headers:${status}` });
          const text = await response.text();
          assert.equal(response.status, status);
          assert.ok(
            fake.requests.some((r) => r.headers.get("authorization") === `Bearer ${SECRET}`),
          );
          assert.ok(!text.includes(SECRET), `the token is not in the ${status} body: ${text}`);
          assert.match(text, /request_headers/, "the rest of the body is still relayed");
        }
      },
    );
  });

  test("a 502 for an unreachable endpoint does not name the backend's address", async () => {
    const gone = await serve(() => new Response("never"));
    const url = gone.url;
    await gone.close();
    const olla = await startOlla(configYaml([endpointYaml("gpu", url)]), {
      waitForHealthy: false,
    });
    try {
      // Routable while still unknown: the request itself finds the endpoint down.
      const response = await chat(olla);
      const text = await response.text();
      assert.ok(response.status === 502 || response.status === 503, `${response.status} ${text}`);
      assert.ok(!text.includes(url) && !text.includes(`:${new URL(url).port}`), text);
    } finally {
      await olla.close();
    }
  });
});

/** A fake on `port` again; retried while the port is briefly held by another socket. */
async function restartOn(port: number): Promise<FakeLmdeploy> {
  for (let attempt = 0;; attempt++) {
    try {
      return await startFakeLmdeploy({ port });
    } catch (error) {
      if (attempt >= 40) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe("a restarted backend", () => {
  test("is used at once when nothing else can serve, not after the probe back-off", async () => {
    const first = await startFakeLmdeploy();
    const port = first.port;
    const olla = await startOlla(configYaml([endpointYaml("gpu", first.url)]));
    let second: FakeLmdeploy | undefined;
    try {
      const gpu = () => olla.service.registry.get("gpu")!;
      await first.close();
      // Down long enough that failing probes back off: the next one is over 800 ms away.
      await until(
        () =>
          gpu().consecutiveProbeFailures >= 4 && Date.now() - (gpu().lastCheckAt ?? 0) > 250 &&
          (gpu().nextCheckAt ?? 0) - Date.now() > 800,
        10_000,
        "a long probe back-off",
      );
      second = await restartOn(port);
      const response = await chat(olla);
      assert.equal(
        response.status,
        200,
        `${await response.clone().text()} (status ${gpu().status}, ${gpu().lastError})`,
      );
      await response.body?.cancel();
      assert.equal(second.count("/v1/chat/completions"), 1);
      assert.equal(gpu().consecutiveProbeFailures, 0);
      const { lastCheckAt, nextCheckAt } = gpu();
      assert.ok(
        nextCheckAt! - lastCheckAt! <= 200,
        `after the successful probe, the next comes at check_interval (${
          nextCheckAt! - lastCheckAt!
        } ms)`,
      );
    } finally {
      await olla.close();
      await second?.close();
    }
  });

  test("while everything is down, a flood of requests costs one early probe, not one each", async () => {
    const gone = await startFakeLmdeploy();
    const olla = await startOlla(
      configYaml([
        endpointYaml("gpu", gone.url).replace("check_interval: 200ms", "check_interval: 5s"),
      ]),
    );
    try {
      await gone.close();
      await until(() => olla.service.registry.get("gpu")?.status === "offline", 10_000);
      // Past the early-probe gap since the last check.
      await until(() => Date.now() - olla.service.registry.get("gpu")!.lastCheckAt! > 1_100, 3_000);
      const before = olla.service.registry.get("gpu")!.lastCheckAt;
      const statuses = await Promise.all(Array.from({ length: 20 }, async () => {
        const response = await chat(olla);
        await response.body?.cancel();
        return response.status;
      }));
      assert.ok(statuses.every((status) => status === 503 || status === 502), String(statuses));
      const after = olla.service.registry.get("gpu")!.lastCheckAt!;
      assert.ok(after > before!, "one early probe ran");
      const again = await chat(olla);
      await again.body?.cancel();
      assert.equal(olla.service.registry.get("gpu")!.lastCheckAt, after, "no probe within the gap");
    } finally {
      await olla.close();
    }
  });
});

describe("request bodies held in memory", () => {
  test("past server.request_limits.max_buffered_bytes a new body gets 503 with Retry-After", async () => {
    await withOllaAndFakes(
      [{}],
      ([url]) =>
        configYaml(
          [endpointYaml("gpu", url)],
          "",
        ).replace(
          "  request_logging: true\n",
          "  request_logging: true\n  request_limits: { max_buffered_bytes: 1MB }\n",
        ),
      async (olla, [fake]) => {
        const big = { messages: [{ role: "user", content: "x".repeat(700_000) }] };
        // Held until its answer's head arrives, 800 ms from now.
        const slow = chat(olla, big, { "x-fake-ttft-ms": "800" });
        await until(() => fake.active === 1, 3_000, "the first body forwarded");
        const refused = await chat(olla, big);
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get("retry-after"), "1");
        assert.match(await refused.text(), /max_buffered_bytes/);
        const small = await chat(olla);
        assert.equal(small.status, 200, "small bodies still fit");
        await small.body?.cancel();
        const first = await slow;
        assert.equal(first.status, 200);
        await first.body?.cancel();
        const again = await chat(olla, big);
        assert.equal(again.status, 200, "the bytes were given back");
        await again.body?.cancel();
        assert.equal(fake.count("/v1/chat/completions"), 3);
      },
    );
  });
});

describe("out of file descriptors", () => {
  test("under ulimit -n 256, 400 idle connections neither kill olla-ts nor cut its requests", async () => {
    const fake = await startFakeLmdeploy();
    const olla = await startOllaProcess({
      config: "server:\n  host: 127.0.0.1\n  port: 0\n  request_logging: false\n" +
        "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n" +
        `discovery:\n  static:\n    endpoints:\n      - { name: gpu, url: "${fake.url}", type: lmdeploy, check_interval: 1h }\n`,
      command: ["sh", [
        "-c",
        'ulimit -n 256 && exec "$@"',
        "sh",
        process.execPath,
        ...runArgs(MAIN, []),
      ]],
    });
    const base = `http://127.0.0.1:${olla.port}`;
    const sockets: Socket[] = [];
    try {
      await until(() => fake.count("/v1/models") > 0, 10_000, "the endpoint discovered");
      // In flight across the exhaustion: answered after 1.5 s.
      const inFlight = post(base, "/olla/lmdeploy/v1/chat/completions", {
        model: FAKE_MODEL,
        messages: [],
      }, { "x-fake-ttft-ms": "1500" });
      await until(() => fake.active === 1, 3_000);
      for (let i = 0; i < 400; i++) {
        const socket = connect({ host: "127.0.0.1", port: olla.port });
        socket.on("error", () => {});
        sockets.push(socket);
      }
      const answered = await inFlight;
      assert.equal(answered.status, 200, "the request in flight was answered");
      await answered.body?.cancel();
      for (const socket of sockets) socket.destroy();
      await until(
        () => fetch(`${base}/internal/health`).then((r) => r.ok, () => false),
        10_000,
        "accepting again once descriptors are free",
      );
      if (!IS_BUN) {
        // Bun's server keeps accepting what it can; Deno's accept loop fails and restarts.
        const metrics = await (await fetch(`${base}/internal/metrics`)).text();
        const refused = Number(/^olla_connections_refused_total (\d+)$/m.exec(metrics)?.[1]);
        assert.ok(refused > 0, "Deno's failed accepts are counted");
        assert.ok(olla.logs.some((log) => String(log.msg).startsWith("cannot accept connections")));
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      olla.signal("SIGTERM");
      const { code } = await olla.exited;
      assert.equal(code, 0, "still alive to shut down cleanly");
      await fake.close();
    }
  });
});

describe("server.idle_timeout", () => {
  test("closes an idle keep-alive connection (Bun) or says at startup it cannot (Deno); slow answers are not cut", async () => {
    const fake = await startFakeLmdeploy();
    const olla = await startOllaProcess({
      config:
        "server:\n  host: 127.0.0.1\n  port: 0\n  request_logging: false\n  idle_timeout: 1s\n" +
        "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n" +
        `discovery:\n  static:\n    endpoints:\n      - { name: gpu, url: "${fake.url}", type: lmdeploy, check_interval: 1h }\n`,
    });
    try {
      await until(() => fake.count("/v1/models") > 0, 10_000, "the endpoint discovered");
      // An answer that sends nothing for 2.5 s, longer than the idle timeout.
      const slow = await post(
        `http://127.0.0.1:${olla.port}`,
        "/olla/lmdeploy/v1/chat/completions",
        {
          model: FAKE_MODEL,
          messages: [],
        },
        { "x-fake-ttft-ms": "2500" },
      );
      assert.equal(slow.status, 200);
      assert.match(await slow.text(), /chat\.completion/);

      const socket = connect({ host: "127.0.0.1", port: olla.port });
      let received = "";
      socket.on("data", (chunk) => received += chunk);
      const closed = new Promise<number>((resolve) =>
        socket.on("close", () => resolve(Date.now()))
      );
      socket.on("error", () => {});
      socket.write("GET /internal/health HTTP/1.1\r\nhost: x\r\n\r\n");
      await until(() => received.includes("\r\n\r\n"), 3_000, "the first answer");
      const answeredAt = Date.now();
      if (IS_BUN) {
        const at = await Promise.race([
          closed,
          new Promise<number>((r) => setTimeout(() => r(-1), 8_000)),
        ]);
        assert.ok(at > 0, "the idle connection was closed");
        assert.ok(at - answeredAt >= 900, `not before the idle timeout (${at - answeredAt} ms)`);
      } else {
        const notice = olla.logs.find((log) =>
          log.msg === "configuration keys accepted but not acted on"
        );
        assert.match(String((notice?.keys as string) ?? ""), /server\.idle_timeout/);
      }
      socket.destroy();
    } finally {
      olla.signal("SIGTERM");
      await olla.exited;
      await fake.close();
    }
  });
});

describe("large request bodies", () => {
  test("a 3 MB body reaches the backend byte for byte, also on failover, and is read once", async () => {
    await withOllaAndFakes(
      [{}, {}],
      ([a, b]) =>
        configYaml(
          [
            endpointYaml("first", a, "        priority: 200\n"),
            endpointYaml("second", b, "        priority: 100\n"),
          ],
          "proxy:\n  load_balancer: priority\n",
        ),
      async (olla, [first, second]) => {
        first.fault = "status:503";
        const body = JSON.stringify({
          model: FAKE_MODEL,
          messages: [{ role: "user", content: "\u00e9".repeat(1_500_000) }],
        });
        const response = await post(olla, "/olla/lmdeploy/v1/chat/completions", body);
        assert.equal(response.status, 200, await response.clone().text());
        assert.equal(response.headers.get("x-olla-endpoint"), "second");
        await response.body?.cancel();
        const sent = (fake: FakeLmdeploy) =>
          new TextDecoder().decode(
            fake.requests.find((r) => r.path === "/v1/chat/completions")?.body,
          );
        assert.equal(sent(first), body, "the first attempt got the whole body");
        assert.equal(sent(second), body, "the failover attempt got the same bytes");
      },
    );
  });
});
