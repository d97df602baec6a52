/**
 * Olla drop-in, configuration side: Olla's search order, nameless and typeless endpoints,
 * type detection, every backend type Olla ships, Olla's profile files, files that are not
 * configurations, one run showing every problem, Olla's environment variables, and
 * Olla's stock config starting with at most one warning line.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { fixture, inProcessOlla } from "./_harness.ts";
import { IS_BUN, startOlla as startProcess } from "./_olla_process.ts";
import { jsonResponse } from "./fakes/fetch.ts";
import { ConfigError } from "../lib/config/config_error.ts";
import { loadConfig, locateConfigFile, parseConfig } from "../lib/config/load.ts";
import { Logger } from "../lib/log.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { loadProfiles } from "../lib/profiles/loader.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { logStartup } from "../lib/startup/lifecycle.ts";

const TYPES = new ProfileSet(BUILT_IN_PROFILES).typeNames;

function parse(text: string, env: Record<string, string> = {}, source = "olla.yaml") {
  return parseConfig(text, { source, env: (name) => env[name], knownTypes: TYPES });
}

function refusal(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parse(text, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail("expected the configuration to be refused");
}

function endpoints(entries: string): string {
  return `discovery:\n  static:\n    endpoints:\n${entries}`;
}

function files(contents: Record<string, string>) {
  return {
    isFile: (path: string) => Promise.resolve(path in contents),
    readTextFile: (path: string) =>
      path in contents ? Promise.resolve(contents[path]) : Promise.reject(new Error(path)),
    listDir: (dir: string) =>
      Promise.resolve(
        Object.keys(contents).filter((path) => path.startsWith(`${dir}/`)).map((path) =>
          path.slice(dir.length + 1)
        ),
      ),
  };
}

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = new Logger({
    level: "debug",
    format: "json",
    write: (line) => lines.push(JSON.parse(line)),
  });
  return { logger, lines };
}

const SERVER = {
  hostname: "127.0.0.1",
  port: 40114,
  ownsListener: true,
  finished: Promise.resolve(),
};

describe("Olla's config search order", () => {
  const none = (_name: string) => undefined;

  test("config/config.local.yaml, then config/config.yaml, then ./config.yaml, then default.yaml", async () => {
    const order = [
      "config/config.local.yaml",
      "config/config.yaml",
      "config.yaml",
      "default.yaml",
    ];
    for (let i = 0; i < order.length; i++) {
      const present = Object.fromEntries(order.slice(i).map((path) => [path, ""]));
      assert.equal(await locateConfigFile({ ...files(present), env: none }), order[i]);
    }
  });

  test("the startup log names the file used, or the places searched", async () => {
    const loaded = await loadConfig({
      ...files({ "config/config.yaml": "server:\n  port: 1234\n" }),
      env: none,
      loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
    });
    const { logger, lines } = captureLogger();
    logStartup(logger, loaded, SERVER as never, { slowHeaders: "bun", cannotCloseIdle: undefined });
    assert.equal(
      lines.find((line) => line.msg === "configuration loaded")?.file,
      "config/config.yaml",
    );

    const defaults = await loadConfig({
      ...files({}),
      env: none,
      loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
    });
    const report = captureLogger();
    logStartup(report.logger, defaults, SERVER as never, {
      slowHeaders: "bun",
      cannotCloseIdle: undefined,
    });
    const line = report.lines.find((line) => line.msg === "configuration loaded");
    assert.equal(line?.file, "built-in defaults");
    assert.match(String(line?.searched), /config\/config\.local\.yaml, config\/config\.yaml/);
  });
});

describe("endpoints as Olla accepts them", () => {
  test("an endpoint without a name is named from its URL, with a warning", () => {
    const { config, warnings } = parse(endpoints(
      "      - url: http://10.0.0.5:23333/\n        type: lmdeploy\n" +
        "      - url: http://10.0.0.5:23333\n        type: lmdeploy\n" +
        "      - url: http://gpu:8000/base/\n        type: vllm\n",
    ));
    assert.deepEqual(config.discovery.static.endpoints.map((e) => e.name), [
      "10.0.0.5:23333",
      "10.0.0.5:23333-2",
      "gpu:8000/base",
    ]);
    assert.equal(warnings.length, 3);
    assert.match(warnings[0].message, /has no name; it is called "10\.0\.0\.5:23333"/);
    assert.match(warnings[0].location ?? "", /^olla\.yaml:4:9$/);
  });

  test("an endpoint without a type, or with type auto, is typed auto", () => {
    const { config } = parse(endpoints(
      "      - name: a\n        url: http://a:1\n      - name: b\n        url: http://b:1\n        type: auto\n",
    ));
    assert.deepEqual(config.discovery.static.endpoints.map((e) => e.type), ["auto", "auto"]);
  });

  test("every backend type Olla ships loads, with Olla's prefixes and paths", () => {
    const types = [
      "ollama",
      "lm-studio",
      "llamacpp",
      "vllm",
      "vllm-mlx",
      "sglang",
      "lmdeploy",
      "lemonade",
      "litellm",
      "docker-model-runner",
      "omlx",
      "openai-compatible",
    ];
    const { config } = parse(endpoints(
      types.map((type, i) =>
        `      - name: e${i}\n        url: http://h:${1000 + i}\n        type: ${type}\n`
      )
        .join(""),
    ));
    assert.deepEqual(config.discovery.static.endpoints.map((e) => e.type), types);
    const profiles = new ProfileSet(BUILT_IN_PROFILES);
    const facts = (type: string) => {
      const profile = profiles.forType(type);
      assert.ok(profile, type);
      return {
        prefixes: profile.prefixes,
        health: profile.health.path,
        models: profile.models.path,
        anthropic: profile.anthropic?.messagesPath,
      };
    };
    assert.deepEqual(facts("litellm"), {
      prefixes: ["litellm"],
      health: "/health",
      models: "/v1/models",
      anthropic: undefined,
    });
    assert.deepEqual(facts("lemonade"), {
      prefixes: ["lemonade"],
      health: "/api/v1/health",
      models: "/api/v1/models",
      anthropic: undefined,
    });
    assert.deepEqual(facts("docker-model-runner"), {
      prefixes: ["dmr"],
      health: "/engines/v1/models",
      models: "/engines/v1/models",
      anthropic: "/anthropic/v1/messages",
    });
    assert.deepEqual(facts("vllm-mlx"), {
      prefixes: ["vllm-mlx"],
      health: "/health",
      models: "/v1/models",
      anthropic: "/v1/messages",
    });
    assert.deepEqual(facts("omlx"), {
      prefixes: ["omlx"],
      health: "/health",
      models: "/v1/models",
      anthropic: "/v1/messages",
    });
    assert.deepEqual(facts("lm-studio").prefixes, ["lmstudio", "lm-studio", "lm_studio"]);
  });
});

describe("type detection", () => {
  const YAML = "discovery:\n  static:\n    endpoints:\n      - url: http://gpu:8000\n" +
    "        check_interval: 1s\n";
  const NAME = "gpu:8000";

  test("probes in Olla's order, logs the type found and shows it in /internal/status/endpoints", async () => {
    let vllmUp = false;
    const olla = inProcessOlla(YAML, (call) => {
      const path = new URL(call.url).pathname;
      if (vllmUp && path === "/version") return jsonResponse(200, { version: "0.11.1" });
      if (vllmUp && path === "/health") return new Response("");
      if (vllmUp && path === "/v1/models") {
        return jsonResponse(200, { object: "list", data: [{ id: "m", object: "model" }] });
      }
      return new Response("not found", { status: 404 });
    });
    const { registry, health } = olla.service;
    assert.equal(registry.get(NAME)?.status, "detecting");

    // Until a probe matches, the endpoint is unroutable and the reason is shown.
    await health.checkNow(NAME);
    assert.equal(registry.get(NAME)?.status, "detecting");
    assert.match(registry.get(NAME)?.lastError ?? "", /type not detected yet/);
    assert.deepEqual(
      olla.upstream.calls.map((call) => new URL(call.url).pathname),
      [
        "/api/version",
        "/props",
        "/api/v0/models",
        "/get_server_info",
        "/version",
        "/is_sleeping",
        "/api/v1/health",
        "/engines/v1/models",
        "/health/readiness",
        "/v1/models/status",
        "/v1/models",
      ],
    );
    const refused = await olla.request("/olla/openai/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({ model: "m", messages: [] }),
    });
    assert.ok(refused.status === 404 || refused.status === 503, String(refused.status));
    await refused.body?.cancel();

    vllmUp = true;
    await health.checkNow(NAME);
    assert.equal(registry.get(NAME)?.type, "vllm");
    assert.ok(olla.logs.some((log) => log.msg === "endpoint type detected" && log.type === "vllm"));
    const listed = await (await olla.request("/internal/status/endpoints")).json();
    const entry = listed.endpoints.find((e: { name: string }) => e.name === NAME);
    assert.equal(entry.type, "vllm");
    assert.equal(entry.configured_type, "auto");
  });

  test("an endpoint not detectable yet is retried, never a startup failure", async () => {
    const olla = inProcessOlla(YAML, () => new Response("", { status: 404 }));
    olla.service.start();
    try {
      await olla.clock.advance(0);
      const first = olla.upstream.calls.length;
      assert.ok(first > 0, "probed at start");
      await olla.clock.advance(120_000);
      assert.ok(olla.upstream.calls.length > first, "probed again later");
      assert.equal(olla.service.registry.get(NAME)?.status, "detecting");
    } finally {
      olla.service.stop();
    }
  });
});

describe("Olla's profile files in proxy.profiles_dir", () => {
  // Written by hand in Olla's profile schema: routing, api, characteristics, request.
  const PROFILE = [
    "name: tabby",
    'version: "1.0"',
    'display_name: "Tabby"',
    "routing:",
    "  prefixes:",
    "    - tabby",
    "api:",
    "  openai_compatible: true",
    "  paths:",
    "    - /v1/chat/completions",
    "    - /v1/models",
    "  model_discovery_path: /v1/models",
    "  health_check_path: /v1/health",
    "characteristics:",
    "  timeout: 2m",
    "  max_concurrent_requests: 10",
    "  default_priority: 80",
    "  streaming_support: true",
    "request:",
    '  model_field_paths: ["model"]',
    '  response_format: "openai"',
    "resources:",
    "  defaults:",
    "    min_memory_gb: 4",
    "",
  ].join("\n");

  test("load as profiles: prefixes, health and model paths; ignored sections warned once per file", async () => {
    const set = await loadProfiles({
      dir: "profiles",
      include: [],
      exclude: [],
      ...files({ "profiles/tabby.yaml": PROFILE }),
    });
    const tabby = set.forType("tabby");
    assert.ok(tabby);
    assert.deepEqual(tabby.prefixes, ["tabby"]);
    assert.equal(tabby.health.path, "/v1/health");
    assert.equal(tabby.models.path, "/v1/models");
    assert.equal(tabby.openaiCompatible, true);
    const about = set.warnings.filter((warning) =>
      warning.location?.startsWith("profiles/tabby.yaml")
    );
    assert.equal(about.length, 1, JSON.stringify(set.warnings));
    assert.match(about[0].message, /characteristics|resources/);
  });

  test("an endpoint of that type then loads", async () => {
    const loaded = await loadConfig({
      ...files({
        "olla.yaml": `proxy:\n  profiles_dir: profiles\n${
          endpoints("      - name: t\n        url: http://t:1\n        type: tabby\n")
        }`,
        "profiles/tabby.yaml": PROFILE,
      }),
      flagPath: "olla.yaml",
      env: () => undefined,
      loadProfiles: (config) =>
        loadProfiles({
          dir: config.proxy.profiles_dir,
          include: [],
          exclude: [],
          ...files({ "profiles/tabby.yaml": PROFILE }),
        }),
    });
    assert.equal(loaded.config.discovery.static.endpoints[0].type, "tabby");
  });
});

describe("files that are not configurations", () => {
  const cases: [string, string, RegExp][] = [
    ["an empty file", "", /the file is empty/],
    ["Olla's models.yaml", "model_extraction:\n  x: 1\nfamilies: {}\n", /Olla's models\.yaml/],
    ["a provider profile", "name: x\nroutes: []\n", /a provider profile/],
    [
      "top-level endpoints",
      "endpoints:\n  - url: http://a:1\n",
      /endpoints belong under discovery: static: endpoints:/,
    ],
    [
      "discovery.endpoints",
      "discovery:\n  endpoints:\n    - url: http://a:1\n",
      /endpoints belong under discovery: static: endpoints:/,
    ],
  ];
  for (const [what, text, hint] of cases) {
    test(`${what} is refused with a hint`, () => {
      assert.match(refusal(text).message, hint);
    });
  }
});

describe("one run shows every problem", () => {
  test("warnings are printed together with errors", () => {
    const error = refusal(
      "server:\n  prot: 1\n" +
        endpoints("      - name: a\n        url: nope\n        type: vllm\n"),
    );
    assert.match(error.message, /1 problem/);
    assert.match(
      error.message,
      /and 1 warning:\n {2}- olla\.yaml:2:\d+: server\.prot: .*did you mean "port"/,
    );
  });

  test("enum values get did-you-mean like keys do", () => {
    const balancer = refusal("proxy:\n  load_balancer: round_robbin\n");
    assert.match(balancer.message, /did you mean "round-robin"\?/);
    const type = refusal(
      endpoints("      - name: a\n        url: http://a:1\n        type: lmdepoly\n"),
    );
    assert.match(type.message, /did you mean "lmdeploy"\?/);
  });

  test("errors name the endpoint and give file:line:column, a missing ${VAR} included", () => {
    const error = refusal(endpoints(
      "      - name: gpu-a\n        url: http://a:1\n        type: vllm\n" +
        "      - name: gpu-b\n        url: http://b:1\n        type: vllm\n" +
        '        auth: { type: bearer, token: "${NOT_SET_ANYWHERE}" }\n',
    ));
    const line = error.message.split("\n").find((text) => text.includes("NOT_SET_ANYWHERE"));
    assert.ok(line, error.message);
    assert.match(line, /olla\.yaml:10:\d+: /);
    assert.match(line, /\(endpoint "gpu-b"\)/);
  });

  test("a keys_file that cannot be read is named with its location", async () => {
    await assert.rejects(
      loadConfig({
        ...files({
          "olla.yaml": "server:\n  auth:\n    enabled: true\n    keys_file: /nope/keys\n",
        }),
        flagPath: "olla.yaml",
        env: () => undefined,
        loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
      }),
      (error: Error) => {
        assert.match(error.message, /olla\.yaml:4:16: server\.auth\.keys_file: .*\/nope\/keys/);
        return true;
      },
    );
  });
});

describe("Olla's environment variables", () => {
  test("OLLA_LOGGING_LEVEL, and its older spelling OLLA_LOG_LEVEL, set the log level", () => {
    const level = (env: Record<string, string>) =>
      parseConfig("", { env: (name) => env[name], knownTypes: TYPES }).config.logging.level;
    assert.equal(level({ OLLA_LOGGING_LEVEL: "debug" }), "debug");
    assert.equal(level({ OLLA_LOG_LEVEL: "warn" }), "warn");
    assert.equal(level({ OLLA_LOGGING_LEVEL: "error", OLLA_LOG_LEVEL: "warn" }), "error");
  });
});

describe("Olla's stock config/config.yaml", () => {
  test("starts with one warning line: the keys accepted but not acted on", async () => {
    const stock = await fixture("olla/stock-config.yaml");
    const loaded = await loadConfig({
      ...files({ "config/config.yaml": stock }),
      env: () => undefined,
      loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
    });
    const { logger, lines } = captureLogger();
    logStartup(logger, loaded, SERVER as never, {
      slowHeaders: "the runtime's own rule",
      cannotCloseIdle: undefined,
    });
    const warnings = lines.filter((line) => line.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0].msg, "configuration keys accepted but not acted on");
    assert.match(String(warnings[0].keys), /server\.read_header_timeout/);
  });
});

describe("server.read_header_timeout", () => {
  test("is reported at startup with what the runtime does instead, and Bun's own guard holds", async () => {
    const olla = await startProcess({
      config:
        "server:\n  port: 0\n  read_header_timeout: 1s\ndiscovery:\n  static:\n    endpoints: []\n",
    });
    try {
      const line = olla.logs.find((log) =>
        log.msg === "configuration keys accepted but not acted on"
      );
      assert.match(String(line?.keys), /server\.read_header_timeout/);
      const reason = (line?.reasons as Record<string, string>)["server.read_header_timeout"];
      assert.match(reason, IS_BUN ? /Bun's HTTP server disconnects/ : /Deno's HTTP server has no/);
      if (!IS_BUN) return;
      // What the README promises for Bun: half a request is dropped, in about 12 s.
      const closed = await new Promise<number>((resolve, reject) => {
        const started = Date.now();
        const socket = connect({ host: "127.0.0.1", port: olla.port }, () => {
          socket.write("GET /internal/health HTTP/1.1\r\nHost: x\r\n");
        });
        socket.on("close", () => resolve(Date.now() - started));
        socket.on("error", reject);
        setTimeout(() => {
          socket.destroy();
          reject(new Error("still connected after 20 s"));
        }, 20_000);
      });
      assert.ok(closed < 20_000, `closed after ${closed} ms`);
    } finally {
      olla.signal("SIGTERM");
      await olla.exited;
    }
  });
});
