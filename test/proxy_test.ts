// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registryOf } from "./_endpoints.ts";
import { FakeClock, settle } from "./fakes/clock.ts";
import { fakeFetch, type FetchScript, hang, jsonResponse } from "./fakes/fetch.ts";
import { configSpec } from "../lib/config/schema.ts";
import { Deadlines } from "../lib/deadlines.ts";
import { silentLogger } from "../lib/log.ts";
import { Proxy } from "../lib/proxy/forward.ts";
import { RequestRecord } from "../lib/proxy/request_record.ts";
import { createBalancer } from "../lib/routing/balancer.ts";
import { selectCandidates } from "../lib/routing/candidates.ts";
import { ParseContext } from "../lib/schema/spec.ts";

const config = configSpec.parse(
  { proxy: { connection_timeout: "1s", load_balancer: "priority" } },
  [],
  new ParseContext(),
);

function setup(script: FetchScript, reachable: (host: string) => boolean) {
  const clock = new FakeClock();
  const registry = registryOf([
    { name: "blackhole", url: "http://10.9.9.9:23333", priority: 100 },
    { name: "good", url: "http://good:23333", priority: 50 },
  ], clock);
  const fetch = fakeFetch(script);
  const probes: string[] = [];
  const proxy = new Proxy({
    registry,
    balancer: createBalancer("priority", { random: () => 0 }),
    admissions: new Map(),
    clock,
    deadlines: new Deadlines(clock),
    logger: silentLogger,
    fetch,
    canConnect: (host) => {
      probes.push(host);
      return Promise.resolve(reachable(host));
    },
    proxy: config.proxy,
  });
  const forward = () => {
    const record = new RequestRecord("r1", "POST", "127.0.0.1", clock.now(), "/x");
    return proxy.forward({
      record,
      method: "POST",
      upstreamPath: "/v1/chat/completions",
      headers: new Headers({ "content-type": "application/json" }),
      body: new TextEncoder().encode('{"model":"m"}'),
      modelRange: undefined,
      selection: selectCandidates({
        registry,
        scope: registry.endpoints,
        model: undefined,
        strategy: config.model_registry.routing_strategy,
        aliases: {},
        now: clock.now(),
      }),
      preferred: undefined,
      forwarding: { clientIp: "127.0.0.1", proto: "http", host: "olla" },
      signal: new AbortController().signal,
    }).then((response) => ({ response, record }));
  };
  return { clock, registry, fetch, probes, forward };
}

describe("Proxy connect watchdog", () => {
  test("an upstream silent past connection_timeout and unreachable over TCP fails over", async () => {
    const { clock, registry, probes, forward } = setup(
      (call, signal) =>
        call.url.startsWith("http://10.9.9.9") ? hang(signal) : jsonResponse(200, { ok: true }),
      (host) => host !== "10.9.9.9",
    );
    const pending = forward();
    await clock.advance(999);
    assert.deepEqual(probes, []);
    await clock.advance(1);
    await settle();
    const { response, record } = await pending;
    assert.equal(response.status, 200);
    assert.deepEqual(probes, ["10.9.9.9"]);
    assert.deepEqual(record.failovers, [{ endpoint: "blackhole", reason: "connect_timeout" }]);
    assert.equal(registry.get("blackhole")!.status, "offline");
  });

  test("a reachable upstream that is merely slow (a long prefill) keeps its request", async () => {
    let answer: (response: Response) => void = () => {};
    const { clock, probes, forward } = setup(
      () => new Promise<Response>((resolve) => answer = resolve),
      () => true,
    );
    const pending = forward();
    await clock.advance(5_000);
    assert.deepEqual(probes, ["10.9.9.9"]);
    answer(jsonResponse(200, { slow: true }));
    const { response, record } = await pending;
    assert.deepEqual(await response.json(), { slow: true });
    assert.deepEqual(record.failovers, []);
  });
});
