/**
 * Scale-out over a real redis-server, two olla-ts instances in each test: a per-address
 * limit shared by both, a sticky conversation and an LMDeploy session alternating
 * between them, a node registered on one serving through the other and surviving a
 * restart of the first, load seen across instances, Redis killed mid-run (both keep
 * serving, then resync), and a slow Redis that never holds a request past
 * `cluster.timeout`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  chat,
  endpointYaml,
  FAKE_MODEL,
  inProcessOlla,
  post,
  readText,
  startOlla,
  type TestOlla,
  until,
} from "./_harness.ts";
import {
  findRedisServer,
  redisCommand,
  startDelayProxy,
  startRedis,
  type TestRedis,
} from "./_redis.ts";
import { jsonResponse } from "./fakes/fetch.ts";
import { type FakeLmdeploy, startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import type { RedisClientLike } from "../lib/cluster/redis_link.ts";
import { parseConfig } from "../lib/config/load.ts";
import { hostName } from "../lib/startup/runtime_api.ts";

const redisServer = findRedisServer();
const skip = redisServer ? false : "no redis-server installed (apt-get install redis-server)";

let prefixes = 0;
/** A key prefix of its own for each pair, so tests sharing a Redis do not meet. */
function freshPrefix(): string {
  return `olla-test-${Date.now()}-${prefixes++}:`;
}

/** The `cluster:` block of one instance. */
function clusterYaml(url: string, id: string, prefix: string, extra = ""): string {
  return `cluster:\n  redis_url: ${url}\n  instance_id: ${id}\n  key_prefix: "${prefix}"\n${extra}`;
}

/** What an instance's YAML holds besides its cluster block. */
interface InstanceShape {
  endpoints: [string, FakeLmdeploy][];
  /** `server.rate_limits` lines (indented by four). */
  rateLimits?: string;
  /** The `proxy:` section's lines (indented by two). */
  proxy?: string;
  registration?: boolean;
  /** More `server:` lines (indented by two). */
  server?: string;
}

/** A config of the given shape with the cluster block. */
function instanceYaml(shape: InstanceShape, cluster: string): string {
  const endpoints = shape.endpoints.map(([name, fake]) => endpointYaml(name, fake.url)).join("");
  return `server:
  request_logging: true
${shape.server ?? ""}  rate_limits:
${shape.rateLimits ?? "    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n"}${
    shape.proxy ? `proxy:\n${shape.proxy}` : ""
  }discovery:
${
    shape.registration
      ? "  registration:\n    enabled: true\n    defaults: { check_interval: 200ms, check_timeout: 500ms }\n"
      : ""
  }  static:
    endpoints:
${endpoints}${cluster}`;
}

