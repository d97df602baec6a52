import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { chat, startOlla, type TestOlla, untilObserved } from "./_harness.ts";
import { tempFile } from "./_olla_process.ts";
import { rawRequest } from "./_raw_http.ts";
import { type FakeLmdeploy, startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { loadConfig } from "../lib/config/load.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";

function yaml(fakeUrl: string, server: string, proxy = ""): string {
  return `server:\n${server}discovery:\n  static:\n    endpoints:\n` +
    `      - { name: gpu, url: "${fakeUrl}", type: lmdeploy, check_interval: 1h }\n${proxy}`;
}

const NO_LIMITS =
  "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n";

async function withOlla(
  server: string,
  run: (olla: TestOlla, fake: FakeLmdeploy) => Promise<void>,
  options: { proxy?: string; env?: Record<string, string> } = {},
): Promise<void> {
  const fake = await startFakeLmdeploy();
  const olla = await startOlla(yaml(fake.url, server, options.proxy), { env: options.env });
  try {
    await run(olla, fake);
  } finally {
    await olla.close();
    await fake.close();
  }
}

describe("inbound API keys", () => {
  const server = NO_LIMITS +
    '  auth:\n    enabled: true\n    keys:\n      - { name: team-a, key: "${TEAM_A_KEY}" }\n' +
    '      - { name: ops, key: "${OPS_KEY}", admin: true }\n';
  const env = { TEAM_A_KEY: "sk-team-a-000111", OPS_KEY: "sk-ops-admin-999" };

  test("a missing or wrong key gets 401 in the JSON envelope with WWW-Authenticate", async () => {
    await withOlla(server, async (olla, fake) => {
      const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong-key" }, {
        "x-api-key": "wrong",
      }];
      for (const headers of attempts) {
        const response = await chat(olla, { messages: [] }, headers);
        assert.equal(response.status, 401);
        assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="olla-ts"');
        const body = await response.json();
        assert.equal(body.type, "authentication_error");
        assert.match(body.error.code, /missing_api_key|invalid_api_key/);
      }
      assert.equal(fake.count("/v1/chat/completions"), 0);
      const models = await fetch(`${olla.url}/olla/models`);
      assert.equal(models.status, 401, "model listings need a key too");
      await models.body?.cancel();
    }, { env });
  });

  test("Bearer and X-Api-Key are accepted; the key is never forwarded nor logged; its name is", async () => {
    await withOlla(server, async (olla, fake) => {
      const bearer = await chat(olla, { messages: [] }, {
        authorization: `Bearer ${env.TEAM_A_KEY}`,
      });
      assert.equal(bearer.status, 200);
      await bearer.body?.cancel();
      const apiKey = await chat(olla, { messages: [] }, { "x-api-key": env.OPS_KEY });
      assert.equal(apiKey.status, 200);
      await apiKey.body?.cancel();
      for (const request of fake.requests) {
        assert.equal(request.headers.get("authorization"), null);
        assert.equal(request.headers.get("x-api-key"), null);
      }
      await untilObserved(olla, 2);
      const access = olla.logs.filter((log) =>
        log.msg === "access" && log.route === "/olla/lmdeploy/v1/chat/completions"
      );
      assert.deepEqual(access.map((log) => log.key), ["team-a", "ops"]);
      const logs = olla.rawLogs.join("");
      assert.ok(!logs.includes(env.TEAM_A_KEY) && !logs.includes(env.OPS_KEY));
    }, { env });
  });

  test("management routes need an admin key when auth is on", async () => {
    await withOlla(server, async (olla) => {
      const asTeam = await fetch(`${olla.url}/olla/lmdeploy/sleep`, {
        method: "POST",
        headers: { authorization: `Bearer ${env.TEAM_A_KEY}`, "x-olla-target-endpoint": "gpu" },
      });
      assert.equal(asTeam.status, 403, await asTeam.clone().text());
      assert.equal((await asTeam.json()).error.code, "admin_key_required");
      const asOps = await fetch(`${olla.url}/olla/lmdeploy/sleep`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${env.OPS_KEY}`,
          "x-olla-target-endpoint": "gpu",
          "content-type": "application/json",
        },
      });
      assert.equal(asOps.status, 200);
      await asOps.body?.cancel();
    }, { env, proxy: "proxy:\n  allow_management_routes: true\n" });
  });

  test("keys load from a keys file (name:key[:admin]) and from environment variables", async () => {
    const file = await tempFile(
      "keys.txt",
      "# comment\nfile-user:sk-from-file-123\nfile-admin:sk-admin-file-456:admin\n",
    );
    const loaded = await loadConfig({
      flagPath: "config.yaml",
      env: (name) => ({ KEY: "sk-from-env-789" } as Record<string, string>)[name],
      isFile: () => Promise.resolve(true),
      readTextFile: async (path) =>
        path === "config.yaml"
          ? `server:\n  auth:\n    enabled: true\n    keys_file: ${file}\n    keys:\n      - { name: env-user, key: "\${KEY}" }\n`
          : (await import("node:fs/promises")).readFile(path, "utf8"),
      loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
    });
    assert.deepEqual(
      loaded.config.server.auth.keys.map(({ name, key, admin }) => [name, key, admin]),
      [
        ["env-user", "sk-from-env-789", false],
        ["file-user", "sk-from-file-123", false],
        ["file-admin", "sk-admin-file-456", true],
      ],
    );
    await writeFile(file, "broken line without key\n");
    await assert.rejects(
      loadConfig({
        flagPath: "config.yaml",
        env: () => undefined,
        isFile: () => Promise.resolve(true),
        readTextFile: async (path) =>
          path === "config.yaml"
            ? `server:\n  auth:\n    enabled: true\n    keys_file: ${file}\n`
            : (await import("node:fs/promises")).readFile(path, "utf8"),
        loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
      }),
      /expected 'name:key' or 'name:key:admin'/,
    );
  });
});

describe("/internal/* access", () => {
  test("loopback clients reach /internal/* by default", async () => {
    await withOlla(NO_LIMITS, async (olla) => {
      const response = await fetch(`${olla.url}/internal/status`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
  });

  test("clients outside allowed_cidrs need an admin key; liveness stays open", async () => {
    const server = NO_LIMITS + '  internal: { allowed_cidrs: ["10.0.0.0/8"] }\n' +
      "  auth:\n    enabled: true\n    keys:\n      - { name: user, key: sk-user-0000001 }\n" +
      "      - { name: ops, key: sk-ops-00000002, admin: true }\n";
    await withOlla(server, async (olla) => {
      const refused = await fetch(`${olla.url}/internal/status`);
      assert.equal(refused.status, 403);
      assert.equal((await refused.json()).error.code, "internal_forbidden");
      const user = await fetch(`${olla.url}/internal/metrics`, {
        headers: { authorization: "Bearer sk-user-0000001" },
      });
      assert.equal(user.status, 403, "a non-admin key is not enough");
      await user.body?.cancel();
      const admin = await fetch(`${olla.url}/internal/metrics`, {
        headers: { "x-api-key": "sk-ops-00000002" },
      });
      assert.equal(admin.status, 200);
      await admin.body?.cancel();
      const liveness = await fetch(`${olla.url}/internal/health`);
      assert.equal(liveness.status, 200);
      await liveness.body?.cancel();
    });
  });

  test("X-Forwarded-For is believed only from trusted proxies", async () => {
    const untrusted = NO_LIMITS + '  internal: { allowed_cidrs: ["203.0.113.0/24"] }\n';
    await withOlla(untrusted, async (olla) => {
      const spoofed = await fetch(`${olla.url}/internal/status`, {
        headers: { "x-forwarded-for": "203.0.113.5" },
      });
      assert.equal(spoofed.status, 403, "without trust the header is ignored");
      await spoofed.body?.cancel();
    });
    const trusted =
      "  rate_limits:\n    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n" +
      '    trust_proxy_headers: true\n    trusted_proxy_cidrs: ["127.0.0.0/8"]\n' +
      '  internal: { allowed_cidrs: ["203.0.113.0/24"] }\n';
    await withOlla(trusted, async (olla) => {
      const forwarded = await fetch(`${olla.url}/internal/status`, {
        headers: { "x-forwarded-for": "203.0.113.5" },
      });
      assert.equal(forwarded.status, 200);
      await forwarded.body?.cancel();
      await untilObserved(olla, 1);
      assert.equal(olla.logs.findLast((log) => log.msg === "access")?.client, "203.0.113.5");
    });
  });
});

describe("CORS", () => {
  test("is off by default", async () => {
    await withOlla(NO_LIMITS, async (olla) => {
      const response = await chat(olla, { messages: [] }, { origin: "https://app.example" });
      assert.equal(response.headers.get("access-control-allow-origin"), null);
      await response.body?.cancel();
    });
  });

  test("when on, answers preflights and exposes the X-Olla-* headers", async () => {
    const server = NO_LIMITS +
      '  cors: { enabled: true, allowed_origins: ["https://app.example"] }\n';
    await withOlla(server, async (olla) => {
      const preflight = await fetch(`${olla.url}/olla/lmdeploy/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type",
        },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
      const response = await chat(olla, { messages: [] }, { origin: "https://app.example" });
      assert.equal(response.headers.get("access-control-allow-origin"), "https://app.example");
      const exposed = response.headers.get("access-control-expose-headers") ?? "";
      for (
        const name of [
          "x-olla-endpoint",
          "x-olla-request-id",
          "x-olla-model",
          "x-ratelimit-remaining",
        ]
      ) {
        assert.ok(exposed.includes(name), `${name} exposed`);
      }
      await response.body?.cancel();
      const stranger = await chat(olla, { messages: [] }, { origin: "https://evil.example" });
      assert.notEqual(stranger.headers.get("access-control-allow-origin"), "https://evil.example");
      await stranger.body?.cancel();
    });
  });
});

