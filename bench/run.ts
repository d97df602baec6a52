// deno-lint-ignore-file no-console
/**
 * `deno task bench`: measures olla-ts against a bare passthrough on the same runtime, in
 * the same run, so the results are ratios that a noisy or shared machine cannot skew much.
 *
 * Contenders: the upstream directly; a bare `fetch` passthrough on Deno and on Bun (the
 * floor for any proxy); a body-aware passthrough on each (the floor for a proxy that must
 * read the body to route by model); olla-ts on Deno and on Bun; nginx as a reverse proxy
 * when it is installed. Load comes from `wrk`
 * (and `hey` for a fixed rate) when installed, else from `autocannon` via npx; streams are
 * measured by bench/stream_client.mjs in its own Node.js process. Nothing measures from
 * inside a process being measured.
 *
 * Writes bench/results/<timestamp>.json and .md, and latest.json/latest.md.
 * `--smoke` runs every step briefly (for CI): it checks that the harness works, never a
 * timing.
 *
 * @module
 */
import pkg from "../package.json" with { type: "json" };
import { Children, cpuUs, freePort, waitFor } from "./_process.ts";
import { quoteInReadme } from "./_report.ts";
import { CHAT_BODY, chatPostScript, median, ollaBenchConfig } from "./_wrk.ts";

const smoke = Deno.args.includes("--smoke");
const SECONDS = smoke ? 1 : 4;
/** Interleaved rounds of the throughput and c=1 measurements. */
const ROUNDS = smoke ? 1 : 3;
const WARMUP_SECONDS = smoke ? 1 : 2;
/**
 * Stream latency is measured at a moderate load (1,000 frames/s), where it shows what a
 * proxy adds to each frame rather than how a saturated 2-core machine queues; the
 * capacity run below is the saturation test.
 */
const STREAMS = smoke ? 5 : 20;
const STREAM_FRAMES = smoke ? 5 : 50;
const STREAM_INTERVAL_MS = 20;
/** Batches of 100 fast streams (20 frames, 5 ms apart) that warm each contender's streaming path. */
const STREAM_WARMUP_BATCHES = smoke ? 1 : 10;
const CAPACITY_STREAMS = smoke ? 50 : 2000;
const CAPACITY_FRAMES = smoke ? 5 : 30;
const CAPACITY_INTERVAL_MS = 100;
const RATE = 500;
const ROOT = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "olla-bench-" });

// --- processes -----------------------------------------------------------------------

const children = new Children(ROOT);
const start = children.start.bind(children);
const stop = children.stop.bind(children);

