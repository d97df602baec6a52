/**
 * The status page's data without a browser: the time-series ring (bounds, rollover,
 * rates and percentiles), the event feed (capacity, replay, closing), the live event
 * stream over a socket, and the embedded assets matching their sources in ui/.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { configYaml, endpointYaml, startOlla } from "./_harness.ts";
import { FakeClock } from "./fakes/clock.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { EventFeed } from "../lib/observability/events.ts";
import { TimeSeries } from "../lib/observability/timeseries.ts";
import { renderUiAssets } from "../lib/server/ui_bundle.ts";

describe("TimeSeries", () => {
  const make = (clock = new FakeClock()) => {
    let inflight = 0;
    const series = new TimeSeries({
      clock,
      intervalMs: 5_000,
      capacity: 3,
      inflight: () => ({ total: inflight, endpoints: [["a", inflight]] }),
    });
    return { series, clock, setInflight: (n: number) => inflight = n };
  };

  test("one sample per interval: rates per second, TTFT percentiles, per-endpoint counts", async () => {
    const { series, clock, setInflight } = make();
    series.start();
    for (let i = 1; i <= 10; i++) {
      series.record({ endpoint: "a", failed: i === 10, ttftMs: i * 10, completionTokens: 5 });
    }
    setInflight(2);
    await clock.advance(5_000);
    assert.equal(series.samples.length, 1);
    const [sample] = series.samples;
    assert.equal(sample.requests_per_s, 2);
    assert.equal(sample.errors_per_s, 0.2);
    assert.equal(sample.tokens_per_s, 10);
    assert.equal(sample.ttft_p50_ms, 60);
    assert.equal(sample.ttft_p95_ms, 100);
    assert.deepEqual(sample.endpoints.a, { requests_per_s: 2, errors_per_s: 0.2, inflight: 2 });
    assert.equal(sample.inflight, 2);
    await clock.advance(5_000);
    assert.equal(series.samples[1].requests_per_s, 0, "the next interval starts empty");
    assert.equal(series.samples[1].ttft_p50_ms, null);
    series.stop();
  });

  test("keeps at most `capacity` samples, oldest dropped first; stop() leaves no timer", async () => {
    const { series, clock } = make();
    series.start();
    for (let i = 0; i < 5; i++) await clock.advance(5_000);
    assert.equal(series.samples.length, 3);
    assert.deepEqual(series.samples.map((s) => s.t - series.samples[0].t), [0, 5_000, 10_000]);
    series.stop();
    assert.equal(clock.pending, 0);
  });
});

describe("EventFeed", () => {
  test("keeps the last events, replays after an id, tells listeners, and closes them", () => {
    let now = 1_000;
    const feed = new EventFeed(() => now++, 3);
    const heard: number[] = [];
    const unsubscribe = feed.subscribe((event) => heard.push(event.id));
    for (let i = 0; i < 5; i++) feed.push("status", `change ${i}`, "a");
    assert.deepEqual(feed.recent().map((e) => e.id), [3, 4, 5]);
    assert.deepEqual(feed.recent(4).map((e) => e.id), [5]);
    assert.deepEqual(heard, [1, 2, 3, 4, 5]);
    unsubscribe();
    let ended = 0;
    feed.onClose(() => ended++);
    feed.close();
    assert.equal(ended, 1);
    feed.onClose(() => ended++);
    assert.equal(ended, 2, "a stream opened after close ends at once");
  });
});

describe("/internal/events", () => {
  test("replays recent events, streams new ones, and ends when olla-ts stops", async () => {
    const a = await startFakeLmdeploy();
    const olla = await startOlla(configYaml([endpointYaml("gpu-a", a.url)]));
    const response = await fetch(`${olla.url}/internal/events`);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    assert.ok(response.body);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { done, value } = await reader.read();
        if (done) return false;
        text += decoder.decode(value, { stream: true });
      }
      return true;
    };
    assert.ok(await readUntil(/"endpoint":"gpu-a"/), "the replay has gpu-a's first status change");
    await a.close();
    assert.ok(await readUntil(/-> offline/), "a live event arrives");
    // Stopping the service (as shutdown does first) ends the stream; the server still runs.
    olla.service.stop();
    assert.equal(await readUntil(/never/), false, "the stream ended with olla-ts");
    await olla.close();
  });
});

describe("/internal/events, a client that stops reading", () => {
  test("is cut off once a megabyte waits for it, and leaves no listener behind", async () => {
    const a = await startFakeLmdeploy();
    const olla = await startOlla(configYaml([endpointYaml("gpu-a", a.url)]));
    try {
      const feed = olla.service.telemetry.events;
      const before = feed.listeners;
      // In process, with nobody reading the body: everything sent waits in its queue.
      const response = await olla.service.fetch(
        new Request("http://127.0.0.1/internal/events", { headers: { host: "127.0.0.1" } }),
        { remoteAddr: "127.0.0.1" },
      );
      assert.equal(response.status, 200);
      assert.equal(feed.listeners, before + 1);
      const detail = "x".repeat(1_000);
      for (let i = 0; i < 1_100; i++) feed.push("operator", detail, "gpu-a");
      assert.equal(feed.listeners, before, "unsubscribed");
      await assert.rejects(response.text(), "the stream ended with an error");
    } finally {
      await olla.close();
      await a.close();
    }
  });
});

describe("lib/server/ui_assets.ts", () => {
  test("is exactly what ui/ renders to (run `deno task ui:assets` after changing ui/)", async () => {
    const dir = new URL("../ui/", import.meta.url);
    const names = await readdir(dir);
    const sources = await Promise.all(
      names.map(async (name) => ({ name, text: await readFile(new URL(name, dir), "utf8") })),
    );
    const committed = await readFile(
      new URL("../lib/server/ui_assets.ts", import.meta.url),
      "utf8",
    );
    assert.equal(committed, await renderUiAssets(sources));
  });

  test("the page is small and needs nothing from elsewhere", async () => {
    const dir = new URL("../ui/", import.meta.url);
    let size = 0;
    for (const name of await readdir(dir)) {
      const text = await readFile(new URL(name, dir), "utf8");
      size += new TextEncoder().encode(text).byteLength;
      assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(text), `${name} names no other origin`);
    }
    assert.ok(size < 150 * 1024, `${size} bytes`);
  });
});
