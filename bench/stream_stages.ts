// deno-lint-ignore-file no-console
/**
 * What a JavaScript stream body costs per SSE frame, by kind of stream
 * (`deno task bench:stages`): the body-aware passthrough (bench/body_passthrough.ts) with
 * its answer passed natively and through each minimal stage it offers, on each runtime
 * (the byte-stream stages on Deno only, whose `fetch` bodies are byte streams; Bun's
 * direct stream on Bun only). 20 paced streams of 50 frames 20 ms apart per round, from
 * bench/stream_client.mjs; reported are the medians over 5 alternating rounds of the
 * process CPU per frame and the frame delay p50.
 *
 * Writes bench/results/stages-latest.{json,md} (also run by `deno task bench`); `--smoke`
 * runs one round and checks only that numbers came out.
 *
 * @module
 */
import { Children, cpuUs, freePort, waitFor } from "./_process.ts";
import { writeReport } from "./_report.ts";
import { median, requireTools } from "./_wrk.ts";

const smoke = Deno.args.includes("--smoke");
const ROUNDS = smoke ? 1 : 5;
const ROOT = new URL("../", import.meta.url).pathname;
const STAGES = {
  deno: ["native", "wrap", "byob", "bytes", "transform"],
  bun: ["native", "wrap", "direct", "transform"],
} as const;

await requireTools("bench:stages", [["bun", "--version"], ["node", "--version"]], "bun from npm");
const children = new Children(ROOT);

interface Row {
  runtime: string;
  stage: string;
  cpu_us_per_frame: number;
  of_native: number;
  frame_delay_p50_ms: number;
}

async function streams(url: string): Promise<{ frames: number; delayP50: number }> {
  const out = await new Deno.Command("node", {
    args: [`${ROOT}bench/stream_client.mjs`, url, "20", "50", "20"],
    stdout: "piped",
  }).output();
  const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "{}");
  return { frames: result.frames_received ?? 0, delayP50: result.frame_delay_ms?.p50 ?? NaN };
}

async function measureRuntime(runtime: "deno" | "bun", upstream: string): Promise<Row[]> {
  const contenders = STAGES[runtime].map((stage) => {
    const port = freePort();
    const args = ["bench/body_passthrough.ts", String(port), upstream];
    if (stage !== "native") args.push(stage);
    const child = runtime === "deno"
      ? children.start(Deno.execPath(), ["run", "-A", ...args])
      : children.start("bun", args);
    return { stage, child, url: `http://127.0.0.1:${port}/v1/chat/completions` };
  });
  for (const { url } of contenders) await waitFor(url.replace("/chat/completions", "/models"));
  const cpu: Record<string, number[]> = {};
  const delay: Record<string, number[]> = {};
  // Round 0 warms every contender up and is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const { stage, child, url } of contenders) {
      const before = cpuUs(child.pid);
      const result = await streams(url);
      if (round === 0 || result.frames === 0) continue;
      (cpu[stage] ??= []).push((cpuUs(child.pid) - before) / result.frames);
      (delay[stage] ??= []).push(result.delayP50);
    }
  }
  for (const { child } of contenders) child.kill("SIGTERM");
  await Promise.all(contenders.map(({ child }) => child.status));
  const native = median(cpu.native ?? [NaN]);
  return contenders.map(({ stage }) => ({
    runtime: runtime === "deno" ? "Deno" : "Bun",
    stage,
    cpu_us_per_frame: Math.round(median(cpu[stage] ?? [NaN]) * 10) / 10,
    of_native: Math.round(median(cpu[stage] ?? [NaN]) / native * 100) / 100,
    frame_delay_p50_ms: Math.round(median(delay[stage] ?? [NaN]) * 100) / 100,
  }));
}

const rows: Row[] = [];
try {
  const upstreamPort = freePort();
  children.start("bun", ["bench/upstream.ts", String(upstreamPort)]);
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  await waitFor(`${upstream}/health`, 30_000, (status) => status >= 200 && status < 300);
  for (const runtime of ["deno", "bun"] as const) {
    rows.push(...await measureRuntime(runtime, upstream));
  }
} finally {
  children.killAll();
}

const date = new Date().toISOString();
const table = [
  `A JavaScript stream body per SSE frame (${
    date.slice(0, 10)
  }; 20 paced streams x 50 frames, ${ROUNDS} rounds, medians):`,
  "",
  "| runtime | stage | CPU/frame | of native | frame delay p50 |",
  "| ------- | ----- | --------- | --------- | --------------- |",
  ...rows.map((r) =>
    `| ${r.runtime} | ${r.stage} | ${r.cpu_us_per_frame} us | ${r.of_native}x | ${r.frame_delay_p50_ms} ms |`
  ),
].join("\n");
console.log(table);
await writeReport("stages", smoke, { date, rows }, table);

if (smoke && !rows.every((r) => r.cpu_us_per_frame > 0)) {
  console.error("bench:stages smoke run failed: no numbers");
  Deno.exit(1);
}
