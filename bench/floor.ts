// deno-lint-ignore-file no-console
/**
 * Where the floor of the hot path is (`deno task bench:floor`): on each runtime, the bare
 * passthrough, the body-aware passthrough, the contract passthrough
 * (bench/contract_passthrough.ts: everything Olla's wire contract makes a proxy do at
 * the runtime's boundary, and nothing else) and olla-ts in the benchmark's configuration
 * (access log on, rate limits off), measured round by round in one run: wrk posts a chat
 * request with 32 connections; reported are the median req/s and CPU per request
 * (process CPU from schedstat / requests) and each contender's distance to the bare
 * passthrough.
 *
 * Writes bench/results/floor-latest.{json,md} and the README's `bench:floor` table (also run
 * by `deno task bench`); `--smoke` runs one short round and checks only that numbers came out.
 *
 * @module
 */
import { Children, freePort, waitFor } from "./_process.ts";
import {
  alternatingRounds,
  chatPostScript,
  type Contender,
  ollaBenchConfig,
  requireTools,
} from "./_wrk.ts";
import { quoteInReadme, writeReport } from "./_report.ts";

const smoke = Deno.args.includes("--smoke");
const ROUNDS = smoke ? 1 : 5;
const SECONDS = smoke ? 1 : 4;
const ROOT = new URL("../", import.meta.url).pathname;

const children = new Children(ROOT);
const start = children.start.bind(children);
await requireTools(
  "bench:floor",
  [["wrk", "-v"], ["bun", "--version"]],
  "apt-get install wrk; bun from npm",
);

const tmp = await Deno.makeTempDir({ prefix: "olla-bench-floor-" });
const lua = await chatPostScript(tmp);

const upstreamPort = freePort();
start("bun", ["bench/upstream.ts", String(upstreamPort)]);
const upstream = `http://127.0.0.1:${upstreamPort}`;
await waitFor(`${upstream}/health`, 30_000, (status) => status >= 200 && status < 300);

interface Row {
  runtime: string;
  contender: string;
  rps: number;
  cpu_us: number;
  added_cpu_us: number;
  throughput_of_bare: number;
}

async function measureRuntime(runtime: "deno" | "bun"): Promise<Row[]> {
  const run = (args: string[]) =>
    runtime === "deno" ? start(Deno.execPath(), ["run", "-A", ...args]) : start("bun", args);
  const ollaPort = freePort();
  const config = `${tmp}/olla-${ollaPort}.yaml`;
  await Deno.writeTextFile(config, ollaBenchConfig(upstream, ollaPort));
  const contenders: Contender[] = [];
  for (
    const [name, script] of [
      ["bare passthrough", "bench/passthrough.ts"],
      ["body-aware passthrough", "bench/body_passthrough.ts"],
      ["contract passthrough", "bench/contract_passthrough.ts"],
    ]
  ) {
    const port = freePort();
    contenders.push([
      name,
      run([script, String(port), upstream]),
      `http://127.0.0.1:${port}/v1/chat/completions`,
    ]);
  }
  contenders.push([
    "olla-ts",
    run(["main.ts", "-c", config]),
    `http://127.0.0.1:${ollaPort}/olla/lmdeploy/v1/chat/completions`,
  ]);
  await waitFor(`http://127.0.0.1:${ollaPort}/olla/lmdeploy/v1/models`, 30_000, (s) => s === 200);
  for (const [, , url] of contenders) await waitFor(url.replace("/chat/completions", "/models"));
  const measured = await alternatingRounds(lua, contenders, ROUNDS, SECONDS);
  for (const [, child] of contenders) child.kill("SIGTERM");
  await Promise.all(contenders.map(([, child]) => child.status));
  const bare = measured["bare passthrough"];
  const round1 = (value: number) => Math.round(value * 10) / 10;
  return contenders.map(([name]) => ({
    runtime: runtime === "deno" ? "Deno" : "Bun",
    contender: name,
    rps: Math.round(measured[name].rps),
    cpu_us: round1(measured[name].cpuUs),
    added_cpu_us: round1(measured[name].cpuUs - bare.cpuUs),
    throughput_of_bare: Math.round(measured[name].rps / bare.rps * 1000) / 10,
  }));
}

const rows: Row[] = [];
try {
  for (const runtime of ["bun", "deno"] as const) rows.push(...await measureRuntime(runtime));
} finally {
  children.killAll();
}

const date = new Date().toISOString();
const table = [
  `The floor of the hot path (${
    date.slice(0, 10)
  }, ${ROUNDS} rounds of ${SECONDS} s, wrk -c32, medians):`,
  "",
  "| runtime | contender | req/s | of bare | CPU/request | added over bare |",
  "| ------- | --------- | ----- | ------- | ----------- | --------------- |",
  ...rows.map((r) =>
    `| ${r.runtime} | ${r.contender} | ${r.rps} | ${r.throughput_of_bare}% | ${r.cpu_us} us | ${r.added_cpu_us} us |`
  ),
].join("\n");
console.log(table);
await writeReport("floor", smoke, { date, rows }, table);
if (!smoke) await quoteInReadme("bench:floor", table);
await Deno.remove(tmp, { recursive: true }).catch(() => {});

if (smoke && !rows.every((r) => r.rps > 0 && r.cpu_us > 0)) {
  console.error("bench:floor smoke run failed: no numbers");
  Deno.exit(1);
}
