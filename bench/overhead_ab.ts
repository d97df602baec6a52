// deno-lint-ignore-file no-console no-explicit-any
/**
 * Two checkouts of olla-ts side by side in one process: the A/B instrument for hot-path
 * changes worth a microsecond or two, which separate runs of `overhead.ts` cannot resolve
 * on a shared machine (their medians drift by 5-10 us from one minute to the next).
 *
 * Each checkout's real service is built from its own `lib/` (as overhead.ts builds it:
 * access log on into a discarding writer, rate limits off, an injected `fetch` answering
 * at once), warmed, and then the two are handed batches of requests in turn, the order
 * alternating each round, so a slow second of the machine lands on both. It prints the
 * median of the round-by-round differences (B minus A, us per request). The service built
 * second measures a little slower whatever its code (1-3 us in A/A runs of one checkout
 * against itself), so `--both` runs each order in a process of its own and halves the
 * difference of the two.
 *
 * Bun only (Deno resolves npm packages only inside its own workspace):
 * `bun bench/overhead_ab.ts <checkout A> <checkout B> [rounds] [--both]`; each checkout
 * needs its `node_modules` (a symlink to this one's will do).
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { args, IN_PROCESS_RUNTIME, postInProcess, untilModelsKnown } from "./_shared.ts";
import { CHAT_BODY, median } from "./_wrk.ts";

const [treeA, treeB] = args.filter((arg) => !/^(\d+|--both)$/.test(arg));
if (!treeA || !treeB) throw new Error("Usage: bun bench/overhead_ab.ts <A> <B> [rounds] [--both]");
const ROUNDS = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 30);
const BATCH = 5_000;
const PATH = "/olla/lmdeploy/v1/chat/completions";

/** The service of the checkout at `root`, ready to serve. */
async function serviceOf(root: string): Promise<any> {
  const load = (path: string) => import(`${root}/${path}`);
  const { CHAT_ANSWER, MODEL_LIST } = await load("bench/_shared.ts");
  const { systemClock } = await load("lib/clock.ts");
  const { parseConfig } = await load("lib/config/load.ts");
  const { Logger } = await load("lib/log.ts");
  const { LogWriter } = await load("lib/log_writer.ts");
  const { configuredSecrets, createRedactor } = await load("lib/observability/redact.ts");
  const { BUILT_IN_PROFILES } = await load("lib/profiles/built_in.ts");
  const { ProfileSet } = await load("lib/profiles/profile.ts");
  const { createService } = await load("lib/startup/service.ts");
  const upstreamFetch = (input: RequestInfo | URL) => {
    const path = new URL(String(input)).pathname;
    const body = path === "/v1/models" ? MODEL_LIST : CHAT_ANSWER;
    return Promise.resolve(
      new Response(body, {
        headers: {
          "content-type": "application/json",
          "content-length": String(body.length),
          server: "uvicorn",
        },
      }),
    );
  };
  const profiles = new ProfileSet(BUILT_IN_PROFILES);
  const { config } = parseConfig(
    `
server: { request_logging: true, rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 } }
discovery:
  static:
    endpoints:
      - { name: bench, url: "http://127.0.0.1:18400", type: lmdeploy, check_interval: 1h }
`,
    { knownTypes: profiles.typeNames, env: () => undefined },
  );
  const writer = new LogWriter({
    write: () => Promise.resolve(),
    clock: systemClock,
    redact: createRedactor(configuredSecrets(config)),
  });
  const service = createService({
    config,
    profiles,
    logger: new Logger({
      level: "info",
      format: "json",
      write: (line: string) => writer.line(line),
    }),
    clock: systemClock,
    fetch: upstreamFetch,
    canConnect: () => Promise.resolve(true),
    runtime: IN_PROCESS_RUNTIME,
  });
  service.start();
  await untilModelsKnown(service.registry);
  return service;
}

const info = { remoteAddr: "127.0.0.1" };
/** Microseconds of wall time per request over `count` requests, 32 at a time. */
async function usPerRequest(service: any, count: number): Promise<number> {
  const ms = await postInProcess((request) => service.fetch(request, info), count, PATH, CHAT_BODY);
  return ms * 1000 / count;
}

/** B minus A, us per request: the median of the rounds' differences. */
async function difference(a: any, b: any): Promise<number> {
  await usPerRequest(a, 20_000);
  await usPerRequest(b, 20_000);
  const differences = [];
  for (let round = 0; round < ROUNDS; round++) {
    const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
    const firstUs = await usPerRequest(first, BATCH);
    const secondUs = await usPerRequest(second, BATCH);
    differences.push(first === a ? secondUs - firstUs : firstUs - secondUs);
  }
  return median(differences);
}

if (args.includes("--both")) {
  // The service built second measures a little slower, whatever its code: run each order
  // in its own process and halve the difference.
  const once = (first: string, second: string) => {
    const child = spawnSync(process.execPath, [process.argv[1], first, second, String(ROUNDS)], {
      encoding: "utf8",
    });
    if (child.status !== 0) throw new Error(`overhead_ab failed: ${child.stderr}`);
    return JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}").b_minus_a as number;
  };
  const forward = once(treeA, treeB);
  const backward = once(treeB, treeA);
  console.log(JSON.stringify({
    a: treeA,
    b: treeB,
    rounds: ROUNDS,
    b_minus_a: forward,
    a_minus_b: backward,
    b_minus_a_unbiased: Number(((forward - backward) / 2).toFixed(2)),
  }));
} else {
  const a = await serviceOf(treeA);
  const b = await serviceOf(treeB);
  const bMinusA = await difference(a, b);
  a.stop();
  b.stop();
  console.log(JSON.stringify({ a: treeA, b: treeB, rounds: ROUNDS, b_minus_a: bMinusA }));
}
process.exit(0);
