// deno-lint-ignore-file no-console
/**
 * The balancers on a simulated fleet (`deno task bench:fleet`, and part of `deno task
 * bench`): four simulated engines (bench/sim_engine.ts: batch capacity, a queue, an LRU
 * prefix cache, prefill proportional to uncached tokens, decode per token, `/metrics`)
 * behind olla-ts, two workloads replayed at a fixed arrival rate near 80% of the fleet's
 * capacity, each balancer in turn:
 *
 * - (a) multi-turn conversations sharing four long system prompts, their history growing;
 * - (b) independent short prompts;
 * - (b) again with one engine at half speed (least-loaded and least-connections).
 *
 * Reported per run: requests completed per second, TTFT p50/p99 and mean, end-to-end
 * p50/p99, the engines' prefix-cache hit ratio, and the slow engine's share. Writes
 * bench/results/fleet-latest.{json,md}; `--smoke` runs each scenario for one second and
 * checks only that numbers came out.
 *
 * @module
 */
import { freePort } from "./_process.ts";
import { writeReport } from "./_report.ts";
import { startSimEngine } from "./sim_engine.ts";

const args = Deno.args;
const smoke = args.includes("--smoke");
const SECONDS = smoke ? 1 : Number(args.find((a) => a.startsWith("--seconds="))?.slice(10) ?? 20);
const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = "sim/model-7b";
const ENGINES = 4;
/** Arrival rates near 80% of the simulated fleet's capacity for each workload. */
const RATE = { "multi-turn": 30, short: 36 } as const;
const BALANCERS = [
  "round-robin",
  "least-connections",
  "least-loaded",
  "power-of-two",
  "cache-aware",
];

type Workload = keyof typeof RATE;

interface Result {
  workload: string;
  balancer: string;
  slow: boolean;
  sent: number;
  completed: number;
  errors: number;
  rps: number;
  ttft_p50_ms: number;
  ttft_p99_ms: number;
  ttft_mean_ms: number;
  e2e_p50_ms: number;
  e2e_p99_ms: number;
  cache_hit_ratio: number;
  /** Share of requests the first (possibly slow) engine served. */
  engine0_share: number;
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A deterministic pseudo-random text of `chars` characters. */
function text(seed: number, chars: number): string {
  const words = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "kernel",
    "tensor",
    "cache",
    "token",
    "model",
    "route",
  ];
  let out = "";
  let x = seed * 2654435761 >>> 0;
  while (out.length < chars) {
    x = Math.imul(x ^ (x >>> 15), 2246822507) >>> 0;
    out += `${words[x % words.length]} `;
  }
  return out.slice(0, chars);
}

/** The next request body of a workload. */
function workload(kind: Workload): () => unknown {
  if (kind === "short") {
    let n = 0;
    return () => ({
      model: MODEL,
      stream: true,
      max_tokens: 16,
      messages: [{ role: "user", content: text(++n * 7919, 800) }],
    });
  }
  const systems = Array.from({ length: 4 }, (_, i) => text(1000 + i, 8000));
  const conversations = Array.from(
    { length: 32 },
    (_, i) => ({ system: systems[i % 4], turns: [] as string[], id: i }),
  );
  let next = 0;
  return () => {
    // A pseudo-random conversation each time (seeded): arrivals are not aligned with any
    // balancer's rotation.
    const x = Math.imul(++next ^ 0x9e3779b9, 2654435761) >>> 0;
    const conversation = conversations[(x >>> 7) % conversations.length];
    if (conversation.turns.length >= 20) conversation.turns = [];
    conversation.turns.push(text(conversation.id * 31 + conversation.turns.length, 200));
    const messages = [{ role: "system", content: conversation.system }];
    conversation.turns.forEach((turn, i) => {
      messages.push({ role: "user", content: turn });
      if (i < conversation.turns.length - 1) {
        messages.push({ role: "assistant", content: "tok ".repeat(16) });
      }
    });
    return { model: MODEL, stream: true, max_tokens: 16, messages };
  };
}

