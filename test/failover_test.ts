import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  chat,
  configYaml,
  endpointYaml,
  readChunks,
  readText,
  startOlla,
  type TestOlla,
  until,
  withOllaAndFakes,
} from "./_harness.ts";
import {
  type FakeLmdeploy,
  type FakeLmdeployOptions,
  startFakeLmdeploy,
} from "./fakes/lmdeploy.ts";
import { type RawServer, startRawServer } from "./fakes/raw_server.ts";
import { whileCollectingGarbage } from "./_gc.ts";

const SLOW_PROBES = "        check_interval: 1h\n";

/** An endpoint entry whose probes run once at boot and then not for an hour. */
function quietEndpoint(name: string, url: string, extra = ""): string {
  return `      - name: ${name}\n        url: ${url}\n        type: lmdeploy\n${SLOW_PROBES}${extra}`;
}

/** Two or more LMDeploy fakes behind olla-ts, by default with quiet probes and priorities. */
function withFleet(
  count: number,
  options: {
    config?: (urls: string[]) => string;
    /** With quiet endpoints of equal priority, this `proxy:` block (instead of `config`). */
    proxy?: string;
    fakes?: FakeLmdeployOptions[];
  },
  run: (olla: TestOlla, fakes: FakeLmdeploy[]) => Promise<void>,
): Promise<void> {
  const fakes = Array.from({ length: count }, (_, i) => options.fakes?.[i] ?? {});
  const yaml = options.config ??
    (options.proxy !== undefined
      ? (urls: string[]) =>
        configYaml(urls.map((url, i) => quietEndpoint(`gpu-${i + 1}`, url)), options.proxy)
      : (urls: string[]) =>
        configYaml(
          urls.map((url, i) =>
            quietEndpoint(`gpu-${i + 1}`, url, `        priority: ${100 - i * 10}\n`)
          ),
          "proxy:\n  load_balancer: priority\n",
        ));
  return withOllaAndFakes(fakes, yaml, run);
}

