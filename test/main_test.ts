// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import {
  IS_BUN,
  MAIN,
  type OllaProcess,
  run,
  runArgs,
  runOlla,
  startOlla,
  tempFile,
} from "./_olla_process.ts";
import { until } from "./_harness.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import pkg from "../package.json" with { type: "json" };

const QUIET_CONFIG = `
server:
  host: 127.0.0.1
  port: 0
discovery:
  static:
    endpoints:
      - url: http://127.0.0.1:9
        name: nowhere
        type: lmdeploy
`;

describe("main.ts command line", () => {
  test("--version prints the version and exits 0", async () => {
    const { code, stdout } = await runOlla(["--version"]);
    assert.equal(code, 0);
    assert.match(
      stdout,
      new RegExp(`^olla-ts ${pkg.version.replaceAll(".", "\\.")} \\((deno|bun) `),
    );
  });

  test("--help prints usage and exits 0", async () => {
    const { code, stdout } = await runOlla(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage:/);
    for (
      const flag of ["--config FILE", "--config=FILE", "--validate-config", "--version", "--help"]
    ) {
      assert.ok(stdout.includes(flag), flag);
    }
    assert.match(stdout, /config\/config\.local\.yaml, config\/config\.yaml, config\.yaml/);
    assert.ok(stdout.includes("Examples:\n  olla-ts --config "), "examples");
  });

  test("an unknown argument exits 2 with a message", async () => {
    const { code, stderr } = await runOlla(["--bogus"]);
    assert.equal(code, 2);
    assert.match(stderr, /unknown argument "--bogus"/);
  });

  test("--validate-config exits 0 for a valid file and reports warnings", async () => {
    const file = await tempFile("ok.yaml", `${QUIET_CONFIG}        chek_interval: 2s\n`);
    const { code, stdout } = await runOlla(["--validate-config", "--config", file]);
    assert.equal(code, 0);
    assert.match(stdout, /Configuration is valid/);
    assert.match(stdout, /did you mean "check_interval"/);
  });

  test("--validate-config exits 1 and lists every problem for an invalid file", async () => {
    const file = await tempFile("bad.yaml", "server:\n  port: 99999\n  shutdown_timeout: -1s\n");
    const { code, stderr, stdout } = await runOlla(["--validate-config", "-c", file]);
    assert.equal(code, 1);
    assert.match(stderr, /server\.port: 99999 is out of range/);
    assert.match(stderr, /server\.shutdown_timeout: duration "-1s" must not be negative/);
    assert.equal(stdout, "");
  });

  test("a bad configuration exits 1 before listening", async () => {
    const file = await tempFile("bad.yaml", "server:\n  port: [1\n");
    const { code, stderr, stdout } = await runOlla(["--config", file]);
    assert.equal(code, 1);
    assert.match(stderr, /YAML syntax error/);
    assert.doesNotMatch(stdout, /listening/);
  });

  test("a taken port exits 1 with one plain line, even against another olla-ts on this runtime", async () => {
    const first = await startOlla({ config: "server:\n  host: 127.0.0.1\n  port: 0\n" });
    try {
      const file = await tempFile(
        "taken.yaml",
        `server:\n  host: 127.0.0.1\n  port: ${first.port}\n`,
      );
      const { code, stderr, stdout } = await runOlla(["--config", file]);
      assert.equal(code, 1, "the second instance does not share the port");
      assert.equal(stderr, `Cannot listen on 127.0.0.1:${first.port}: address already in use\n`);
      assert.doesNotMatch(stdout, /listening/);
    } finally {
      first.signal("SIGTERM");
      await first.exited;
    }
  });

  test("a host that is not this machine's exits 1 with one plain line", async () => {
    const file = await tempFile("bad-host.yaml", "server:\n  host: 10.255.255.254\n  port: 0\n");
    const { code, stderr } = await runOlla(["--config", file]);
    assert.equal(code, 1);
    assert.equal(stderr, "Cannot listen on 10.255.255.254:0: no such address on this host\n");
  });

  test("--healthcheck exits 0 while the configured olla-ts answers, 1 once it is gone", async () => {
    const olla = await startOlla({ config: "server:\n  host: 0.0.0.0\n  port: 0\n" });
    const file = await tempFile("health.yaml", `server:\n  host: 0.0.0.0\n  port: ${olla.port}\n`);
    try {
      const alive = await runOlla(["--healthcheck", "--config", file]);
      assert.equal(alive.code, 0, alive.stderr);
    } finally {
      olla.signal("SIGTERM");
      await olla.exited;
    }
    const gone = await runOlla(["--healthcheck", "--config", file]);
    assert.equal(gone.code, 1);
    assert.match(
      gone.stderr,
      new RegExp(`olla-ts at http://127\\.0\\.0\\.1:${olla.port}/internal/health did not answer`),
    );
  });

  test("a missing --config file exits 1", async () => {
    const { code, stderr } = await runOlla(["--config", "/nonexistent/olla.yaml"]);
    assert.equal(code, 1);
    assert.match(stderr, /does not exist/);
  });
});