async function metric(olla: TestOlla, name: string): Promise<number> {
  const text = await (await fetch(`${olla.url}/internal/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.split(" ").pop());
}

async function clusterStatus(olla: TestOlla) {
  return await (await fetch(`${olla.url}/internal/cluster`)).json();
}

const NO_ENV = { env: () => undefined, knownTypes: undefined };
const ONE_ENDPOINT = `discovery:
  static:
    endpoints:
      - { name: gpu-a, url: "http://10.0.0.1:23333", type: lmdeploy }
`;
const LIMITED = "server:\n  rate_limits: { per_ip_requests_per_minute: 60, burst_size: 2 }\n";
const chatInit = {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "m", messages: [] }),
};
const answered = () => jsonResponse(200, { object: "chat.completion", choices: [] });

describe("cluster settings", () => {
  test("cluster is off by default and its keys have Olla-style defaults", () => {
    const { config } = parseConfig("", NO_ENV);
    assert.deepEqual(config.cluster, {
      redis_url: "",
      key_prefix: "olla:",
      instance_id: "",
      timeout: 50,
      rate_limits_on_redis_failure: "local",
      share: { rate_limits: true, sticky_sessions: true, registrations: true, load: true },
    });
  });

  test("a redis_url that is not redis:// or rediss:// is refused, its password redacted", () => {
    assert.throws(
      () => parseConfig("cluster:\n  redis_url: http://user:hunter2@cache:6379\n", NO_ENV),
      (error: Error) => {
        assert.match(error.message, /cluster\.redis_url.*must use redis:\/\/ or rediss:\/\//);
        assert.match(error.message, /REDACTED/);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
  });

  test("/internal/cluster shows the instance id (host name and port by default), the URL redacted", async () => {
    const olla = inProcessOlla(
      `server:\n  port: 40123\n${ONE_ENDPOINT}cluster:\n  redis_url: redis://:hunter2@127.0.0.1:1\n`,
      answered,
    );
    const status = await (await olla.request("/internal/cluster")).json();
    assert.equal(status.enabled, true);
    assert.equal(status.instance_id, `${hostName()}:40123`);
    assert.equal(status.redis.url, "redis://:REDACTED@127.0.0.1:1");
    assert.equal(status.redis.state, "degraded");
    assert.deepEqual(status.instances, []);
    const single = inProcessOlla(ONE_ENDPOINT, answered);
    assert.equal((await (await single.request("/internal/cluster")).json()).enabled, false);
  });

  for (
    const [policy, expected] of [
      ["local", [200, 200, 429]],
      ["open", [200, 200, 200]],
      ["closed", [503, 503, 503]],
    ] as const
  ) {
    test(`rate_limits_on_redis_failure: ${policy} decides while Redis is unreachable`, async () => {
      const olla = inProcessOlla(
        `${LIMITED}${ONE_ENDPOINT}cluster:\n  redis_url: redis://127.0.0.1:1\n` +
          `  rate_limits_on_redis_failure: ${policy}\n`,
        answered,
      );
      olla.serve("gpu-a", ["m"]);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const response = await olla.request("/olla/lmdeploy/v1/chat/completions", chatInit);
        statuses.push(response.status);
        if (response.status === 503) {
          assert.equal((await response.json()).error.code, "rate_limits_unavailable");
          assert.equal(response.headers.get("retry-after"), "1");
        } else await response.body?.cancel();
        if (policy === "open") assert.equal(response.headers.get("x-ratelimit-limit"), null);
      }
      assert.deepEqual(statuses, expected);
    });
  }
});