/** Rejects when `answer` takes longer than `ms`, instead of leaving the test hanging. */
function within<T>(ms: number, answer: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no end within ${ms}ms`)), ms);
  });
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

/**
 * olla-ts with one endpoint, "stale", on a raw server whose connections each serve one
 * request and drop the next (the keep-alive race); `probes` sets its probe interval.
 */
async function withStaleBackend(
  probes: string,
  run: (olla: TestOlla, stale: RawServer) => Promise<void>,
): Promise<void> {
  const stale = await startRawServer("stale-keepalive");
  const olla = await startOlla(configYaml([
    `      - name: stale\n        url: ${stale.url}\n        type: lmdeploy\n${probes}`,
  ]));
  try {
    await run(olla, stale);
  } finally {
    await olla.close();
    await stale.close();
  }
}

/** `count` concurrent chats: each opens a connection, stale once idle on that server. */
async function openConnections(olla: TestOlla, count: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: count }, () => chat(olla)));
  for (const response of answers) {
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
}

/** `count` chats one after another, each answered in full. */
async function chatsServedFresh(olla: TestOlla, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const response = await chat(olla);
    assert.equal(response.status, 200, `request ${i}`);
    assert.equal((await response.json()).choices[0].message.content, "fresh");
  }
}

describe("failover before the answer starts", () => {
  test("a refused connection fails over with no client-visible error and marks the endpoint offline", async () => {
    await withFleet(2, {}, async (olla, [first, second]) => {
      await first.close();
      for (let i = 0; i < 5; i++) {
        const response = await chat(olla);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("x-olla-endpoint"), "gpu-2");
        await response.body?.cancel();
      }
      assert.equal(olla.service.registry.get("gpu-1")?.status, "offline");
      assert.ok(second.count("/v1/chat/completions") >= 5);
      const failovers = olla.logs.filter((log) => log.msg === "failing over");
      assert.equal(failovers.length, 1, "only the first request met the dead endpoint");
      assert.match(String(failovers[0].reason), /connection_refused/);
    });
  });

  test("a stale keep-alive connection the backend closed is retried on a fresh one", async () => {
    await withStaleBackend(SLOW_PROBES, async (olla, stale) => {
      await chatsServedFresh(olla, 6);
      assert.ok(stale.resets >= 1, `the race was reproduced (${stale.resets} resets)`);
      assert.notEqual(olla.service.registry.get("stale")?.status, "offline");
    });
  });

  test("several stale keep-alive connections in the pool are each passed over for a fresh one", async () => {
    await withStaleBackend(SLOW_PROBES, async (olla, stale) => {
      await openConnections(olla, 6);
      await chatsServedFresh(olla, 6);
      assert.ok(stale.resets >= 2, `several stale connections were met (${stale.resets} resets)`);
      assert.notEqual(olla.service.registry.get("stale")?.status, "offline");
    });
  });

  test("health probes that meet several stale pooled connections keep the endpoint healthy", async () => {
    await withStaleBackend("        check_interval: 100ms\n", async (olla, stale) => {
      await openConnections(olla, 6);
      const resetsBefore = stale.resets;
      await until(() => stale.resets >= resetsBefore + 4, 5_000);
      const changes = olla.logs.filter((log) =>
        log.msg === "endpoint status changed" && log.endpoint === "stale"
      );
      assert.deepEqual(changes.map((log) => log.to), ["healthy"], "never left healthy");
    });
  });

  for (
    const [fault, status, code] of [
      ["truncated-body", 502, "upstream_body_error"],
      ["stalled-body", 504, "body_timeout"],
    ] as const
  ) {
    test(`a non-streamed answer with a ${fault} fails over; alone, it is a ${status}, never a truncated 200`, async () => {
      const broken = await startRawServer(fault);
      const fake = await startFakeLmdeploy();
      const yaml = (endpoints: string[]) =>
        configYaml(endpoints, "proxy:\n  load_balancer: priority\n  read_timeout: 300ms\n");
      const pair = await startOlla(yaml([
        quietEndpoint("broken", broken.url, "        priority: 100\n"),
        quietEndpoint("gpu", fake.url, "        priority: 50\n"),
      ]));
      const alone = await startOlla(yaml([quietEndpoint("broken", broken.url)]));
      try {
        const served = await chat(pair);
        assert.equal(served.status, 200);
        assert.equal(served.headers.get("x-olla-endpoint"), "gpu");
        assert.equal(served.headers.get("x-olla-failovers"), "1");
        assert.equal((await served.json()).object, "chat.completion");

        const failed = await chat(alone);
        assert.equal(failed.status, status);
        assert.equal((await failed.json()).error.code, code);
        assert.equal(alone.service.registry.get("broken")?.failures, 1);
      } finally {
        await Promise.all([pair.close(), alone.close()]);
        await Promise.all([broken.close(), fake.close()]);
      }
    });
  }

  test("a 503 whose body stalls fails over once proxy.read_timeout passes, even with the heap collected meanwhile", async () => {
    const broken = await startRawServer("stalled-error-body");
    const fake = await startFakeLmdeploy();
    const olla = await startOlla(configYaml([
      quietEndpoint("broken", broken.url, "        priority: 100\n"),
      quietEndpoint("gpu", fake.url, "        priority: 50\n"),
    ], "proxy:\n  load_balancer: priority\n  read_timeout: 300ms\n"));
    try {
      const started = Date.now();
      const served = await whileCollectingGarbage(() => within(3_000, chat(olla)));
      assert.equal(served.status, 200);
      assert.equal(served.headers.get("x-olla-endpoint"), "gpu");
      assert.equal(served.headers.get("x-olla-failovers"), "1");
      assert.ok(Date.now() - started >= 250, "the error body was waited for up to read_timeout");
      await served.body?.cancel();
    } finally {
      await olla.close();
      await Promise.all([broken.close(), fake.close()]);
    }
  });

  test("a 502 from one endpoint fails over to another", async () => {
    await withFleet(2, {}, async (olla, [first]) => {
      first.fault = "status:502";
      const response = await chat(olla);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-2");
      assert.equal(response.headers.get("x-olla-failovers"), "1");
      await response.body?.cancel();
    });
  });

  test("a 503 from a sleeping engine fails over and marks the endpoint sleeping at once", async () => {
    await withFleet(2, {}, async (olla, [first]) => {
      first.sleep();
      const response = await chat(olla, { stream: true });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-2");
      await readChunks(response);
      assert.equal(olla.service.registry.get("gpu-1")?.status, "sleeping");
      const next = await chat(olla);
      assert.equal(
        next.headers.get("x-olla-failovers"),
        null,
        "later requests skip the sleeping endpoint",
      );
      await next.body?.cancel();
    });
  });

  test("a 429 fails over and keeps the endpoint out of rotation for its Retry-After", async () => {
    await withFleet(2, {}, async (olla, [first]) => {
      first.fault = "status:429";
      const response = await chat(olla);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-2");
      await response.body?.cancel();
      const rateLimitedUntil = olla.service.registry.get("gpu-1")?.rateLimitedUntil ?? 0;
      assert.ok(
        rateLimitedUntil > performance.timeOrigin + performance.now(),
        "kept out for Retry-After: 1",
      );
      assert.equal(first.count("/v1/chat/completions"), 1);
      const next = await chat(olla);
      await next.body?.cancel();
      assert.equal(first.count("/v1/chat/completions"), 1, "not retried during Retry-After");
    });
  });

  test("when every endpoint fails, the last backend answer reaches the client unchanged", async () => {
    await withFleet(2, {}, async (olla, fakes) => {
      for (const fake of fakes) fake.fault = "status:503";
      const response = await chat(olla);
      assert.equal(response.status, 503);
      assert.deepEqual(await response.json(), {
        message: "fake status 503",
        type: "server_error",
        code: 503,
        param: null,
        object: "error",
      });
      assert.equal(response.headers.get("x-olla-failovers"), "2");
    });
  });

  test("a response-header timeout fails over", async () => {
    await withFleet(2, {
      fakes: [{ ttftMs: 5_000 }, {}],
      config: (urls) =>
        configYaml(
          [
            quietEndpoint("gpu-1", urls[0], "        priority: 100\n"),
            quietEndpoint("gpu-2", urls[1], "        priority: 50\n"),
          ],
          "proxy:\n  load_balancer: priority\n  response_header_timeout: 300ms\n",
        ),
    }, async (olla, [first]) => {
      const started = Date.now();
      const response = await chat(olla);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-endpoint"), "gpu-2");
      await response.body?.cancel();
      assert.ok(Date.now() - started < 2_000);
      await until(() => first.active === 0);
      assert.equal(first.aborted, 1, "the slow attempt was aborted upstream");
    });
  });

  test("4xx answers other than 429 are returned as they are, without failover", async () => {
    await withFleet(2, {}, async (olla, fakes) => {
      const response = await chat(olla, { temperature: 9 });
      assert.equal(response.status, 400);
      await response.body?.cancel();
      assert.equal(fakes[1].count("/v1/chat/completions"), 0);
    });
  });

  test("attempts are bounded by proxy.max_retries", async () => {
    await withFleet(3, {
      proxy: "proxy:\n  max_retries: 1\n",
    }, async (olla, fakes) => {
      for (const fake of fakes) fake.fault = "status:502";
      const response = await chat(olla);
      assert.equal(response.status, 502);
      await response.body?.cancel();
      const attempts = fakes.reduce((sum, fake) => sum + fake.count("/v1/chat/completions"), 0);
      assert.equal(attempts, 2);
    });
  });
});

describe("after the first byte", () => {
  test("never retries; a stream cut mid-way ends with an SSE error event and [DONE]", async () => {
    await withFleet(2, {}, async (olla, [, second]) => {
      const response = await chat(olla, { stream: true }, {
        "x-fake-fault": "drop-after:2",
        "x-fake-tokens": "10",
        "x-fake-itl-ms": "50",
      });
      assert.equal(response.status, 200);
      const text = await readText(response);
      const events = text.split("\n\n").filter(Boolean);
      assert.equal(events.length, 4, text);
      assert.match(events[2], /^data: \{"error":\{"message":"The backend connection was lost/);
      assert.equal(events[3], "data: [DONE]");
      assert.equal(second.count("/v1/chat/completions"), 0, "no retry after the first byte");
    });
  });
});

describe("session affinity", () => {
  test("an LMDeploy session_id always reaches the endpoint holding the session", async () => {
    await withFleet(3, {
      proxy: "proxy:\n  load_balancer: round-robin\n",
    }, async (olla) => {
      const endpointsFor = async (sessionId: number) => {
        const seen = new Set<string>();
        for (let i = 0; i < 12; i++) {
          const response = await fetch(`${olla.url}/olla/lmdeploy/generate`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ prompt: `turn ${i}`, session_id: sessionId }),
          });
          assert.equal(response.status, 200);
          seen.add(response.headers.get("x-olla-endpoint") ?? "");
          if (i > 0) assert.equal(response.headers.get("x-olla-sticky-session"), "hit");
          assert.equal(response.headers.get("x-olla-sticky-key-source"), "session_id");
          await response.body?.cancel();
        }
        return seen;
      };
      assert.equal((await endpointsFor(42)).size, 1);
      const spread = new Set<string>();
      for (const session of [1, 2, 3, 4, 5, 6]) {
        for (const name of await endpointsFor(session)) spread.add(name);
      }
      assert.ok(spread.size > 1, "different sessions spread across endpoints");
    });
  });

  test("a pin moves when its endpoint stops being routable", async () => {
    await withFleet(2, {
      proxy: "proxy:\n  load_balancer: round-robin\n",
    }, async (olla, fakes) => {
      const send = async () => {
        const response = await fetch(`${olla.url}/olla/lmdeploy/generate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "x", session_id: 7 }),
        });
        await response.body?.cancel();
        return response;
      };
      const first = (await send()).headers.get("x-olla-endpoint");
      await fakes[first === "gpu-1" ? 0 : 1].close();
      const moved = await send();
      assert.equal(moved.status, 200);
      assert.notEqual(moved.headers.get("x-olla-endpoint"), first);
      const again = await send();
      assert.equal(again.headers.get("x-olla-endpoint"), moved.headers.get("x-olla-endpoint"));
      assert.equal(again.headers.get("x-olla-sticky-session"), "hit");
    });
  });

  test("sticky sessions keep an X-Olla-Session-ID conversation on one endpoint and echo the id", async () => {
    await withFleet(3, {
      proxy: "proxy:\n  load_balancer: round-robin\n  sticky_sessions:\n    enabled: true\n",
    }, async (olla) => {
      const seen = new Set<string>();
      for (let i = 0; i < 9; i++) {
        const response = await chat(olla, {}, { "x-olla-session-id": "conversation-1" });
        seen.add(response.headers.get("x-olla-endpoint") ?? "");
        assert.equal(response.headers.get("x-olla-session-id"), "conversation-1");
        assert.equal(response.headers.get("x-olla-sticky-key-source"), "session_header");
        assert.equal(response.headers.get("x-olla-sticky-session"), i === 0 ? "miss" : "hit");
        await response.body?.cancel();
      }
      assert.equal(seen.size, 1);
    });
  });
});