describe("main.ts serving", () => {
  test("starts with built-in defaults when there is no config file, and answers liveness", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "olla-ts-empty-"));
    const olla = await startOlla({
      cwd,
      env: { OLLA_SERVER_PORT: "0", OLLA_SERVER_HOST: "127.0.0.1" },
    });
    try {
      const response = await fetch(`http://127.0.0.1:${olla.port}/internal/health`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { status: "healthy" });
      assert.ok(
        olla.logs.some((log) =>
          log.msg === "configuration loaded" && log.file === "built-in defaults"
        ),
      );
      assert.ok(
        olla.logs.some((log) => log.msg === "endpoint" && log.url === "http://localhost:23333/"),
      );
    } finally {
      olla.signal("SIGTERM");
      assert.equal((await olla.exited).code, 0);
    }
  });

  test("logs JSON lines with time, level and msg, and reports ignored keys once", async () => {
    const olla = await startOlla({
      config: `${QUIET_CONFIG}proxy:\n  engine: sherpa\n  stream_buffer_size: 8192\n`,
    });
    olla.signal("SIGTERM");
    await olla.exited;
    for (const log of olla.logs) {
      assert.equal(typeof log.time, "string", JSON.stringify(log));
      assert.equal(typeof log.level, "string");
      assert.equal(typeof log.msg, "string");
    }
    // Every such key in one line; engine: sherpa is what olla-ts does anyway.
    const reports = olla.logs.filter((log) => String(log.keys ?? "").includes("proxy."));
    assert.equal(reports.length, 1);
    assert.equal(reports[0].msg, "configuration keys accepted but not acted on");
    assert.equal(reports[0].keys, "proxy.stream_buffer_size");
  });

  test("SIGTERM and SIGINT stop the server with exit status 0", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const olla = await startOlla({ config: QUIET_CONFIG });
      olla.signal(signal);
      const { code } = await olla.exited;
      assert.equal(code, 0, `${signal}: ${olla.stderr()}`);
      assert.ok(olla.logs.some((log) => log.msg === "shutting down" && log.signal === signal));
    }
  });

  test("deno serve: Deno listens on its --port and olla-ts starts no second server", {
    skip: IS_BUN,
  }, async () => {
    const configPort = 47913;
    const olla = await startOlla({
      config: QUIET_CONFIG.replace("port: 0", `port: ${configPort}`),
      command: [process.execPath, ["serve", "-A", "--host", "127.0.0.1", "--port", "0", MAIN]],
    });
    try {
      const response = await fetch(`http://127.0.0.1:${olla.port}/internal/health`);
      assert.equal(response.status, 200);
      assert.ok(olla.logs.some((log) => log.mode === "deno serve"));
      await assert.rejects(fetch(`http://127.0.0.1:${configPort}/internal/health`));
      const warning = olla.logs.find((log) =>
        log.msg === "server.host and server.port are not used under deno serve"
      );
      assert.equal(warning?.configured, `127.0.0.1:${configPort}`);
      assert.equal(warning?.listening, `127.0.0.1:${olla.port}`);
    } finally {
      olla.signal("SIGTERM");
      assert.equal((await olla.exited).code, 0);
    }
  });
});