describe("rate limits", () => {
  test("per client address on requests to backends, with X-RateLimit-* and 429 + Retry-After", async () => {
    const server =
      "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 60, burst_size: 3 }\n";
    await withOlla(server, async (olla) => {
      for (let i = 0; i < 3; i++) {
        const response = await chat(olla, { messages: [] });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("x-ratelimit-limit"), "60");
        assert.match(response.headers.get("x-ratelimit-remaining") ?? "", /^\d+$/);
        assert.match(response.headers.get("x-ratelimit-reset") ?? "", /^\d+$/);
        await response.body?.cancel();
      }
      const refused = await chat(olla, { messages: [] });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
      assert.equal((await refused.json()).error.code, "rate_limited");
      // As in Olla, what olla-ts answers itself spends no tokens: model lists, health and
      // status views stay available to a client that has used up its requests.
      for (
        const path of [
          "/olla/models",
          "/olla/lmdeploy/v1/models",
          "/olla/lmdeploy/health",
          "/internal/status",
        ]
      ) {
        const response = await fetch(`${olla.url}${path}`);
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get("x-ratelimit-limit"), null, path);
        await response.body?.cancel();
      }
      const liveness = await fetch(`${olla.url}/internal/health`);
      assert.equal(liveness.status, 200, "liveness has its own bucket");
      await liveness.body?.cancel();
    });
  });

  test("per API key: each key has its own bucket", async () => {
    const server =
      "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0, per_key_requests_per_minute: 60, burst_size: 2 }\n" +
      "  auth:\n    enabled: true\n    keys:\n      - { name: a, key: sk-aaaaaaaa }\n      - { name: b, key: sk-bbbbbbbb }\n";
    await withOlla(server, async (olla) => {
      const statuses = async (key: string) => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) {
          const response = await chat(olla, { messages: [] }, { authorization: `Bearer ${key}` });
          out.push(response.status);
          await response.body?.cancel();
        }
        return out;
      };
      assert.deepEqual(await statuses("sk-aaaaaaaa"), [200, 200, 429]);
      assert.deepEqual(await statuses("sk-bbbbbbbb"), [200, 200, 429]);
    });
  });

  test("the global bucket is shared by all clients", async () => {
    const server =
      "  rate_limits: { global_requests_per_minute: 60, per_ip_requests_per_minute: 0, burst_size: 2 }\n";
    await withOlla(server, async (olla) => {
      const results = [];
      for (let i = 0; i < 3; i++) {
        const response = await chat(olla, { messages: [] });
        results.push(response.status);
        await response.body?.cancel();
      }
      assert.deepEqual(results, [200, 200, 429]);
    });
  });
});