describe("timeouts", () => {
  /** One quiet endpoint with `proxy` settings; `run` gets a streamed chat's text and time. */
  function streamWith(
    proxy: string,
    fakeHeaders: Record<string, string>,
    run: (
      result: { text: string; elapsed: number; olla: TestOlla; fake: FakeLmdeploy },
    ) => Promise<void>,
  ): Promise<void> {
    return withFleet(1, {
      config: (urls) => configYaml([quietEndpoint("gpu-1", urls[0])], `proxy:\n${proxy}`),
    }, async (olla, [fake]) => {
      const started = Date.now();
      const text = await readText(await chat(olla, { stream: true }, fakeHeaders));
      await run({ text, elapsed: Date.now() - started, olla, fake });
    });
  }

  test("a stream silent longer than proxy.read_timeout is ended with an SSE error event and aborted upstream", async () => {
    await streamWith("  read_timeout: 300ms\n", {
      "x-fake-itl-ms": "2000",
      "x-fake-tokens": "5",
    }, async ({ text, elapsed, fake }) => {
      assert.ok(elapsed < 1_500);
      assert.match(
        text,
        /data: \{"error":\{"message":"The backend sent nothing for longer than proxy\.read_timeout/,
      );
      assert.match(text, /data: \[DONE\]\n\n$/);
      await until(() => fake.aborted === 1);
    });
  });

  test("proxy.response_timeout ends a long stream, and answers 504 when headers never came", async () => {
    await streamWith("  response_timeout: 500ms\n", {
      "x-fake-itl-ms": "100",
      "x-fake-tokens": "50",
    }, async ({ text, elapsed, olla, fake }) => {
      assert.ok(elapsed >= 450 && elapsed < 1_500, `ended after ${elapsed}ms`);
      assert.match(text, /proxy\.response_timeout/);
      assert.match(text, /data: \[DONE\]\n\n$/);
      const slow = await chat(olla, {}, { "x-fake-ttft-ms": "3000" });
      assert.equal(slow.status, 504);
      assert.equal((await slow.json()).error.code, "response_timeout");
      await until(() => fake.active === 0);
    });
  });
});

describe("timeouts, with the heap collected while the answer waits", () => {
  // Deno's fetch loses the link from an abort to the response body at a garbage collection
  // after the headers (lib/upstream/body_abort.ts): every timeout must still end the answer.

  for (
    const [setting, fakeHeaders, message] of [
      ["read_timeout: 300ms", { "x-fake-itl-ms": "2000", "x-fake-tokens": "5" }, /read_timeout/],
      [
        "response_timeout: 500ms",
        { "x-fake-itl-ms": "400", "x-fake-tokens": "20" },
        /response_timeout/,
      ],
    ] as const
  ) {
    test(`proxy.${setting} still ends a stream with its error event`, async () => {
      await withFleet(1, {
        config: (urls) => configYaml([quietEndpoint("gpu-1", urls[0])], `proxy:\n  ${setting}\n`),
      }, async (olla, [fake]) => {
        const text = await whileCollectingGarbage(async () =>
          within(3_000, readText(await chat(olla, { stream: true }, fakeHeaders)))
        );
        assert.match(text, message);
        assert.match(text, /data: \[DONE\]\n\n$/);
        await until(() => fake.active === 0);
      });
    });
  }

  test("proxy.read_timeout still fails a non-streamed answer whose body stalls", async () => {
    const stalled = await startRawServer("stalled-body");
    const olla = await startOlla(
      configYaml([quietEndpoint("stalled", stalled.url)], "proxy:\n  read_timeout: 300ms\n"),
    );
    try {
      const response = await whileCollectingGarbage(() => within(3_000, chat(olla)));
      assert.equal(response.status, 504);
      assert.equal((await response.json()).error.code, "body_timeout");
    } finally {
      await olla.close();
      await stalled.close();
    }
  });
});

describe("admission control", () => {
  test("max_concurrent_requests bounds concurrency at the backend; the rest wait in the queue", async () => {
    await withFleet(1, {
      config: (urls) =>
        configYaml([
          quietEndpoint(
            "gpu-1",
            urls[0],
            "        max_concurrent_requests: 2\n        queue_size: 10\n",
          ),
        ]),
    }, async (olla, [fake]) => {
      const responses = await Promise.all(
        Array.from(
          { length: 8 },
          () =>
            chat(olla, { stream: true }, { "x-fake-itl-ms": "30", "x-fake-tokens": "4" }).then(
              readText,
            ),
        ),
      );
      for (const text of responses) assert.match(text, /\[DONE\]/);
      assert.equal(fake.maxActive, 2);
    });
  });

  test("a full queue answers 429 with Retry-After", async () => {
    await withFleet(1, {
      config: (urls) =>
        configYaml([
          quietEndpoint(
            "gpu-1",
            urls[0],
            "        max_concurrent_requests: 1\n        queue_size: 1\n",
          ),
        ]),
    }, async (olla) => {
      const results = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const response = await chat(olla, {}, { "x-fake-ttft-ms": "300" });
          return { response, body: await response.json() };
        }),
      );
      const statuses = results.map(({ response }) => response.status).sort();
      assert.deepEqual(statuses, [200, 200, 429]);
      const refused = results.find(({ response }) => response.status === 429);
      assert.ok(Number(refused?.response.headers.get("retry-after")) >= 1);
      assert.equal(refused?.body.error.code, "queue_full");
    });
  });
});