async function output(command: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  try {
    const result = await new Deno.Command(command, {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { ok: result.success, text: decode(result.stdout) + decode(result.stderr) };
  } catch {
    return { ok: false, text: "" };
  }
}

async function has(command: string, args = ["--version"]): Promise<boolean> {
  return (await output(command, args)).ok;
}

function rssMb(pid: number, field = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
}

/** Samples a process's RSS while `work` runs; returns the peak. */
async function peakRss<T>(
  pid: number | undefined,
  work: () => Promise<T>,
): Promise<[T, number | null]> {
  if (pid === undefined) return [await work(), null];
  let peak = rssMb(pid);
  const timer = setInterval(() => peak = Math.max(peak, rssMb(pid)), 100);
  try {
    return [await work(), peak];
  } finally {
    clearInterval(timer);
  }
}

// --- tools ---------------------------------------------------------------------------

async function findBun(): Promise<string> {
  if (await has("bun")) return "bun";
  const { text } = await output("npx", [
    "-y",
    `bun@${pkg.config.bun}`,
    "-e",
    "console.log(process.execPath)",
  ]);
  const path = text.trim().split("\n").pop() ?? "";
  if (!path) throw new Error("Bun is needed for the benchmark and could not be installed with npx");
  return path;
}

const bun = await findBun();
const deno = Deno.execPath();
const tools = {
  wrk: await has("wrk", ["-v"]) || (await output("wrk", ["-v"])).text.includes("wrk"),
  hey: (await output("hey", [])).text.includes("Usage"),
  nginx: await has("nginx", ["-v"]),
};
const wrkScript = await chatPostScript(tmp);

function microseconds(value: string, unit: string): number {
  const n = Number(value);
  return unit === "us" ? n : unit === "ms" ? n * 1000 : unit === "s" ? n * 1_000_000 : n;
}

interface LoadResult {
  rps: number;
  /** Requests completed in the run. */
  requests: number;
  p50_us: number | null;
  p99_us: number | null;
}

async function load(
  url: string,
  connections: number,
  seconds: number,
  rate?: number,
): Promise<LoadResult> {
  if (rate !== undefined && tools.hey) {
    const workers = 4;
    const { text } = await output("hey", [
      "-z",
      `${seconds}s`,
      "-c",
      String(workers),
      "-q",
      String(rate / workers),
      "-m",
      "POST",
      "-T",
      "application/json",
      "-d",
      CHAT_BODY,
      url,
    ]);
    const at = (q: string) => {
      const match = new RegExp(`${q}%+ in ([\\d.]+) secs`).exec(text);
      return match ? Number(match[1]) * 1_000_000 : null;
    };
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
    return { rps, requests: Math.round(rps * seconds), p50_us: at("50"), p99_us: at("99") };
  }
  if (rate === undefined && tools.wrk) {
    const threads = Math.min(connections, 2);
    const { text } = await output("wrk", [
      `-t${threads}`,
      `-c${connections}`,
      `-d${seconds}s`,
      "--latency",
      "-s",
      wrkScript,
      url,
    ]);
    const at = (q: string) => {
      const match = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
      return match ? microseconds(match[1], match[2]) : null;
    };
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
      requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
      p50_us: at("50"),
      p99_us: at("99"),
    };
  }
  const args = [
    "-y",
    "autocannon",
    "-j",
    "-c",
    String(connections),
    "-d",
    String(seconds),
    "-m",
    "POST",
  ];
  if (rate !== undefined) args.push("-R", String(rate));
  args.push("-H", "content-type=application/json", "-b", CHAT_BODY, url);
  const { text } = await output("npx", args);
  const json = JSON.parse(text.slice(text.indexOf("{")));
  return {
    rps: json.requests.average,
    requests: json.requests.total,
    p50_us: json.latency.p50 * 1000,
    p99_us: json.latency.p99 * 1000,
  };
}

/** What bench/stream_client.mjs reports. */
interface StreamResult {
  streams: number;
  completed: number;
  frames_received: number;
  errors: number;
  stalled: number;
  ttfb_ms: { p50: number; p99: number };
  frame_delay_ms: { p50: number; p99: number; max: number };
  max_gap_ms: number;
  first_error?: string;
}

/** Stream rounds folded into one: medians of the timings, the worst of the counts. */
function medianStreams(rounds: StreamResult[]): StreamResult {
  const of = (pick: (r: StreamResult) => number) => median(rounds.map(pick));
  return {
    streams: rounds[0]?.streams ?? 0,
    completed: Math.min(...rounds.map((r) => r.completed)),
    frames_received: Math.min(...rounds.map((r) => r.frames_received)),
    errors: Math.max(...rounds.map((r) => r.errors)),
    stalled: Math.max(...rounds.map((r) => r.stalled)),
    ttfb_ms: { p50: of((r) => r.ttfb_ms.p50), p99: of((r) => r.ttfb_ms.p99) },
    frame_delay_ms: {
      p50: of((r) => r.frame_delay_ms.p50),
      p99: of((r) => r.frame_delay_ms.p99),
      max: Math.max(...rounds.map((r) => r.frame_delay_ms.max)),
    },
    max_gap_ms: Math.max(...rounds.map((r) => r.max_gap_ms)),
    first_error: rounds.find((r) => r.first_error)?.first_error,
  };
}

async function streams(
  url: string,
  count: number,
  frames: number,
  interval: number,
): Promise<StreamResult> {
  const { text } = await output("node", [
    `${ROOT}bench/stream_client.mjs`,
    url,
    String(count),
    String(frames),
    String(interval),
  ]);
  const result = JSON.parse(text.trim().split("\n").pop() || "{}");
  if (typeof result.completed !== "number") {
    throw new Error(`bench/stream_client.mjs gave no result for ${url}: ${text.slice(-500)}`);
  }
  return result;
}

// --- contenders ----------------------------------------------------------------------

const UPSTREAM_PORT = freePort();
const upstreamUrl = `http://127.0.0.1:${UPSTREAM_PORT}`;
const upstream = start(bun, ["bench/upstream.ts", String(UPSTREAM_PORT)]);
await waitFor(`${upstreamUrl}/health`);

// olla-ts as the socket benchmarks run it (port 0: OLLA_SERVER_PORT names it, startOlla
// below), its JSON lines going to a stdout nobody reads but the kernel; a second copy has
// the access log off, to show what it costs.
await Deno.writeTextFile(`${tmp}/olla.yaml`, ollaBenchConfig(upstreamUrl, 0));
await Deno.writeTextFile(`${tmp}/olla-quiet.yaml`, ollaBenchConfig(upstreamUrl, 0, false));

interface Contender {
  name: string;
  runtime: string;
  /** Base URL requests go to (path included). */
  chat: (port: number) => string;
  start?: (port: number) => Deno.ChildProcess;
  ready?: string;
}

const nginxConf = `${tmp}/nginx.conf`;
const contenders: Contender[] = [
  { name: "direct", runtime: "-", chat: () => `${upstreamUrl}/v1/chat/completions` },
  {
    name: "passthrough (Deno)",
    runtime: "deno",
    chat: (port) => `http://127.0.0.1:${port}/v1/chat/completions`,
    start: (port) => start(deno, ["run", "-A", "bench/passthrough.ts", String(port), upstreamUrl]),
    ready: "/health",
  },
  {
    name: "passthrough (Bun)",
    runtime: "bun",
    chat: (port) => `http://127.0.0.1:${port}/v1/chat/completions`,
    start: (port) => start(bun, ["bench/passthrough.ts", String(port), upstreamUrl]),
    ready: "/health",
  },
  {
    name: "body-aware passthrough (Deno)",
    runtime: "deno",
    chat: (port) => `http://127.0.0.1:${port}/v1/chat/completions`,
    start: (port) =>
      start(deno, ["run", "-A", "bench/body_passthrough.ts", String(port), upstreamUrl]),
    ready: "/health",
  },
  {
    name: "body-aware passthrough (Bun)",
    runtime: "bun",
    chat: (port) => `http://127.0.0.1:${port}/v1/chat/completions`,
    start: (port) => start(bun, ["bench/body_passthrough.ts", String(port), upstreamUrl]),
    ready: "/health",
  },
  ...([["Deno", deno, ["run", "-A", "main.ts"]], ["Bun", bun, ["main.ts"]]] as const).flatMap((
    [label, command, args],
  ) =>
    [true, false].map((accessLog): Contender => ({
      name: `olla-ts${accessLog ? "" : ", access log off"} (${label})`,
      runtime: label.toLowerCase(),
      chat: (port) => `http://127.0.0.1:${port}/olla/lmdeploy/v1/chat/completions`,
      start: (port) =>
        startOlla(command, [...args], port, `${tmp}/${accessLog ? "olla" : "olla-quiet"}.yaml`),
      ready: "/olla/lmdeploy/v1/models",
    }))
  ),
];

/** olla-ts on a given port: OLLA_SERVER_PORT overrides the config's 0. */
function startOlla(
  command: string,
  args: string[],
  port: number,
  config: string,
): Deno.ChildProcess {
  return start(command, [...args, "-c", config], { OLLA_SERVER_PORT: String(port) });
}

if (tools.nginx) {
  contenders.push({
    name: "nginx",
    runtime: "nginx",
    chat: (port) => `http://127.0.0.1:${port}/v1/chat/completions`,
    start: (port) => {
      Deno.writeTextFileSync(
        nginxConf,
        `worker_processes auto; daemon off; pid ${tmp}/nginx.pid; error_log ${tmp}/nginx-error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  upstream backend { server 127.0.0.1:${UPSTREAM_PORT}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_read_timeout 600s;
    }
  }
}
`,
      );
      return start("nginx", ["-c", nginxConf, "-p", tmp]);
    },
    ready: "/health",
  });
}

// --- measurements --------------------------------------------------------------------
//
// Every contender runs for the whole benchmark (an idle one costs nothing), and the
// load-sensitive measurements go round by round across all of them, so a slow minute
// of a shared machine lands on every contender instead of on one. Medians of the
// rounds are reported; the rounds themselves are in the JSON.

interface Row {
  name: string;
  runtime: string;
  throughput_rps: number;
  /** Process CPU time per request at 32 connections (median of the rounds). */
  cpu_us_per_request: number | null;
  /** Process CPU time per SSE frame in the stream latency runs (median of the rounds). */
  cpu_us_per_frame: number | null;
  c1: LoadResult;
  rate: LoadResult;
  streams: StreamResult;
  capacity: StreamResult;
  rss_mb: {
    idle: number | null;
    idle_private: number | null;
    load: number | null;
    /** Peak while the capacity streams run, on a process that has served nothing else. */
    streams: number | null;
    after: number | null;
  };
  rounds: {
    throughput_rps: number[];
    cpu_us_per_request: number[];
    cpu_us_per_frame: number[];
    c1: LoadResult[];
    streams: StreamResult[];
  };
}

interface Running {
  contender: Contender;
  child: Deno.ChildProcess | undefined;
  base: string;
  pid: number | undefined;
  peakRss: number;
  /** The capacity run and the peak RSS during it (before any other load). */
  capacity?: [StreamResult, number | null];
}

const medianOf = (values: (number | null)[]) => {
  const present = values.filter((value): value is number => value !== null);
  return present.length === 0 ? null : median(present);
};

const running: Running[] = [];
for (const contender of contenders) {
  const port = freePort();
  const child = contender.start?.(port);
  const base = contender.chat(port);
  const origin = new URL(base).origin;
  if (contender.ready) await waitFor(`${origin}${contender.ready}`);
  if (contender.name.startsWith("olla-ts")) {
    // Wait for model discovery so routing takes the steady-state path.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const models = await (await fetch(`${origin}/olla/lmdeploy/v1/models`)).json();
      if (models.data?.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  running.push({ contender, child, base, pid: child?.pid, peakRss: 0 });
}
await new Promise((resolve) => setTimeout(resolve, 1_000));
const idleRss = new Map(running.map((r) => [r, r.pid === undefined ? null : rssMb(r.pid)]));
// Private memory, without the runtime binary's file-backed pages that RSS also counts.
const idleAnon = new Map(
  running.map((r) => [r, r.pid === undefined ? null : rssMb(r.pid, "RssAnon")]),
);

/** Runs `work` against one contender, keeping its peak RSS; returns it with the CPU it cost. */
async function measure<T>(r: Running, work: () => Promise<T>): Promise<[T, number | null]> {
  const cpuBefore = r.pid === undefined ? 0 : cpuUs(r.pid);
  const [result, peak] = await peakRss(r.pid, work);
  if (peak !== null) r.peakRss = Math.max(r.peakRss, peak);
  return [result, r.pid === undefined ? null : cpuUs(r.pid) - cpuBefore];
}

const perUnit = (cpu: number | null, units: number) =>
  cpu === null || units <= 0 ? null : Math.round((cpu / units) * 10) / 10;

// The capacity run first, on processes that have served nothing but a warm-up of the
// streaming path: its RSS is then what 2,000 streams take, not what the throughput
// rounds left behind (which "RSS after load" reports). The warm-up streams also warm
// the path the stream latency rounds measure: the load runs warm only non-streamed
// answers, and a stream's code still being compiled costs a JavaScript proxy 0.3-0.6x
// the bare passthrough's CPU per frame on Bun (bench/README.md).
for (const r of running) {
  console.log(`${r.contender.name}: stream capacity`);
  for (let batch = 0; batch < STREAM_WARMUP_BATCHES; batch++) await streams(r.base, 100, 20, 5);
  r.capacity = await peakRss(
    r.pid,
    () => streams(r.base, CAPACITY_STREAMS, CAPACITY_FRAMES, CAPACITY_INTERVAL_MS),
  );
  if (r.capacity[1] !== null) r.peakRss = Math.max(r.peakRss, r.capacity[1]);
}
for (const r of running) await load(r.base, 32, WARMUP_SECONDS);
const throughputRounds = new Map(running.map((r) => [r, [] as number[]]));
const cpuRounds = new Map(running.map((r) => [r, [] as number[]]));
const c1Rounds = new Map(running.map((r) => [r, [] as LoadResult[]]));
const streamRounds = new Map(running.map((r) => [r, [] as StreamResult[]]));
const frameCpuRounds = new Map(running.map((r) => [r, [] as number[]]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const r of running) {
    const [result, cpu] = await measure(r, () => load(r.base, 32, SECONDS));
    throughputRounds.get(r)?.push(Math.round(result.rps));
    const perRequest = perUnit(cpu, result.requests);
    if (perRequest !== null) cpuRounds.get(r)?.push(perRequest);
    console.log(
      `round ${round}: ${r.contender.name}: ${Math.round(result.rps)} req/s @32, ${
        perRequest ?? "-"
      } us CPU/request`,
    );
  }
  for (const r of running) {
    c1Rounds.get(r)?.push((await measure(r, () => load(r.base, 1, SECONDS)))[0]);
  }
  for (const r of running) {
    const [result, cpu] = await measure(
      r,
      () => streams(r.base, STREAMS, STREAM_FRAMES, STREAM_INTERVAL_MS),
    );
    streamRounds.get(r)?.push(result);
    const perFrame = perUnit(cpu, result.frames_received);
    if (perFrame !== null) frameCpuRounds.get(r)?.push(perFrame);
  }
}
const rows: Row[] = [];
for (const r of running) {
  console.log(`${r.contender.name}: fixed rate`);
  const [rate] = await measure(r, () => load(r.base, 4, SECONDS, RATE));
  const [capacity, streamsPeak] = r.capacity ?? [];
  if (!capacity) throw new Error(`${r.contender.name}: no capacity run`);
  const c1 = c1Rounds.get(r) ?? [];
  rows.push({
    name: r.contender.name,
    runtime: r.contender.runtime,
    throughput_rps: median(throughputRounds.get(r) ?? [0]),
    cpu_us_per_request: medianOf(cpuRounds.get(r) ?? []),
    cpu_us_per_frame: medianOf(frameCpuRounds.get(r) ?? []),
    c1: {
      rps: median(c1.map((x) => x.rps)),
      requests: median(c1.map((x) => x.requests)),
      p50_us: medianOf(c1.map((x) => x.p50_us)),
      p99_us: medianOf(c1.map((x) => x.p99_us)),
    },
    rate,
    streams: medianStreams(streamRounds.get(r) ?? []),
    capacity,
    rss_mb: {
      idle: idleRss.get(r) ?? null,
      idle_private: idleAnon.get(r) ?? null,
      load: r.pid === undefined ? null : r.peakRss,
      streams: streamsPeak ?? null,
      after: null,
    },
    rounds: {
      throughput_rps: throughputRounds.get(r) ?? [],
      cpu_us_per_request: cpuRounds.get(r) ?? [],
      cpu_us_per_frame: frameCpuRounds.get(r) ?? [],
      c1,
      streams: streamRounds.get(r) ?? [],
    },
  });
}
// Memory handed back after load: sampled once everything has been quiet for a while
// (V8 shrinks its heap some 20-30 s after the last burst of activity).
await new Promise((resolve) => setTimeout(resolve, smoke ? 500 : 30_000));
running.forEach((r, i) => rows[i].rss_mb.after = r.pid === undefined ? null : rssMb(r.pid));
for (const r of running) if (r.child) await stop(r.child);
await stop(upstream);

// olla-ts's own cost per request, without sockets (bench/overhead.ts): steadier than
// any socket number on a shared machine, and the instrument for hot-path work.
async function inProcess(
  command: string,
  args: string[],
  flags: string[] = [],
): Promise<Record<string, number> | null> {
  const { ok, text } = await output(command, [
    ...args,
    "bench/overhead.ts",
    String(smoke ? 2_000 : flags.includes("--stream") ? 20_000 : 100_000),
    ...flags,
  ]);
  if (!ok) return null;
  return JSON.parse(text.trim().split("\n").pop() ?? "{}");
}
console.log("in-process overhead");
const runtimes = { deno: [deno, ["run", "-A"]], bun: [bun, []] } as const;
const overhead = { deno: null as number | null, bun: null as number | null };
/** The Anthropic translator's cost (bench/overhead.ts --anthropic) beside the passthrough's. */
const translation = {
  deno: { request_us: null, passthrough_frame_us: null, translated_frame_us: null },
  bun: { request_us: null, passthrough_frame_us: null, translated_frame_us: null },
} as Record<"deno" | "bun", Record<string, number | null>>;
for (
  const [name, [command, args]] of Object.entries(runtimes) as [
    keyof typeof runtimes,
    readonly [string, readonly string[]],
  ][]
) {
  overhead[name] = (await inProcess(command, [...args]))?.us_per_request ?? null;
  translation[name].request_us =
    (await inProcess(command, [...args], ["--anthropic"]))?.us_per_request ?? null;
  translation[name].passthrough_frame_us =
    (await inProcess(command, [...args], ["--stream"]))?.us_per_frame ?? null;
  translation[name].translated_frame_us =
    (await inProcess(command, [...args], ["--stream", "--anthropic"]))?.us_per_frame ?? null;
}

/**
 * A report's titles and tables without the progress lines and runtime warnings that
 * output() appends from stderr.
 */
function reportLines(text: string): string {
  return text.split("\n").filter((line) =>
    /^(Simulated fleet:|Soak:|Request bodies:|\||$)/.test(line)
  )
    .join("\n").replace(/\n{3,}/g, "\n\n").trim();
}

/** Runs one of the benchmarks that report on their own, briefly too in a smoke run. */
const runOwnReport = (script: string, ...extra: string[]) =>
  output(deno, ["run", "-A", script, ...extra, ...(smoke ? ["--smoke"] : [])]);

// The balancers on a simulated fleet (bench/fleet.ts): its own table and targets.
console.log("simulated fleet");
const fleetRun = await runOwnReport("bench/fleet.ts");
// Its progress lines go to stderr, which output() appends; the report starts with its title.
const fleetTable = fleetRun.ok
  ? reportLines(fleetRun.text.slice(Math.max(0, fleetRun.text.indexOf("Simulated fleet:"))))
  : "(the simulated fleet run failed)";

// Cluster mode against one instance (bench/cluster.ts): it writes its own README table.
console.log("cluster mode");
const clusterRun = await runOwnReport("bench/cluster.ts");

// The floor of the hot path (bench/floor.ts): it writes its own README table.
console.log("floor");
const floorRun = await runOwnReport("bench/floor.ts");

// A JavaScript stream body by kind of stream (bench/stream_stages.ts): its own results.
console.log("stream stages");
const stagesRun = await runOwnReport("bench/stream_stages.ts");

// A backend killed and restarted under a long mixed load (bench/soak.ts): its own table.
console.log("soak");
const soakRun = await runOwnReport("bench/soak.ts", `--bun=${bun}`);
const soakTable = soakRun.ok ? reportLines(soakRun.text) : "(the soak run failed)";

// --- verdicts ------------------------------------------------------------------------

const byName = new Map(rows.map((row) => [row.name, row]));
const round = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined ? null : Math.round(value * 10 ** digits) / 10 ** digits;

interface Target {
  target: string;
  measured: string;
  /** `undefined` where the runtime has no such target: the figure is only reported. */
  met: boolean | undefined;
}

/** Per-runtime thresholds of the hot-path targets (issue "Hot path"). */
const HOT_PATH = {
  Deno: { throughput: 0.60, bodyAware: 0.85, cpuAddedUs: 100, frameCpuRatio: Infinity },
  Bun: { throughput: 0.85, bodyAware: 0, cpuAddedUs: 20, frameCpuRatio: 1.3 },
} as const;

function targetsFor(runtime: "Deno" | "Bun"): Target[] {
  const olla = byName.get(`olla-ts (${runtime})`) as Row;
  const bare = byName.get(`passthrough (${runtime})`) as Row;
  const bodyAware = byName.get(`body-aware passthrough (${runtime})`) as Row;
  const limits = HOT_PATH[runtime];
  const ratio = olla.throughput_rps / bare.throughput_rps;
  const bodyRatio = olla.throughput_rps / bodyAware.throughput_rps;
  const cpuAdded = (olla.cpu_us_per_request ?? NaN) - (bare.cpu_us_per_request ?? NaN);
  const frameRatio = (olla.cpu_us_per_frame ?? NaN) / (bare.cpu_us_per_frame ?? NaN);
  const addedP50 = (olla.c1.p50_us ?? 0) - (bare.c1.p50_us ?? 0);
  const addedP99 = (olla.c1.p99_us ?? 0) - (bare.c1.p99_us ?? 0);
  const capacity = olla.capacity;
  // Like the c=1 latencies, stream timings are compared with the bare passthrough on the
  // same runtime: against going direct, even the bare passthrough adds the second
  // connection setup of every new stream, which is not olla-ts's to remove.
  const addedTtfb = olla.streams.ttfb_ms.p99 - bare.streams.ttfb_ms.p99;
  const addedFrame = olla.streams.frame_delay_ms.p99 - bare.streams.frame_delay_ms.p99;
  const idle = olla.rss_mb.idle ?? 0;
  const costs = translation[runtime === "Deno" ? "deno" : "bun"];
  const translatedRatio = (costs.translated_frame_us ?? NaN) / (costs.passthrough_frame_us ?? NaN);
  return [
    {
      target: "throughput vs bare passthrough (Deno >= 60%, Bun >= 85%), access log on",
      measured: `${round(ratio * 100, 1)}%`,
      met: ratio >= limits.throughput,
    },
    {
      target: "throughput vs body-aware passthrough (Deno >= 85%)",
      measured: `${round(bodyRatio * 100, 1)}%`,
      met: limits.bodyAware > 0 ? bodyRatio >= limits.bodyAware : undefined,
    },
    {
      target: "CPU added over bare per request (Deno <= 100 us, Bun <= 20 us)",
      measured: `${
        round(cpuAdded, 1)
      } us (${olla.cpu_us_per_request} vs ${bare.cpu_us_per_request})`,
      met: cpuAdded <= limits.cpuAddedUs,
    },
    {
      target: "CPU per SSE frame vs bare (Bun within 1.3x; Deno: reported)",
      measured: `${
        round(frameRatio, 2)
      }x (${olla.cpu_us_per_frame} vs ${bare.cpu_us_per_frame} us)`,
      met: Number.isFinite(limits.frameCpuRatio) ? frameRatio <= limits.frameCpuRatio : undefined,
    },
    {
      target: "added p50 at c=1 <= 100 us",
      measured: `${round(addedP50)} us`,
      met: addedP50 <= 100,
    },
    {
      target: "added p99 at c=1 <= 300 us",
      measured: `${round(addedP99)} us`,
      met: addedP99 <= 300,
    },
    {
      target: "added stream TTFB p99 < 1 ms",
      measured: `${round(addedTtfb, 2)} ms`,
      met: addedTtfb < 1,
    },
    {
      target: "added per-frame delay p99 < 1 ms",
      measured: `${round(addedFrame, 2)} ms`,
      met: addedFrame < 1,
    },
    {
      target: `${CAPACITY_STREAMS} paced streams, no stall, RSS < 300 MB`,
      measured:
        `${capacity.completed} complete, ${capacity.stalled} stalled, ${capacity.errors} errors, ${
          round(olla.rss_mb.streams)
        } MB`,
      met: capacity.completed === CAPACITY_STREAMS && capacity.stalled === 0 &&
        (olla.rss_mb.streams ?? Infinity) < 300,
    },
    {
      target: "translated Anthropic SSE frame within 1.5x a passed-through frame (in process)",
      measured: `${
        round(translatedRatio, 2)
      }x (${costs.translated_frame_us} vs ${costs.passthrough_frame_us} us)`,
      met: translatedRatio <= 1.5,
    },
    {
      target: "idle RSS < 60 MB",
      measured: `${round(idle, 1)} MB (${round(olla.rss_mb.idle_private, 1)} MB private)`,
      met: idle < 60,
    },
    {
      target: "RSS after load within 20% of idle",
      measured: `${round(olla.rss_mb.after, 1)} MB (${
        round(((olla.rss_mb.after ?? 0) / idle - 1) * 100)
      }%)`,
      met: (olla.rss_mb.after ?? 0) <= idle * 1.2,
    },
  ];
}

function bodyRatio(runtime: "Deno" | "Bun"): number {
  const olla = byName.get(`olla-ts (${runtime})`) as Row;
  const floor = byName.get(`body-aware passthrough (${runtime})`) as Row;
  return (olla.throughput_rps / floor.throughput_rps) * 100;
}

const versions = {
  deno: (await output(deno, ["--version"])).text.split("\n")[0],
  bun: `bun ${(await output(bun, ["--version"])).text.trim()}`,
  nginx: tools.nginx ? (await output("nginx", ["-v"])).text.trim() : "not installed",
  load_generator: tools.wrk ? "wrk" + (tools.hey ? " + hey (fixed rate)" : "") : "autocannon",
  cores: navigator.hardwareConcurrency,
  olla_ts: pkg.version,
};
const targets = { deno: targetsFor("Deno"), bun: targetsFor("Bun") };
const result = {
  date: new Date().toISOString(),
  smoke,
  versions,
  settings: {
    seconds: SECONDS,
    rounds: ROUNDS,
    rate_rps: RATE,
    streams: { count: STREAMS, frames: STREAM_FRAMES, interval_ms: STREAM_INTERVAL_MS },
    capacity: {
      count: CAPACITY_STREAMS,
      frames: CAPACITY_FRAMES,
      interval_ms: CAPACITY_INTERVAL_MS,
    },
  },
  rows,
  in_process_us_per_request: overhead,
  anthropic_translation: translation,
  targets,
};

const fmt = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined ? "-" : String(round(value, digits));
const markdown = [
  `Measured ${
    result.date.slice(0, 10)
  } on ${versions.cores} cores; ${versions.deno}, ${versions.bun}, ${versions.nginx}; load from ${versions.load_generator}.${
    smoke ? " SMOKE RUN: timings are not meaningful." : ""
  }`,
  "",
  "| Contender | req/s @32 conn | CPU us/request | CPU us/frame | c=1 p50 / p99 (us) | @" + RATE +
  " req/s p50 / p99 (us) | stream TTFB p99 (ms) | frame delay p50 / p99 (ms) | " +
  `${CAPACITY_STREAMS} streams: ok / stalled / errors, peak RSS (MB) | RSS idle / load / after (MB) |`,
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows.map((row) => {
    const { streams, capacity } = row;
    return `| ${row.name} | ${row.throughput_rps} | ${fmt(row.cpu_us_per_request, 1)} | ${
      fmt(row.cpu_us_per_frame, 1)
    } | ${fmt(row.c1.p50_us)} / ${fmt(row.c1.p99_us)} | ${fmt(row.rate.p50_us)} / ${
      fmt(row.rate.p99_us)
    } | ${fmt(streams.ttfb_ms.p99, 2)} | ${fmt(streams.frame_delay_ms.p50, 2)} / ${
      fmt(streams.frame_delay_ms.p99, 2)
    } | ${capacity.completed} / ${capacity.stalled} / ${capacity.errors}, ${
      fmt(row.rss_mb.streams)
    } | ${fmt(row.rss_mb.idle)} / ${fmt(row.rss_mb.load)} / ${fmt(row.rss_mb.after)} |`;
  }),
  "",
  `Throughput of olla-ts relative to the body-aware passthrough on the same runtime: ${
    fmt(bodyRatio("Deno"), 1)
  }% on Deno, ${fmt(bodyRatio("Bun"), 1)}% on Bun.`,
  "",
  `olla-ts's own work per proxied request, in process without sockets (bench/overhead.ts): ${
    fmt(overhead.deno, 1)
  } us on Deno, ${fmt(overhead.bun, 1)} us on Bun. A translated Anthropic Messages request: ${
    fmt(translation.deno.request_us, 1)
  } us on Deno, ${fmt(translation.bun.request_us, 1)} us on Bun.`,
  "",
  "| Target (same run) | olla-ts on Deno | olla-ts on Bun |",
  "| --- | --- | --- |",
  ...targets.deno.map((target, i) => {
    const bunTarget = targets.bun[i];
    const cell = (t: Target) =>
      `${t.met === undefined ? "reported" : t.met ? "met" : "**missed**"}: ${t.measured}`;
    return `| ${target.target} | ${cell(target)} | ${cell(bunTarget)} |`;
  }),
  "",
].join("\n");

/** Replaces the text between the README's `marker` comments, so it quotes the latest run. */

const stamp = result.date.replaceAll(":", "-").slice(0, 19);
const dir = `${ROOT}bench/results/`;
const name = smoke ? "smoke" : stamp;
await Deno.writeTextFile(`${dir}${name}.json`, JSON.stringify(result, null, 2) + "\n");
await Deno.writeTextFile(`${dir}${name}.md`, markdown);
if (!smoke) {
  await Deno.writeTextFile(`${dir}latest.json`, JSON.stringify(result, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}latest.md`, markdown);
  await quoteInReadme("bench:latest", markdown);
  await quoteInReadme("bench:fleet", fleetTable);
  await quoteInReadme("bench:soak", soakTable);
}
console.log(markdown);

// The smoke run checks that every step produced numbers, never what they are.
if (smoke) {
  const missing = rows.filter((row) =>
    !(row.throughput_rps > 0) || row.c1.p50_us === null || row.streams.completed === 0 ||
    (row.runtime !== "-" && row.cpu_us_per_request === null)
  );
  if (
    missing.length > 0 || rows.length < 9 || !overhead.deno || !overhead.bun || !fleetRun.ok ||
    !soakRun.ok || !clusterRun.ok || !floorRun.ok || !stagesRun.ok
  ) {
    console.error(
      `bench smoke run failed: no numbers for ${missing.map((row) => row.name).join(", ")}`,
    );
    Deno.exit(1);
  }
}
await children.stopAll();
await Deno.remove(tmp, { recursive: true }).catch(() => {});