describe("size limits", () => {
  const server = NO_LIMITS +
    "  request_limits: { max_body_size: 1KB, max_header_size: 4KB }\n  read_timeout: 300ms\n";

  test("a Content-Length over max_body_size is refused with 413 before anything reaches a backend", async () => {
    await withOlla(server, async (olla, fake) => {
      const response = await chat(olla, { messages: [{ content: "x".repeat(2_000) }] });
      assert.equal(response.status, 413);
      assert.equal((await response.json()).error.code, "request_too_large");
      assert.equal(fake.count("/v1/chat/completions"), 0);
    });
  });

  test("a chunked body over max_body_size is refused with 413 before anything reaches a backend", async () => {
    await withOlla(server, async (olla, fake) => {
      const chunk = "x".repeat(600);
      const body = `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(3) + "0\r\n\r\n";
      const response = await rawRequest(
        Number(new URL(olla.url).port),
        `POST /olla/lmdeploy/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
          `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`,
      );
      assert.equal(response.status, 413);
      assert.equal(fake.count("/v1/chat/completions"), 0);
    });
  });

  test("headers over max_header_size are refused with 431", async () => {
    await withOlla(server, async (olla) => {
      const response = await chat(olla, { messages: [] }, { "x-padding": "p".repeat(5_000) });
      assert.equal(response.status, 431);
      assert.equal((await response.json()).error.code, "headers_too_large");
    });
  });

  test("a client trickling its body is cut off by server.read_timeout", async () => {
    await withOlla(server, async (olla, fake) => {
      const started = Date.now();
      const response = await rawRequest(
        Number(new URL(olla.url).port),
        `POST /olla/lmdeploy/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
          `Content-Length: 500\r\nConnection: close\r\n\r\n{"model":`,
      );
      assert.equal(response.status, 408);
      assert.ok(Date.now() - started < 3_000);
      assert.equal(fake.count("/v1/chat/completions"), 0);
    });
  });
});