describe("registry under change (issue: sleep, kill, restart)", () => {
  test("requests keep succeeding while one LMDeploy is put to sleep, killed and restarted", async () => {
    const steady = await startFakeLmdeploy();
    let flaky = await startFakeLmdeploy();
    const port = flaky.port;
    const olla = await startOlla(
      configYaml([endpointYaml("flaky", flaky.url), endpointYaml("steady", steady.url)]),
    );
    const failures: string[] = [];
    let sent = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        const response = await chat(olla);
        sent++;
        if (response.status !== 200) failures.push(`${response.status} ${await response.text()}`);
        else await response.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    try {
      const status = () => olla.service.registry.get("flaky")?.status;
      flaky.sleep();
      await until(() => status() === "sleeping");
      await flaky.close();
      await until(() => status() === "offline");
      flaky = await startFakeLmdeploy({ port });
      await until(() => status() === "healthy");
      await until(() => flaky.count("/v1/models") >= 1); // recovery re-reads the model list
      const served = flaky.count("/v1/chat/completions");
      await until(() => flaky.count("/v1/chat/completions") > served);
    } finally {
      running = false;
      await traffic;
      await olla.close();
      await flaky.close();
      await steady.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(sent > 20, `${sent} requests`);
  });
});

describe("model aliases", () => {
  test("the body's model is rewritten for the chosen endpoint and nothing else changes", async () => {
    const qwen = await startFakeLmdeploy({ modelName: "Qwen/Qwen2.5-7B-Instruct" });
    const olla = await startOlla(
      configYaml([quietEndpoint("qwen", qwen.url)]) +
        'model_aliases:\n  chat: ["internlm/internlm2_5-7b-chat", "Qwen/Qwen2.5-7B-Instruct"]\n',
    );
    try {
      const sent =
        '{"model" :  "chat","messages":[{"role":"user","content":"model: chat"}],"extra":{"model":"chat"}}';
      const response = await fetch(`${olla.url}/olla/lmdeploy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: sent,
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-model"), "chat");
      assert.equal(response.headers.get("x-olla-routing-reason"), "alias_resolved");
      await response.body?.cancel();
      const received = new TextDecoder().decode(
        qwen.requests.findLast((r) => r.path === "/v1/chat/completions")?.body,
      );
      assert.equal(
        received,
        sent.replace('"chat","messages"', '"Qwen/Qwen2.5-7B-Instruct","messages"'),
      );
    } finally {
      await olla.close();
      await qwen.close();
    }
  });
});
