// deno-lint-ignore-file no-console
/**
 * `deno task bench:soak`: olla-ts under a long mixed load while one of its two backends is
 * killed and restarted, on Deno and on Bun. 48 clients loop over streamed and non-streamed
 * chat requests for 60 s (5 s with `--smoke`); a third of the way in, one LMDeploy fake
 * is closed (its streams in flight are cut), two thirds in it comes back on the same port.
 *
 * Reported per runtime: requests sent; lost (an error status, or a refused or reset
 * connection: what failover exists to prevent); streams cut mid-answer by the kill (they
 * cannot fail over once bytes were sent; each must end with an error event, never a
 * silent truncation); answers served by the restarted backend afterwards; RSS and open
 * file descriptors before the load and after it settled.
 *
 * Then request bodies held in memory: four concurrent 40 MB chat requests, olla-ts's
 * peak RSS growth against the bytes in flight (the target is at most 1.5x).
 *
 * Printed as Markdown tables, which bench/run.ts quotes in the README.
 *
 * @module
 */
import { freePort, NO_RELAUNCH } from "./_process.ts";
import { startFakeLmdeploy } from "../test/fakes/lmdeploy.ts";

const smoke = Deno.args.includes("--smoke");
const SECONDS = smoke ? 5 : 60;
const CLIENTS = smoke ? 8 : 48;
const ROOT = new URL("..", import.meta.url).pathname;
const MODEL = "internlm/internlm2_5-7b-chat";

interface SoakResult {
  runtime: string;
  requests: number;
  lost: number;
  cutWithErrorEvent: number;
  cutSilently: number;
  servedByRestarted: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  fdsBefore: number;
  fdsAfter: number;
}

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForModels(base: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`${base}/olla/lmdeploy/v1/models`).then(
      async (r) => (await r.json()).data?.length > 0,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${base} did not come up`);
}

/** olla-ts under test: its process, its base URL, and what to remove after. */
interface Contender {
  child: Deno.ChildProcess;
  base: string;
  stop(): Promise<void>;
}

/** Starts olla-ts with `command args` in front of `endpoints` (YAML list entries). */
async function startContender(
  command: string,
  args: string[],
  endpoints: string,
  requestLogging: boolean,
): Promise<Contender> {
  const port = freePort();
  const config = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    config,
    `server:\n  host: 127.0.0.1\n  port: ${port}\n  request_logging: ${requestLogging}\n` +
      "  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n" +
      `discovery:\n  static:\n    endpoints:\n${endpoints}`,
  );
  const child = new Deno.Command(command, {
    args: [...args, "--config", config],
    cwd: ROOT,
    env: { ...NO_RELAUNCH, OLLA_LOGGING_FORMAT: "json" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  await waitForModels(base);
  return {
    child,
    base,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(config).catch(() => {});
    },
  };
}

async function soak(runtime: "deno" | "bun", command: string, args: string[]): Promise<SoakResult> {
  const first = await startFakeLmdeploy({ itlMs: 20 });
  const second = await startFakeLmdeploy({ itlMs: 20 });
  let restarted: Awaited<ReturnType<typeof startFakeLmdeploy>> | undefined;
  const olla = await startContender(
    command,
    args,
    `      - { name: a, url: "${first.url}", type: lmdeploy, check_interval: 1s }\n` +
      `      - { name: b, url: "${second.url}", type: lmdeploy, check_interval: 1s }\n`,
    true,
  );
  const { child, base } = olla;
  try {
    await sleep(500);
    const rssBeforeMb = rssMb(child.pid);
    const fdsBefore = openFds(child.pid);
    const counts = { requests: 0, lost: 0, cutWithErrorEvent: 0, cutSilently: 0 };
    const endAt = Date.now() + SECONDS * 1000;
    const client = async (id: number) => {
      for (let n = 0; Date.now() < endAt; n++) {
        const stream = (id + n) % 2 === 0;
        counts.requests++;
        try {
          const response = await fetch(`${base}/olla/lmdeploy/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-fake-tokens": "10" },
            body: JSON.stringify({ model: MODEL, stream, messages: [] }),
          });
          const text = await response.text();
          if (response.status !== 200) counts.lost++;
          else if (stream && !/"finish_reason": ?"stop"/.test(text)) {
            if (/"error"/.test(text) && text.endsWith("data: [DONE]\n\n")) {
              counts.cutWithErrorEvent++;
            } else counts.cutSilently++;
          }
        } catch {
          counts.lost++;
        }
      }
    };
    const killer = (async () => {
      await sleep(SECONDS * 1000 / 3);
      const { port: firstPort } = first;
      await first.close();
      await sleep(SECONDS * 1000 / 3);
      restarted = await startFakeLmdeploy({ port: firstPort, itlMs: 20 });
    })();
    await Promise.all([...Array.from({ length: CLIENTS }, (_, i) => client(i)), killer]);
    await sleep(2_000);
    return {
      runtime,
      ...counts,
      servedByRestarted: restarted?.count("/v1/chat/completions") ?? 0,
      rssBeforeMb,
      rssAfterMb: rssMb(child.pid),
      fdsBefore,
      fdsAfter: openFds(child.pid),
    };
  } finally {
    await olla.stop();
    await Promise.all([second.close(), restarted?.close()]);
  }
}

