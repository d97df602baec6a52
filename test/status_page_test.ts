/**
 * The status page in a real headless Chromium, against olla-ts in front of two LMDeploy
 * fakes: it shows every endpoint, a fake going down shows within seconds without a
 * reload, the console stays clean, no request leaves olla-ts, and it fits a phone's
 * width. `OLLA_SCREENSHOT=docs/status-page.png` also saves a screenshot there.
 *
 * Without a Chromium on the machine the test is skipped, saying so; `.ci/run` installs
 * Debian's `chromium`, so CI always runs it.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import process from "node:process";
import { describe, test } from "node:test";
import { findChromium, openBrowser } from "./_browser.ts";
import { chat, configYaml, endpointYaml, startOlla, until } from "./_harness.ts";
import { rawRequest } from "./_raw_http.ts";
import { findRedisServer, startRedis } from "./_redis.ts";
import { startFakeLmdeploy } from "./fakes/lmdeploy.ts";

const chromium = findChromium();

describe("status page", () => {
  test("shows the fleet live in a real browser", {
    skip: chromium ? false : "no Chromium installed",
  }, async () => {
    const a = await startFakeLmdeploy();
    const b = await startFakeLmdeploy({ modelName: "Qwen/Qwen2.5-7B-Instruct" });
    const olla = await startOlla(
      configYaml([endpointYaml("gpu-a", a.url), endpointYaml("gpu-b", b.url)]),
    );
    const page = await openBrowser(chromium as string);
    try {
      // A few intervals of traffic, so the charts have lines to draw.
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < (round % 4) + 1; i++) {
          await (await chat(olla, { stream: round % 2 === 0 })).text();
        }
        olla.service.telemetry.timeseries.sample();
      }
      await page.setViewport(1280, 900);
      await page.navigate(`${olla.url}/internal/ui`);
      const rows = () =>
        page.evaluate<[string, string][]>(
          `[...document.querySelectorAll("#endpoints tbody tr")].map((row) => [row.cells[0].textContent, row.cells[3].textContent])`,
        );
      await until(async () => (await rows()).length === 2, 5_000, "both endpoints shown");
      assert.deepEqual(await rows(), [["gpu-a", "healthy"], ["gpu-b", "healthy"]]);
      assert.equal(await page.evaluate<string>(`document.location.pathname`), "/internal/ui/");
      assert.equal(
        await page.evaluate<string>(`document.getElementById("status").textContent`),
        "healthy",
      );
      const models = await page.evaluate<number>(
        `document.querySelectorAll("#models tbody tr").length`,
      );
      assert.equal(models, 2);
      const chart = await page.evaluate<number>(
        `document.querySelectorAll("#chart-requests polyline").length`,
      );
      assert.ok(chart >= 1, "the requests chart has a line per endpoint");
      assert.equal(
        await page.evaluate<boolean>(`document.getElementById("cluster-section").hidden`),
        true,
        "no cluster section without cluster.redis_url",
      );

      await b.close();
      const started = Date.now();
      await until(
        async () =>
          (await rows()).some(([name, status]) => name === "gpu-b" && status !== "healthy"),
        5_000,
        "gpu-b shown as down",
      );
      assert.ok(Date.now() - started < 5_000);
      const events = await page.evaluate<string>(`document.getElementById("events").textContent`);
      assert.match(events, /gpu-b/, "the status change is in the recent events");

      if (process.env.OLLA_SCREENSHOT) {
        await writeFile(process.env.OLLA_SCREENSHOT, await page.screenshot());
      }
      const png = await page.screenshot();
      assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");

      await page.setViewport(390, 844);
      const overflow = await page.evaluate<number>(
        `document.documentElement.scrollWidth - window.innerWidth`,
      );
      assert.ok(overflow <= 1, `the page fits a phone's width (overflow ${overflow}px)`);

      assert.deepEqual(page.errors, [], "no console errors");
      const origin = new URL(olla.url).origin;
      const foreign = page.requests.filter((url) =>
        !url.startsWith(origin) && !url.startsWith("data:") && url !== "about:blank"
      );
      assert.deepEqual(foreign, [], "no request leaves olla-ts");
    } finally {
      await page.close();
      await olla.close();
      await a.close();
      await b.close().catch(() => {});
    }
  });

  test("drains and undrains an endpoint from its row, confirmed first, with management routes on", {
    skip: chromium ? false : "no Chromium installed",
  }, async () => {
    const a = await startFakeLmdeploy();
    const olla = await startOlla(
      configYaml([endpointYaml("gpu-a", a.url)], "proxy:\n  allow_management_routes: true\n"),
    );
    const page = await openBrowser(chromium as string);
    try {
      await page.navigate(`${olla.url}/internal/ui/`);
      const button = `document.querySelector('tr[data-endpoint="gpu-a"] button[data-action]')`;
      await until(
        async () =>
          (await page.evaluate<string | null>(`${button}?.dataset.action ?? null`)) === "drain",
        5_000,
        "the drain button",
      );
      // Declined: nothing happens.
      await page.evaluate(`window.confirm = () => false; ${button}.click(); true`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(
        olla.service.registry.get("gpu-a")?.held,
        false,
        "a declined drain does nothing",
      );
      await page.evaluate(`window.confirm = () => true; ${button}.click(); true`);
      await until(() => olla.service.registry.get("gpu-a")?.held === true, 5_000, "drained");
      await until(
        async () =>
          (await page.evaluate<string>(
            `document.querySelector('tr[data-endpoint="gpu-a"]').cells[3].textContent`,
          )) === "drained",
        5_000,
        "shown as drained",
      );
      const drained = await chat(olla);
      assert.equal(drained.status, 503, "a drained endpoint takes nothing new");
      await drained.body?.cancel();
      await until(
        async () =>
          (await page.evaluate<string | null>(`${button}?.dataset.action ?? null`)) === "undrain",
        5_000,
        "the undrain button",
      );
      await page.evaluate(`${button}.click(); true`);
      await until(() => olla.service.registry.get("gpu-a")?.held === false, 5_000, "undrained");
      assert.ok(olla.logs.some((log) => log.msg === "endpoint action" && log.action === "drain"));
      assert.deepEqual(page.errors, [], "no console errors");
    } finally {
      await page.close();
      await olla.close();
      await a.close();
    }
  });

  test("the page's headers: a strict CSP, no framing, no sniffing; the Host guard", async () => {
    const olla = await startOlla(configYaml([]), { waitForHealthy: false });
    try {
      const page = await fetch(`${olla.url}/internal/ui/`);
      assert.equal(page.status, 200);
      assert.match(
        page.headers.get("content-security-policy") ?? "",
        /default-src 'none'; script-src 'self'; style-src 'self'/,
      );
      assert.equal(page.headers.get("x-frame-options"), "DENY");
      assert.equal(page.headers.get("x-content-type-options"), "nosniff");
      const html = await page.text();
      assert.ok(!/<script>|\son[a-z]+=|style=/i.test(html), "no inline script, handler or style");
      const redirect = await fetch(`${olla.url}/internal/ui`, { redirect: "manual" });
      assert.equal(redirect.status, 307);
      assert.equal(redirect.headers.get("location"), "/internal/ui/");
      await redirect.body?.cancel();
      // fetch() will not send another Host; a raw request does, as a rebinding attack would.
      const port = Number(new URL(olla.url).port);
      const raw = (host: string) =>
        rawRequest(
          port,
          `GET /internal/ui/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        );
      assert.equal((await raw("evil.example")).status, 403);
      assert.equal((await raw("localhost:9")).status, 200, "localhost is allowed by default");
      const missing = await fetch(`${olla.url}/internal/ui/nope.js`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      let weight = 0;
      for (const name of ["", "app.js", "app.css"]) {
        weight += (await (await fetch(`${olla.url}/internal/ui/${name}`)).arrayBuffer()).byteLength;
      }
      assert.ok(weight < 150 * 1024, `page weight ${weight} bytes`);
    } finally {
      await olla.close();
    }
  });
  test("shows the other instances of a cluster and what they see", {
    skip: !chromium ? "no Chromium installed" : findRedisServer() ? false : "no redis-server",
  }, async () => {
    const redis = await startRedis(findRedisServer() as string);
    const fake = await startFakeLmdeploy();
    const cluster = (id: string) =>
      `${
        configYaml([endpointYaml("gpu-a", fake.url)])
      }cluster:\n  redis_url: ${redis.url}\n  instance_id: ${id}\n  key_prefix: "ui-test:"\n`;
    const a = await startOlla(cluster("proxy-a"));
    const b = await startOlla(cluster("proxy-b"));
    const page = await openBrowser(chromium as string);
    try {
      await page.navigate(`${a.url}/internal/ui/`);
      const shown = () =>
        page.evaluate<string[][]>(
          `[...document.querySelectorAll("#cluster tbody tr")].map((row) => [...row.cells].map((c) => c.textContent))`,
        );
      // proxy-b's first heartbeats may precede its first probe: wait for what it sees now.
      await until(
        async () => (await shown())[0]?.[3] === "gpu-a: healthy, 0 in flight",
        5_000,
        "the other instance shown with what it sees",
      );
      const rows = await shown();
      assert.equal(rows.length, 1);
      assert.equal(rows[0][0], "proxy-b");
      assert.equal(
        await page.evaluate<boolean>(`document.getElementById("cluster-section").hidden`),
        false,
      );
      assert.match(
        await page.evaluate<string>(`document.getElementById("cluster-summary").textContent`),
        /proxy-a; Redis connected; 1 other instance\./,
      );
      assert.deepEqual(page.errors, [], "no console errors");
    } finally {
      await page.close();
      await Promise.all([a.close(), b.close()]);
      await Promise.all([fake.close(), redis.stop()]);
    }
  });
});
