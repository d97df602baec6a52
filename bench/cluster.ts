// deno-lint-ignore-file no-console
/**
 * The cost of cluster mode (`deno task bench:cluster`, and part of `deno task bench`):
 * olla-ts alone and olla-ts with `cluster.redis_url` (a local redis-server, every
 * `cluster.share` switch on, a second instance beating beside it so the instances' table
 * is real), the same configuration otherwise: a per-address rate limit of 100,000,000 a
 * minute with a burst of 1000 (so every request takes a token and the local allowance is
 * 100), on each runtime. wrk posts a chat request with 32 connections; reported per
 * runtime are the median req/s and CPU per request (process CPU / requests, from
 * schedstat) over alternating rounds, and the CPU cluster mode adds per request.
 *
 * Writes bench/results/cluster-latest.{json,md} and the README's `bench:cluster` table;
 * `--smoke` runs one short round and checks only that numbers came out.
 *
 * @module
 */
import { Children, freePort, waitFor } from "./_process.ts";
import { alternatingRounds, chatPostScript, requireTools } from "./_wrk.ts";
import { quoteInReadme, writeReport } from "./_report.ts";

const smoke = Deno.args.includes("--smoke");
const ROUNDS = smoke ? 1 : 5;
const SECONDS = smoke ? 1 : 5;
const ROOT = new URL("../", import.meta.url).pathname;

const children = new Children(ROOT);
const start = children.start.bind(children);
const TOOLS = [["wrk", "-v"], ["redis-server", "--version"], ["bun", "--version"]] as const;
await requireTools("bench:cluster", TOOLS, "apt-get install wrk redis-server; bun from npm");

const tmp = await Deno.makeTempDir({ prefix: "olla-bench-cluster-" });
const lua = await chatPostScript(tmp);

const upstreamPort = freePort();
start("bun", ["bench/upstream.ts", String(upstreamPort)]);
const redisPort = freePort();
start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", ""]);
await waitFor(
  `http://127.0.0.1:${upstreamPort}/health`,
  30_000,
  (status) => status >= 200 && status < 300,
);

async function configFile(port: number, cluster: string): Promise<string> {
  const path = `${tmp}/olla-${port}.yaml`;
  await Deno.writeTextFile(
    path,
    `server:
  host: 127.0.0.1
  port: ${port}
  request_logging: false
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 100000000, burst_size: 1000 }
logging:
  level: warn
discovery:
  static:
    endpoints:
      - { name: bench, url: "http://127.0.0.1:${upstreamPort}", type: lmdeploy, check_interval: 5s }
${cluster}`,
  );
  return path;
}

const clusterBlock = (id: string) =>
  `cluster:\n  redis_url: redis://127.0.0.1:${redisPort}\n  instance_id: ${id}\n`;

interface Row {
  runtime: string;
  single_rps: number;
  cluster_rps: number;
  single_cpu_us: number;
  cluster_cpu_us: number;
  added_cpu_us: number;
}

async function measureRuntime(runtime: "deno" | "bun"): Promise<Row> {
  const run = (config: string) =>
    runtime === "deno"
      ? start(Deno.execPath(), ["run", "-A", "main.ts", "-c", config])
      : start("bun", ["main.ts", "-c", config]);
  const ports = { single: freePort(), cluster: freePort(), peer: freePort() };
  const single = run(await configFile(ports.single, ""));
  const cluster = run(await configFile(ports.cluster, clusterBlock(`bench-${runtime}`)));
  const peer = run(await configFile(ports.peer, clusterBlock(`peer-${runtime}`)));
  for (const port of Object.values(ports)) {
    await waitFor(
      `http://127.0.0.1:${port}/olla/lmdeploy/v1/models`,
      30_000,
      (status) => status === 200,
    );
  }
  const measured = await alternatingRounds(
    lua,
    [
      ["single", single, `http://127.0.0.1:${ports.single}/olla/lmdeploy/v1/chat/completions`],
      ["cluster", cluster, `http://127.0.0.1:${ports.cluster}/olla/lmdeploy/v1/chat/completions`],
    ],
    ROUNDS,
    SECONDS,
  );
  for (const child of [single, cluster, peer]) child.kill("SIGTERM");
  await Promise.all([single, cluster, peer].map((child) => child.status));
  const round1 = (value: number) => Math.round(value * 10) / 10;
  return {
    runtime: runtime === "deno" ? "Deno" : "Bun",
    single_rps: Math.round(measured.single.rps),
    cluster_rps: Math.round(measured.cluster.rps),
    single_cpu_us: round1(measured.single.cpuUs),
    cluster_cpu_us: round1(measured.cluster.cpuUs),
    added_cpu_us: round1(measured.cluster.cpuUs - measured.single.cpuUs),
  };
}

const rows: Row[] = [];
try {
  for (const runtime of ["deno", "bun"] as const) rows.push(await measureRuntime(runtime));
} finally {
  children.killAll();
}

const date = new Date().toISOString();
const table = [
  `Cluster mode against one instance (${
    date.slice(0, 10)
  }, ${ROUNDS} rounds of ${SECONDS} s, wrk -c32, medians; target: <= 15 us CPU added per request):`,
  "",
  "| runtime | single req/s | cluster req/s | single CPU/req | cluster CPU/req | added CPU/req |",
  "| ------- | ------------ | ------------- | -------------- | --------------- | ------------- |",
  ...rows.map((r) =>
    `| ${r.runtime} | ${r.single_rps} | ${r.cluster_rps} | ${r.single_cpu_us} us | ${r.cluster_cpu_us} us | ${r.added_cpu_us} us |`
  ),
].join("\n");
console.log(table);
await writeReport("cluster", smoke, { date, rows }, table);
if (!smoke) await quoteInReadme("bench:cluster", table);
await Deno.remove(tmp, { recursive: true }).catch(() => {});

if (smoke && !rows.every((r) => r.single_rps > 0 && r.cluster_rps > 0 && r.cluster_cpu_us > 0)) {
  console.error("bench:cluster smoke run failed: no numbers");
  Deno.exit(1);
}