describe("cluster over Redis", { skip }, () => {
  let redis: TestRedis;
  let fakes: FakeLmdeploy[];
  before(async () => {
    redis = await startRedis(redisServer as string);
    fakes = await Promise.all([startFakeLmdeploy(), startFakeLmdeploy()]);
  });
  after(async () => {
    await Promise.all(fakes.map((fake) => fake.close()));
    await redis.stop();
  });

  /**
   * Both fakes in opposite orders: without shared pins, each instance's round-robin would
   * start a conversation somewhere else.
   */
  const crossed = (id: "a" | "b"): [string, FakeLmdeploy][] =>
    id === "a" ? [["e1", fakes[0]], ["e2", fakes[1]]] : [["e2", fakes[1]], ["e1", fakes[0]]];
  const STICKY_ROUND_ROBIN = "  load_balancer: round-robin\n  sticky_sessions:\n" +
    "    enabled: true\n    key_sources: [session_header]\n";

  /** Two instances over the same fakes and prefix; `configure` gives each its YAML. */
  async function pair(
    configure: (id: "a" | "b", prefix: string) => string,
  ): Promise<[TestOlla, TestOlla, () => Promise<void>]> {
    const prefix = freshPrefix();
    const a = await startOlla(configure("a", prefix));
    const b = await startOlla(configure("b", prefix));
    await until(
      async () =>
        (await clusterStatus(a)).instances.length === 1 &&
        (await clusterStatus(b)).instances.length === 1,
      5_000,
      "both instances see each other",
    );
    return [a, b, async () => void await Promise.all([a.close(), b.close()])];
  }

  test("a per-address limit holds across both instances, not per instance", async () => {
    const [a, b, close] = await pair((id, prefix) =>
      instanceYaml(
        {
          endpoints: [["e1", fakes[0]]],
          rateLimits: "    per_ip_requests_per_minute: 60\n    burst_size: 6\n",
        },
        clusterYaml(redis.url, id, prefix),
      )
    );
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const response = await chat(i % 2 === 0 ? a : b);
        await response.body?.cancel();
        statuses.push(response.status);
      }
      // One bucket of 6 for the address: 6 served in all, whichever instance took them.
      assert.deepEqual(statuses, [...Array(6).fill(200), ...Array(6).fill(429)]);
      const refused = await chat(b);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get("retry-after")) >= 1);
      assert.equal(refused.headers.get("x-ratelimit-limit"), "60");
      await refused.body?.cancel();
    } finally {
      await close();
    }
  });

  for (
    const [scope, limits, path, headers] of [
      ["global", "    global_requests_per_minute: 60\n    per_ip_requests_per_minute: 0\n", "", {}],
      [
        "per-key",
        "    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n" +
        "    per_key_requests_per_minute: 60\n",
        "",
        { authorization: "Bearer sk-team-a-12345" },
      ],
      [
        "health",
        "    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n" +
        "    health_requests_per_minute: 60\n",
        "/internal/health",
        {},
      ],
    ] as const
  ) {
    test(`the ${scope} bucket is one bucket across both instances`, async () => {
      const [a, b, close] = await pair((id, prefix) =>
        instanceYaml(
          {
            endpoints: [["e1", fakes[0]]],
            rateLimits: `${limits}    burst_size: 3\n`,
            server: scope === "per-key"
              ? '  auth: { enabled: true, keys: [{ name: team-a, key: "sk-team-a-12345" }] }\n'
              : "",
          },
          clusterYaml(redis.url, id, prefix),
        )
      );
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 6; i++) {
          const olla = i % 2 === 0 ? a : b;
          const response = path === ""
            ? await chat(olla, {}, headers)
            : await fetch(`${olla.url}${path}`);
          await response.body?.cancel();
          statuses.push(response.status);
        }
        assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
      } finally {
        await close();
      }
    });
  }

  test("each cluster.share switch keeps its state per instance when off", async () => {
    const [a, b, close] = await pair((id, prefix) =>
      instanceYaml(
        {
          endpoints: crossed(id),
          rateLimits: "    per_ip_requests_per_minute: 60\n    burst_size: 3\n",
          proxy: STICKY_ROUND_ROBIN,
        },
        clusterYaml(
          redis.url,
          id,
          prefix,
          "  share: { rate_limits: false, sticky_sessions: false }\n",
        ),
      )
    );
    try {
      const statuses: number[] = [];
      const served = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const response = await chat(i % 2 === 0 ? a : b, {}, { "x-olla-session-id": "c" });
        await response.body?.cancel();
        statuses.push(response.status);
        if (response.ok) served.add(response.headers.get("x-olla-endpoint") ?? "");
      }
      // Three each, and each instance pinned the conversation where its own rotation began.
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429, 429]);
      assert.deepEqual([...served].sort(), ["e1", "e2"]);
    } finally {
      await close();
    }
  });

  test("a sticky conversation alternating between instances stays on one endpoint", async () => {
    const [a, b, close] = await pair((id, prefix) =>
      instanceYaml(
        {
          endpoints: crossed(id),
          proxy: STICKY_ROUND_ROBIN,
        },
        clusterYaml(redis.url, id, prefix),
      )
    );
    try {
      const served: string[] = [];
      for (let i = 0; i < 6; i++) {
        const response = await chat(i % 2 === 0 ? a : b, {}, { "x-olla-session-id": "conv-1" });
        await response.body?.cancel();
        assert.equal(response.status, 200);
        served.push(response.headers.get("x-olla-endpoint") ?? "");
      }
      assert.deepEqual(served, Array(6).fill(served[0]), `served by ${served.join(", ")}`);
      // LMDeploy's session_id pins the same way, sticky sessions or not.
      const sessions: string[] = [];
      for (let i = 0; i < 4; i++) {
        const response = await chat(i % 2 === 0 ? b : a, { session_id: 77 });
        await response.body?.cancel();
        sessions.push(response.headers.get("x-olla-endpoint") ?? "");
      }
      assert.deepEqual(sessions, Array(4).fill(sessions[0]), `served by ${sessions.join(", ")}`);
    } finally {
      await close();
    }
  });

  test("a node registered on one instance serves through the other and survives a restart of the first", async () => {
    const node = await startFakeLmdeploy({ modelName: "registered/only-model" });
    const prefix = freshPrefix();
    const yaml = (id: string) =>
      instanceYaml(
        { endpoints: [["e1", fakes[0]]], registration: true },
        clusterYaml(redis.url, id, prefix),
      );
    let a = await startOlla(yaml("a"));
    const b = await startOlla(yaml("b"));
    try {
      const added = await post(a, "/nodes/add", {
        url: node.url,
        status: { models: ["registered/only-model"] },
      });
      assert.equal(await added.json(), "Added successfully");
      const started = Date.now();
      await until(
        async () => node.url in await (await fetch(`${b.url}/nodes/status`)).json(),
        1_000,
        "the node is visible on the other instance within a second",
      );
      assert.ok(Date.now() - started <= 1_000);
      const name = new URL(node.url).host;
      await until(() => b.service.registry.get(name)?.status === "healthy", 5_000);
      const through = await chat(b, { model: "registered/only-model" });
      assert.equal(through.status, 200, await readText(through.clone()));
      assert.equal(through.headers.get("x-olla-endpoint"), name);
      await through.body?.cancel();

      await a.close();
      a = await startOlla(yaml("a"));
      await until(
        () => a.service.registry.get(name)?.status === "healthy",
        5_000,
        "the restarted instance has the node again",
      );
      const afterRestart = await chat(a, { model: "registered/only-model" });
      assert.equal(afterRestart.status, 200);
      await afterRestart.body?.cancel();

      const removed = await post(b, "/nodes/remove", { url: node.url });
      assert.equal(await removed.json(), "Deleted successfully");
      await until(
        async () => !(node.url in await (await fetch(`${a.url}/nodes/status`)).json()),
        1_000,
        "the removal reaches the other instance",
      );
    } finally {
      await Promise.all([a.close(), b.close(), node.close()]);
    }
  });

  test("two instances given the same instance_id still see and hear each other", async () => {
    const node = await startFakeLmdeploy();
    const [a, b, close] = await pair((_id, prefix) =>
      instanceYaml(
        { endpoints: [["e1", fakes[0]]], registration: true },
        clusterYaml(redis.url, "same-name", prefix),
      )
    );
    try {
      assert.equal((await clusterStatus(a)).instances[0].id, "same-name");
      await post(a, "/nodes/add", { url: node.url, status: { models: [FAKE_MODEL] } });
      await until(
        async () => node.url in await (await fetch(`${b.url}/nodes/status`)).json(),
        1_000,
        "b applies a's change although both carry one name",
      );
    } finally {
      await close();
      await node.close();
    }
  });

  test("least-connections counts the requests the other instance has in flight", async () => {
    const [a, b, close] = await pair((id, prefix) =>
      instanceYaml(
        {
          endpoints: id === "a" ? [["e1", fakes[0]]] : [["e1", fakes[0]], ["e2", fakes[1]]],
          proxy: "  load_balancer: least-connections\n",
        },
        clusterYaml(redis.url, id, prefix),
      )
    );
    const held = Array.from(
      { length: 3 },
      () => chat(a, { stream: true }, { "x-fake-ttft-ms": "3000" }),
    );
    try {
      await until(
        async () => {
          const [peer] = (await clusterStatus(b)).instances;
          return peer?.endpoints.find((e: { name: string }) => e.name === "e1")?.inflight === 3;
        },
        3_000,
        "b sees a's three requests at e1",
      );
      for (let i = 0; i < 2; i++) {
        const response = await chat(b);
        await response.body?.cancel();
        assert.equal(response.headers.get("x-olla-endpoint"), "e2");
      }
    } finally {
      await Promise.all((await Promise.all(held)).map((r) => r.body?.cancel()));
      await close();
    }
  });
  test("most requests spend a local lease: Redis is asked about once per lease, not per request", async () => {
    const { createClient } = await import("@redis/client");
    let scripts = 0;
    const counting = (url: string) => {
      const client = createClient({ url, disableOfflineQueue: true }) as unknown as RedisClientLike;
      const send = client.sendCommand.bind(client);
      client.sendCommand = <T>(args: readonly string[]) => {
        if (args[0] === "EVAL" || args[0] === "EVALSHA") {
          if (args.slice(3).some((arg) => arg.includes(":rl:"))) scripts++;
        }
        return send<T>(args);
      };
      return Promise.resolve(client);
    };
    const olla = await startOlla(
      instanceYaml(
        {
          endpoints: [["e1", fakes[0]]],
          rateLimits: "    per_ip_requests_per_minute: 60000\n    burst_size: 1000\n",
        },
        clusterYaml(redis.url, "solo", freshPrefix()),
      ),
      { createRedisClient: counting },
    );
    try {
      await until(async () => (await clusterStatus(olla)).redis.state === "connected", 5_000);
      const requests = 60;
      await Promise.all(Array.from({ length: requests }, async () => {
        const response = await chat(olla);
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }));
      // Leases double from 1 to the allowance (burst / 10 = 100) while they run out quickly.
      assert.ok(scripts > 0 && scripts <= requests / 4, `${scripts} script calls`);
    } finally {
      await olla.close();
    }
  });

  test("a dead instance's entry expires; the others stop showing it", async () => {
    const prefix = freshPrefix();
    const olla = await startOlla(
      instanceYaml({ endpoints: [["e1", fakes[0]]] }, clusterYaml(redis.url, "alive", prefix)),
    );
    try {
      const ghost = JSON.stringify({
        id: "ghost",
        endpoints: [{ url: fakes[0].url, inflight: 9 }],
      });
      // As a crashed instance leaves it: its last heartbeat, due to expire in 1.5 s.
      await redisCommand(redis.port, [
        "HSET",
        `${prefix}instances`,
        "ghost",
        `${Date.now() + 1_500} ${ghost}`,
      ]);
      await until(
        async () =>
          (await clusterStatus(olla)).instances.some((i: { id: string }) => i.id === "ghost"),
        3_000,
        "the ghost is seen while its entry lives",
      );
      await until(
        async () => (await clusterStatus(olla)).instances.length === 0,
        3_000,
        "the ghost is gone once its entry expired",
      );
      assert.equal(
        await redisCommand(redis.port, ["HEXISTS", `${prefix}instances`, "ghost"]),
        ":0\r\n",
      );
    } finally {
      await olla.close();
    }
  });
});