/** Peak RSS growth of olla-ts while four 40 MB bodies are in flight, per byte in flight. */
async function bodyMemory(command: string, args: string[]): Promise<number> {
  const fake = await startFakeLmdeploy();
  const olla = await startContender(
    command,
    args,
    `      - { name: a, url: "${fake.url}", type: lmdeploy }\n`,
    false,
  );
  const { child, base } = olla;
  try {
    const size = (smoke ? 4 : 40) * 1024 * 1024;
    const body = new TextEncoder().encode(
      JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x".repeat(size) }] }),
    );
    const before = rssMb(child.pid);
    let peak = before;
    const timer = setInterval(() => peak = Math.max(peak, rssMb(child.pid)), 20);
    await Promise.all(Array.from({ length: 4 }, async () => {
      const response = await fetch(`${base}/olla/lmdeploy/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await response.arrayBuffer();
    }));
    await sleep(200);
    clearInterval(timer);
    return (peak - before) / (4 * body.byteLength / 1024 / 1024);
  } finally {
    await olla.stop();
    await fake.close();
  }
}

const bun = Deno.args.find((arg) => arg.startsWith("--bun="))?.slice(6) ?? "bun";
const DENO_ARGS = ["run", "-A", "main.ts"];
const results = [
  await soak("deno", Deno.execPath(), DENO_ARGS),
  await soak("bun", bun, ["main.ts"]),
];
const bodies = {
  deno: await bodyMemory(Deno.execPath(), DENO_ARGS),
  bun: await bodyMemory(bun, ["main.ts"]),
};
const rows = results.map((r) =>
  `| ${r.runtime} | ${r.requests} | ${r.lost} | ${r.cutWithErrorEvent} | ${r.cutSilently} | ` +
  `${r.servedByRestarted} | ${r.rssBeforeMb.toFixed(0)} -> ${r.rssAfterMb.toFixed(0)} | ` +
  `${r.fdsBefore} -> ${r.fdsAfter} |`
);
console.log(
  [
    `Soak: ${SECONDS} s, ${CLIENTS} clients, streamed and non-streamed chat; backend "a" killed ` +
    `at ${Math.round(SECONDS / 3)} s and restarted at ${Math.round((2 * SECONDS) / 3)} s.`,
    "",
    "| runtime | requests | lost | streams cut by the kill, with error event | cut silently | served by the restarted backend | RSS MB before -> after | open fds before -> after |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n"),
);
console.log(
  [
    "",
    "Request bodies: four concurrent 40 MB chat requests; olla-ts's peak RSS growth per byte in flight (target at most 1.5x).",
    "",
    "| runtime | RSS growth / bytes in flight |",
    "|---|---|",
    `| deno | ${bodies.deno.toFixed(2)}x |`,
    `| bun | ${bodies.bun.toFixed(2)}x |`,
  ].join("\n"),
);