async function run(kind: Workload, balancer: string, slow: boolean): Promise<Result> {
  const engines = await Promise.all(
    Array.from(
      { length: ENGINES },
      (_, i) => startSimEngine({ model: MODEL, slowdown: slow && i === 0 ? 2 : 1 }),
    ),
  );
  const port = freePort();
  const config = `server:
  host: 127.0.0.1
  port: ${port}
  request_logging: false
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
proxy:
  load_balancer: ${balancer}
engine_metrics:
  interval: 250ms
logging:
  level: warn
discovery:
  static:
    endpoints:
${
    engines.map((e, i) =>
      `      - { name: e${i}, url: "${e.url}", type: lmdeploy, check_interval: 2s }`
    ).join("\n")
  }
`;
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, config);
  const olla = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "--config", path],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 200; i++) {
      try {
        const models = await (await fetch(`${base}/olla/lmdeploy/v1/models`)).json();
        if (models.data?.length === 1) {
          const status = await (await fetch(`${base}/internal/status/endpoints`)).json();
          if (status.healthy_count === ENGINES) break;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const nextBody = workload(kind);
    const ttfts: number[] = [];
    const e2es: number[] = [];
    const served: Record<string, number> = {};
    let errors = 0;
    const one = async () => {
      const started = performance.now();
      try {
        const response = await fetch(`${base}/olla/lmdeploy/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(nextBody()),
        });
        const endpoint = response.headers.get("x-olla-endpoint") ?? "none";
        if (!response.ok || !response.body) {
          errors++;
          await response.body?.cancel();
          return;
        }
        const reader = response.body.getReader();
        let first: number | undefined;
        for (;;) {
          const { done } = await reader.read();
          if (done) break;
          first ??= performance.now();
        }
        ttfts.push((first ?? performance.now()) - started);
        e2es.push(performance.now() - started);
        served[endpoint] = (served[endpoint] ?? 0) + 1;
      } catch {
        errors++;
      }
    };
    const interval = 1000 / RATE[kind];
    const total = Math.round(SECONDS * RATE[kind]);
    const inflight: Promise<void>[] = [];
    const began = performance.now();
    for (let i = 0; i < total; i++) {
      const due = began + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      inflight.push(one());
    }
    await Promise.all(inflight);
    const elapsed = (performance.now() - began) / 1000;
    const prompt = engines.reduce((sum, e) => sum + e.promptTokens, 0);
    const cached = engines.reduce((sum, e) => sum + e.cachedTokens, 0);
    const completed = e2es.length;
    return {
      workload: kind,
      balancer,
      slow,
      sent: total,
      completed,
      errors,
      rps: Math.round((completed / elapsed) * 10) / 10,
      ttft_p50_ms: Math.round(percentile(ttfts, 0.5)),
      ttft_p99_ms: Math.round(percentile(ttfts, 0.99)),
      ttft_mean_ms: Math.round(ttfts.reduce((a, b) => a + b, 0) / Math.max(1, ttfts.length)),
      e2e_p50_ms: Math.round(percentile(e2es, 0.5)),
      e2e_p99_ms: Math.round(percentile(e2es, 0.99)),
      cache_hit_ratio: prompt === 0 ? 0 : Math.round((cached / prompt) * 1000) / 1000,
      engine0_share: Math.round(((served.e0 ?? 0) / Math.max(1, completed)) * 1000) / 1000,
    };
  } finally {
    olla.kill("SIGTERM");
    await olla.status;
    await Promise.all(engines.map((engine) => engine.close()));
    await Deno.remove(path).catch(() => {});
  }
}

const results: Result[] = [];
for (const kind of ["multi-turn", "short"] as const) {
  for (const balancer of BALANCERS) {
    console.error(`fleet: ${kind} / ${balancer}`);
    results.push(await run(kind, balancer, false));
  }
}
for (const balancer of ["least-connections", "least-loaded"]) {
  console.error(`fleet: short / ${balancer} / one engine at half speed`);
  results.push(await run("short", balancer, true));
}

const find = (kind: string, balancer: string, slow = false) =>
  results.find((r) => r.workload === kind && r.balancer === balancer && r.slow === slow) as Result;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
const aLc = find("multi-turn", "least-connections");
const aCa = find("multi-turn", "cache-aware");
const bLc = find("short", "least-connections");
const fastLl = find("short", "least-loaded");
const slowLl = find("short", "least-loaded", true);
const targets = [
  {
    target: "(a) cache-aware mean TTFT >= 30% lower than least-connections, at equal throughput",
    measured: `${
      Math.round((1 - aCa.ttft_mean_ms / aLc.ttft_mean_ms) * 100)
    }% lower (${aCa.ttft_mean_ms} vs ${aLc.ttft_mean_ms} ms); ${aCa.rps} vs ${aLc.rps} req/s`,
    met: aCa.ttft_mean_ms <= 0.7 * aLc.ttft_mean_ms && aCa.rps >= 0.95 * aLc.rps,
  },
  ...["least-loaded", "cache-aware"].map((balancer) => {
    const r = find("short", balancer);
    return {
      target: `(b) ${balancer} TTFT p99 no worse than least-connections (within 10%)`,
      measured: `${
        ratio(r.ttft_p99_ms, bLc.ttft_p99_ms)
      }x (${r.ttft_p99_ms} vs ${bLc.ttft_p99_ms} ms)`,
      met: r.ttft_p99_ms <= 1.1 * bLc.ttft_p99_ms,
    };
  }),
  {
    target: "one engine at half speed: least-loaded sends it less than a fair quarter",
    measured: `${Math.round(slowLl.engine0_share * 100)}% of requests`,
    met: slowLl.engine0_share < 0.25,
  },
  {
    target: "one engine at half speed: least-loaded TTFT p99 within 1.5x of the all-fast fleet",
    measured: `${
      ratio(slowLl.ttft_p99_ms, fastLl.ttft_p99_ms)
    }x (${slowLl.ttft_p99_ms} vs ${fastLl.ttft_p99_ms} ms)`,
    met: slowLl.ttft_p99_ms <= 1.5 * fastLl.ttft_p99_ms,
  },
];

const markdown = [
  `Simulated fleet: ${ENGINES} engines (batch 4, 8k-token prefix cache, 0.08 ms/uncached prompt token, 20 ms/output token), ${SECONDS} s per run at ${
    RATE["multi-turn"]
  } req/s (a) and ${RATE.short} req/s (b).${smoke ? " SMOKE RUN: not meaningful." : ""}`,
  "",
  "| workload | balancer | done req/s | TTFT p50 / p99 / mean (ms) | e2e p50 / p99 (ms) | cache hits | engine 0 share | errors |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...results.map((r) =>
    `| ${r.workload}${
      r.slow ? " (engine 0 at half speed)" : ""
    } | ${r.balancer} | ${r.rps} | ${r.ttft_p50_ms} / ${r.ttft_p99_ms} / ${r.ttft_mean_ms} | ${r.e2e_p50_ms} / ${r.e2e_p99_ms} | ${
      Math.round(r.cache_hit_ratio * 100)
    }% | ${Math.round(r.engine0_share * 100)}% | ${r.errors} |`
  ),
  "",
  "| Target (same run) | Result |",
  "| --- | --- |",
  ...targets.map((t) => `| ${t.target} | ${t.met ? "met" : "**missed**"}: ${t.measured} |`),
  "",
].join("\n");

await writeReport("fleet", smoke, { date: new Date().toISOString(), results, targets }, markdown);
console.log(markdown);
if (smoke && results.some((r) => r.completed === 0)) {
  console.error("fleet smoke run failed: a scenario completed no request");
  Deno.exit(1);
}