describe("cluster with a password", { skip }, () => {
  test("the password comes from the URL (or a ${VAR}) and is never shown", async () => {
    const redis = await startRedis(redisServer as string, ["--requirepass", "s3cret-pass"]);
    const fake = await startFakeLmdeploy();
    try {
      const olla = await startOlla(
        instanceYaml(
          { endpoints: [["e1", fake]] },
          clusterYaml(`redis://:\${REDIS_PASSWORD}@127.0.0.1:${redis.port}`, "p", freshPrefix()),
        ),
        { env: { REDIS_PASSWORD: "s3cret-pass" } },
      );
      try {
        await until(async () => (await clusterStatus(olla)).redis.state === "connected", 5_000);
        const status = await clusterStatus(olla);
        assert.equal(status.redis.url, `redis://:REDACTED@127.0.0.1:${redis.port}`);
        assert.ok(!olla.rawLogs.some((line) => line.includes("s3cret-pass")));
      } finally {
        await olla.close();
      }
    } finally {
      await Promise.all([fake.close(), redis.stop()]);
    }
  });
});

describe("cluster when Redis fails", { skip }, () => {
  test("Redis killed mid-run: both instances keep serving on their own state, then resync", async () => {
    const redis = await startRedis(redisServer as string);
    const fake = await startFakeLmdeploy();
    const node = await startFakeLmdeploy({ modelName: "registered/during-outage" });
    const prefix = freshPrefix();
    const yaml = (id: string) =>
      instanceYaml(
        {
          endpoints: [["e1", fake]],
          rateLimits: "    per_ip_requests_per_minute: 600\n    burst_size: 100\n",
          registration: true,
        },
        clusterYaml(redis.url, id, prefix, "  timeout: 50ms\n"),
      );
    const a = await startOlla(yaml("a"));
    const b = await startOlla(yaml("b"));
    try {
      await until(async () => (await clusterStatus(a)).instances.length === 1, 5_000);
      assert.equal(await metric(a, "olla_cluster_degraded"), 0);
      await redis.kill();
      await until(
        async () => (await metric(a, "olla_cluster_degraded")) === 1,
        5_000,
        "a notices Redis is gone",
      );
      for (const olla of [a, b, a, b]) {
        const response = await chat(olla);
        assert.equal(response.status, 200, await readText(response.clone()));
        assert.ok(response.headers.get("x-ratelimit-limit"), "local limits still apply");
        await response.body?.cancel();
      }
      assert.ok((await metric(a, "olla_cluster_redis_errors_total")) > 0);
      const warned = a.logs.filter((l) =>
        l.msg === "redis unavailable; using this instance's own state"
      );
      assert.equal(warned.length, 1, "logged once");
      assert.equal((await clusterStatus(a)).redis.state, "degraded");

      // Registered while Redis is down: pending on a, written when Redis is back.
      const added = await post(a, "/nodes/add", {
        url: node.url,
        status: { models: ["registered/during-outage"] },
      });
      assert.equal(await added.json(), "Added successfully");

      await redis.restart();
      await until(
        async () =>
          (await metric(a, "olla_cluster_degraded")) === 0 &&
          (await metric(b, "olla_cluster_degraded")) === 0,
        10_000,
        "both rejoin",
      );
      await until(
        async () => node.url in await (await fetch(`${b.url}/nodes/status`)).json(),
        10_000,
        "the node registered during the outage reaches the other instance",
      );
      assert.ok(a.logs.some((l) => l.msg === "redis is back; resyncing shared state"));
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([fake.close(), node.close(), redis.stop()]);
    }
  });

  test("a slow Redis never holds a request longer than cluster.timeout", async () => {
    const redis = await startRedis(redisServer as string);
    const proxy = await startDelayProxy(redis.port);
    const fake = await startFakeLmdeploy();
    const prefix = freshPrefix();
    const yaml = (id: string) =>
      instanceYaml(
        {
          endpoints: [["e1", fake]],
          rateLimits: "    per_ip_requests_per_minute: 6000\n    burst_size: 1000\n",
          proxy: "  sticky_sessions:\n    enabled: true\n    key_sources: [session_header]\n",
        },
        clusterYaml(proxy.url, id, prefix, "  timeout: 50ms\n"),
      );
    const a = await startOlla(yaml("a"));
    const b = await startOlla(yaml("b"));
    try {
      await until(async () => (await clusterStatus(a)).instances.length === 1, 5_000);
      proxy.delayMs = 2_000;
      // Each request needs Redis: a new conversation to look up, a client's first lease.
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        const response = await chat(i % 2 === 0 ? a : b, {}, { "x-olla-session-id": `s${i}` });
        await response.body?.cancel();
        const took = Date.now() - started;
        assert.equal(response.status, 200);
        // Far below Redis's 2 s: the request went on after the 50 ms timeout (or at once).
        assert.ok(took < 1_000, `request ${i} took ${took} ms`);
      }
      assert.equal(await metric(a, "olla_cluster_degraded"), 1);
      proxy.delayMs = 0;
      await until(
        async () => (await metric(a, "olla_cluster_degraded")) === 0,
        10_000,
        "a rejoins once Redis answers in time",
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
      await Promise.all([fake.close(), redis.stop()]);
    }
  });
});