describe("main.ts graceful shutdown", () => {
  const configFor = (url: string, shutdownTimeout = "10s") =>
    `server:\n  host: 127.0.0.1\n  port: 0\n  shutdown_timeout: ${shutdownTimeout}\ndiscovery:\n  static:\n    endpoints:\n` +
    `      - { name: gpu, url: "${url}", type: lmdeploy, check_interval: 200ms }\n`;

  function untilModels(olla: OllaProcess): Promise<void> {
    return until(
      async () => {
        const response = await fetch(`http://127.0.0.1:${olla.port}/olla/lmdeploy/v1/models`);
        return (await response.json()).data?.length > 0;
      },
      10_000,
      "model discovery",
    );
  }

  /** Resolves once olla-ts has logged that it is shutting down (it drains from then on). */
  function untilShuttingDown(olla: OllaProcess): Promise<void> {
    return until(() => olla.logs.some((log) => log.msg === "shutting down"), 5_000);
  }

  function streamChat(port: number, tokens: number, itlMs: number): Promise<Response> {
    return fetch(`http://127.0.0.1:${port}/olla/lmdeploy/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-fake-itl-ms": String(itlMs),
        "x-fake-tokens": String(tokens),
      },
      body: JSON.stringify({ model: "internlm/internlm2_5-7b-chat", messages: [], stream: true }),
    });
  }

  /**
   * A process olla-ts streaming `tokens` tokens `itlMs` apart from an LMDeploy fake, with
   * the stream's first chunk read and SIGTERM sent; `run` takes it from there.
   */
  async function duringShutdown(
    tokens: number,
    itlMs: number,
    run: (
      olla: OllaProcess,
      reader: ReadableStreamDefaultReader<Uint8Array>,
      first: string,
    ) => Promise<void>,
    shutdownTimeout?: string,
  ): Promise<void> {
    const fake = await startFakeLmdeploy();
    const olla = await startOlla({ config: configFor(fake.url, shutdownTimeout) });
    try {
      await untilModels(olla);
      const response = await streamChat(olla.port, tokens, itlMs);
      const reader = response.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      olla.signal("SIGTERM");
      await untilShuttingDown(olla);
      await run(olla, reader, first);
    } finally {
      olla.signal("SIGKILL");
      await fake.close();
    }
  }

  test("SIGTERM lets an in-flight stream finish, refuses new requests, then exits 0", async () => {
    await duringShutdown(10, 100, async (olla, reader, first) => {
      let text = first;
      const refused = await fetch(`http://127.0.0.1:${olla.port}/internal/health`).then(
        (r) => r.status,
        () => "refused",
      );
      assert.ok(refused === "refused" || refused === 503, `a new request got ${refused}`);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.equal(text.split("\n\n").filter((event) => event.startsWith("data: {")).length, 11);
      assert.match(text, /data: \[DONE\]\n\n$/);
      assert.equal((await olla.exited).code, 0);
      assert.ok(olla.logs.some((log) => log.msg === "stopped"));
    });
  });

  test("a stream still open when shutdown_timeout runs out ends with an SSE error event", async () => {
    await duringShutdown(100, 200, async (olla, reader, first) => {
      let text = first;
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.match(text, /"code":503/);
      assert.match(text, /shutdown_timeout ran out/);
      assert.match(text, /data: \[DONE\]\n\n$/, "the client sees a proper end, not a cut");
      assert.equal((await olla.exited).code, 0);
      assert.ok(olla.logs.some((log) => log.msg === "shutdown timeout reached; exiting"));
    }, "1s");
  });

  test("a second signal exits at once", async () => {
    await duringShutdown(100, 500, async (olla, reader) => {
      const started = Date.now();
      olla.signal("SIGTERM");
      assert.equal((await olla.exited).code, 143);
      assert.ok(Date.now() - started < 2_000);
      await reader.cancel().catch(() => {});
    });
  });
});

describe("demo/demo.ts", () => {
  test("every example request answers as the demo promises", async () => {
    const demo = new URL("../demo/demo.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await run(process.execPath, runArgs(demo, ["--check"]));
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.equal(stdout.split("\n").filter((line) => line.startsWith("ok ")).length, 18, stdout);
  });
});
