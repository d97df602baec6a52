import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { ConfigError } from "../lib/config/config_error.ts";
import { renderExample } from "../lib/config/example.ts";
import {
  loadConfig,
  type LoadConfigOptions,
  locateConfigFile,
  parseConfig,
} from "../lib/config/load.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { fixture } from "./_harness.ts";

const KNOWN_TYPES = ["lmdeploy", "vllm"];

function parse(text: string, env: Record<string, string> = {}) {
  return parseConfig(text, {
    source: "test.yaml",
    env: (name) => env[name],
    knownTypes: KNOWN_TYPES,
  });
}

function problems(text: string, env: Record<string, string> = {}): string {
  try {
    parse(text, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("expected the configuration to be refused");
}

function fakeFiles(
  files: Record<string, string>,
): Pick<LoadConfigOptions, "readTextFile" | "isFile"> {
  return {
    isFile: (path) => Promise.resolve(path in files),
    readTextFile: (path) =>
      path in files ? Promise.resolve(files[path]) : Promise.reject(new Error(`ENOENT: ${path}`)),
  };
}

const ENDPOINT = `
discovery:
  static:
    endpoints:
      - url: http://gpu-1:23333
        name: gpu-1
        type: lmdeploy
`;

describe("parseConfig() defaults", () => {
  test("with no file, listens on localhost:40114 with one LMDeploy endpoint on :23333", () => {
    // No source: the built-in defaults (an empty *file* is refused, see the drop-in tests).
    const { config, warnings, unsupported } = parseConfig("", {
      env: () => undefined,
      knownTypes: KNOWN_TYPES,
    });
    assert.equal(config.server.host, "localhost");
    assert.equal(config.server.port, 40114);
    assert.equal(config.server.shutdown_timeout, 10_000);
    assert.deepEqual(
      config.discovery.static.endpoints.map(({ url, name, type }) => ({ url, name, type })),
      [{ url: "http://localhost:23333", name: "local-lmdeploy", type: "lmdeploy" }],
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(unsupported, []);
  });

  test("fills endpoint defaults the way Olla does", () => {
    const endpoint = parse(ENDPOINT).config.discovery.static.endpoints[0];
    assert.equal(endpoint.priority, 100);
    assert.equal(endpoint.check_interval, 5_000);
    assert.equal(endpoint.check_timeout, 2_000);
    assert.equal(endpoint.preserve_path, false);
  });

  test("reads Go-style durations", () => {
    const { config } = parse(
      `${ENDPOINT}        check_interval: 1m30s\n        check_timeout: 500ms\n`,
    );
    assert.equal(config.discovery.static.endpoints[0].check_interval, 90_000);
    assert.equal(config.discovery.static.endpoints[0].check_timeout, 500);
  });
});

describe("parseConfig() validation", () => {
  test("refuses a bad URL, naming the field and the value", () => {
    const message = problems(ENDPOINT.replace("http://gpu-1:23333", "http://gpu 1:23333"));
    assert.match(
      message,
      /discovery\.static\.endpoints\[0\]\.url: "http:\/\/gpu 1:23333" is not a valid URL/,
    );
  });

  test("refuses a non-HTTP URL", () => {
    assert.match(
      problems(ENDPOINT.replace("http://", "ftp://")),
      /must use http or https, not ftp/,
    );
  });

  test("refuses credentials in a URL without printing them", () => {
    const message = problems(ENDPOINT.replace("http://gpu-1", "http://admin:hunter22@gpu-1"));
    assert.match(message, /embeds credentials; move them to the endpoint's auth block/);
    assert.doesNotMatch(message, /hunter22/);
  });

  test("refuses duplicate endpoint names", () => {
    const message = problems(
      `${ENDPOINT}      - url: http://gpu-2:23333\n        name: gpu-1\n        type: lmdeploy\n`,
    );
    assert.match(
      message,
      /endpoints\[1\]\.name: duplicate endpoint name "gpu-1" \(also used by endpoints\[0\]\)/,
    );
  });

  test("allows two endpoints with the same URL under different names", () => {
    const { config } = parse(
      `${ENDPOINT}      - url: http://gpu-1:23333\n        name: gpu-1b\n        type: lmdeploy\n`,
    );
    assert.equal(config.discovery.static.endpoints.length, 2);
  });

  test("refuses an unknown endpoint type, listing the known ones", () => {
    const message = problems(ENDPOINT.replace("type: lmdeploy", "type: lmdeplyo"));
    assert.match(
      message,
      /endpoints\[0\]\.type: unknown endpoint type "lmdeplyo": expected one of lmdeploy, vllm/,
    );
  });

  test("refuses negative and unparsable durations", () => {
    assert.match(
      problems(`${ENDPOINT}        check_interval: -5s\n`),
      /endpoints\[0\]\.check_interval: duration "-5s" must not be negative/,
    );
    assert.match(
      problems(`${ENDPOINT}        check_timeout: soon\n`),
      /endpoints\[0\]\.check_timeout: Cannot parse duration "soon"/,
    );
    assert.match(problems("server:\n  shutdown_timeout: 10\n"), /add a unit, for example "10s"/);
  });

  test("refuses a port out of range", () => {
    assert.match(
      problems("server:\n  port: 70000\n"),
      /server\.port: 70000 is out of range: must be between 0 and 65535/,
    );
    assert.match(problems("server:\n  port: -1\n"), /server\.port: -1 is out of range/);
    assert.match(
      problems("server:\n  port: http\n"),
      /server\.port: expected a number, got "http"/,
    );
  });

  test("reports a YAML syntax error with its line and column", () => {
    const message = problems("server:\n  host: localhost\n  port: [40114\n");
    assert.match(message, /test\.yaml:\d+:\d+: YAML syntax error/);
    const badIndent = problems("server:\n  host: a\n bad: b\n");
    assert.match(badIndent, /test\.yaml:3:\d+: YAML syntax error/);
  });

  test("gives the line and column of an invalid value", () => {
    const message = problems("server:\n  host: localhost\n  port: 99999\n");
    assert.match(message, /test\.yaml:3:9: server\.port: 99999 is out of range/);
  });

  test("reports every problem at once", () => {
    const error = (() => {
      try {
        parse("server:\n  port: 99999\n  shutdown_timeout: never\n");
      } catch (error) {
        return error as ConfigError;
      }
    })();
    assert.equal(error?.issues.length, 2);
    assert.match(error?.message ?? "", /2 problems/);
  });

  test("warns about an unknown key and suggests the nearest known one", () => {
    const { warnings } = parse(`${ENDPOINT}        chek_interval: 2s\n`);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].path, "discovery.static.endpoints[0].chek_interval");
    assert.match(
      warnings[0].message,
      /unknown key "chek_interval" is ignored; did you mean "check_interval"\?/,
    );
    assert.equal(warnings[0].location, "test.yaml:8:24");
  });

  test("does not suggest anything for a key unlike any known one", () => {
    const { warnings } = parse("server:\n  flux_capacitor: true\n");
    assert.doesNotMatch(warnings[0].message, /did you mean/);
  });

  test("refuses a file that is not a mapping", () => {
    assert.match(problems("- a\n- b\n"), /must hold a mapping of sections, got a list/);
  });
});

describe("parseConfig() environment", () => {
  test("expands ${VAR} and ${VAR:-default} in string values", () => {
    const { config } = parse(
      'server:\n  host: "${HOST}"\n' +
        ENDPOINT.replace("http://gpu-1:23333", "http://${GPU:-gpu-9}:23333"),
      { HOST: "0.0.0.0" },
    );
    assert.equal(config.server.host, "0.0.0.0");
    assert.equal(config.discovery.static.endpoints[0].url, "http://gpu-9:23333");
  });

  test("keeps $$ as a literal dollar sign", () => {
    assert.equal(parse('server:\n  host: "a$${B}"\n').config.server.host, "a${B}");
  });

  test("refuses a ${VAR} that is not set and has no default", () => {
    assert.match(problems('server:\n  host: "${NOPE}"\n'), /server\.host: \$\{NOPE\} is not set/);
  });

  test("applies OLLA_* overrides after the file", () => {
    const { config } = parse("server:\n  port: 8080\nlogging:\n  level: info\n", {
      OLLA_SERVER_PORT: "9090",
      OLLA_LOG_LEVEL: "debug",
      OLLA_SERVER_SHUTDOWN_TIMEOUT: "3s",
    });
    assert.equal(config.server.port, 9090);
    assert.equal(config.logging.level, "debug");
    assert.equal(config.server.shutdown_timeout, 3_000);
  });

  test("names the variable when an override is invalid", () => {
    assert.match(
      problems("", { OLLA_SERVER_PORT: "eighty" }),
      /OLLA_SERVER_PORT: expected a number, got "eighty"/,
    );
  });
});

describe("parseConfig() Olla compatibility", () => {
  test("loads an Olla config unchanged and reports what it ignores, once", async () => {
    const olla = await fixture("olla-full.yaml");
    const { config, warnings, unsupported } = parse(olla);
    assert.deepEqual(warnings, []);
    assert.equal(config.server.host, "0.0.0.0");
    assert.equal(config.logging.format, "json");
    const ignored = unsupported.map((key) => key.path);
    // What olla-ts cannot act on is reported...
    assert.deepEqual(ignored, [
      "proxy.stream_buffer_size",
      "proxy.retry_backoff",
      "discovery.refresh_interval",
      "model_registry.enable_unifier",
      "model_registry.unification",
    ]);
    // ...and keys set to what olla-ts does anyway, or now acts on, are not.
    for (
      const key of [
        "server.write_timeout",
        "proxy.engine",
        "proxy.profile",
        "logging.output",
        "engineering.show_nerdstats",
      ]
    ) {
      assert.ok(!ignored.includes(key), `${key} is not reported`);
    }
    assert.equal(new Set(ignored).size, ignored.length, "each key is reported once");
  });
});

describe("parseConfig() with Olla's shipped config.yaml", () => {
  test("loads unchanged: Olla's spellings and sections accepted, types known", async () => {
    const shipped = await fixture("olla-shipped-config.yaml");
    const { config, warnings } = parseConfig(shipped, {
      source: "olla.yaml",
      env: () => undefined,
      knownTypes: new ProfileSet(BUILT_IN_PROFILES).typeNames,
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.proxy.load_balancer, "least-connections");
    assert.equal(config.proxy.response_timeout, 900_000);
    assert.equal(config.server.request_limits.max_body_size, 52_428_800);
    assert.equal(config.discovery.static.endpoints[0].type, "ollama");
    assert.equal(config.discovery.static.endpoints[0].model_url, "/api/tags");
  });
});

describe("locateConfigFile()", () => {
  const files = fakeFiles({ "flag.yaml": "", "env.yaml": "", "config.yaml": "" });
  const env = (values: Record<string, string>) => (name: string) => values[name];

  test("prefers the flag, then OLLA_CONFIG_FILE, then ./config.yaml", async () => {
    assert.equal(
      await locateConfigFile({
        ...files,
        flagPath: "flag.yaml",
        env: env({ OLLA_CONFIG_FILE: "env.yaml" }),
      }),
      "flag.yaml",
    );
    assert.equal(
      await locateConfigFile({ ...files, env: env({ OLLA_CONFIG_FILE: "env.yaml" }) }),
      "env.yaml",
    );
    assert.equal(await locateConfigFile({ ...files, env: env({}) }), "config.yaml");
  });

  test("falls back to built-in defaults when there is no file", async () => {
    assert.equal(await locateConfigFile({ ...fakeFiles({}), env: env({}) }), undefined);
  });

  test("refuses a named file that does not exist", async () => {
    await assert.rejects(
      locateConfigFile({ ...fakeFiles({}), flagPath: "missing.yaml", env: env({}) }),
      /--config: file "missing\.yaml" does not exist/,
    );
    await assert.rejects(
      locateConfigFile({ ...fakeFiles({}), env: env({ OLLA_CONFIG_FILE: "gone.yaml" }) }),
      /OLLA_CONFIG_FILE: file "gone\.yaml" does not exist/,
    );
  });
});

describe("loadConfig()", () => {
  test("reads the file found and returns a frozen config", async () => {
    const loaded = await loadConfig({
      ...fakeFiles({ "config.yaml": "server:\n  port: 1234\n" }),
      env: () => undefined,
      loadProfiles: () => Promise.resolve(new ProfileSet(BUILT_IN_PROFILES)),
    });
    assert.equal(loaded.source, "config.yaml");
    assert.equal(loaded.config.server.port, 1234);
    assert.ok(Object.isFrozen(loaded.config.server));
    assert.ok(Object.isFrozen(loaded.config.discovery.static.endpoints[0]));
  });
});

describe("config.example.yaml", () => {
  test("is exactly what the schema renders (run `deno task config:example` after changing it)", async () => {
    const committed = await readFile(new URL("../config.example.yaml", import.meta.url), "utf8");
    assert.equal(committed, renderExample());
  });

  test("loads without problems or warnings", () => {
    const { warnings, unsupported } = parse(renderExample());
    assert.deepEqual(warnings, []);
    assert.deepEqual(unsupported, []);
  });
});
