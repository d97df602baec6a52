/**
 * Load from wrk for the socket benchmarks: the chat request they post and wrk's Lua script
 * for it, olla-ts's configuration while they measure it (run.ts too, which runs wrk itself
 * for its latencies), one run, alternating rounds over several contenders (cluster.ts,
 * floor.ts), their median, and the check that the tools are installed.
 *
 * @module
 */
import { cpuUs } from "./_process.ts";

/** The chat request every socket benchmark posts. */
export const CHAT_BODY = JSON.stringify({
  model: "bench-model",
  messages: [{ role: "user", content: "Hello" }],
});

/**
 * olla-ts's configuration in the socket benchmarks (run.ts, floor.ts): the defaults
 * (access log on, level info) except that rate limits are off, one LMDeploy endpoint at
 * `upstream`; `accessLog: false` for the copy that shows what the access log costs.
 */
export function ollaBenchConfig(upstream: string, port: number, accessLog = true): string {
  return `server:
  host: 127.0.0.1
  port: ${port}
  request_logging: ${accessLog}
  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }
discovery:
  static:
    endpoints:
      - { name: bench, url: "${upstream}", type: lmdeploy, check_interval: 5s }
`;
}

/** Writes wrk's Lua script that posts {@linkcode CHAT_BODY} into `dir`; returns its path. */
export async function chatPostScript(dir: string): Promise<string> {
  const path = `${dir}/post.lua`;
  await Deno.writeTextFile(
    path,
    `wrk.method = "POST"\nwrk.body = '${CHAT_BODY}'\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  return path;
}

/**
 * One wrk run of `seconds` with 32 connections posting through `script`: requests
 * completed and req/s.
 *
 * @throws {Error} when any answer was not a 2xx (a contender that fails is not measured).
 */
export async function wrkPost(
  script: string,
  url: string,
  seconds: number,
): Promise<{ requests: number; rps: number }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${seconds}s`, "-s", script, url],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  if (non2xx > 0) throw new Error(`${url}: ${non2xx} answers were not 2xx`);
  return {
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
  };
}

/** A server under load: its name, its process (for CPU time) and the URL wrk posts to. */
export type Contender = readonly [name: string, process: Deno.ChildProcess, url: string];

/** Medians over the rounds: CPU per request (us, from schedstat) and req/s. */
export interface Measured {
  cpuUs: number;
  rps: number;
}

/** The middle value (the lower of the two middle ones for an even count). */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

/**
 * Loads each contender in turn, `rounds` times over (after 2 s of warm-up each), so a slow
 * minute of the machine lands on every contender; returns each one's medians by name.
 */
export async function alternatingRounds(
  script: string,
  contenders: readonly Contender[],
  rounds: number,
  seconds: number,
): Promise<Record<string, Measured>> {
  for (const [, , url] of contenders) await wrkPost(script, url, 2);
  const cpu: Record<string, number[]> = Object.fromEntries(contenders.map(([name]) => [name, []]));
  const rps: Record<string, number[]> = Object.fromEntries(contenders.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, child, url] of contenders) {
      const before = cpuUs(child.pid);
      const result = await wrkPost(script, url, seconds);
      cpu[name].push((cpuUs(child.pid) - before) / result.requests);
      rps[name].push(result.rps);
    }
  }
  return Object.fromEntries(
    contenders.map(([name]) => [name, { cpuUs: median(cpu[name]), rps: median(rps[name]) }]),
  );
}

/** Exits with a message naming what to install when one of `tools` (name, version flag) is missing. */
export async function requireTools(
  task: string,
  tools: readonly (readonly [string, string])[],
  install: string,
): Promise<void> {
  for (const [tool, flag] of tools) {
    const found = await new Deno.Command(tool, { args: [flag], stdout: "null", stderr: "null" })
      .output().then(() => true, () => false);
    if (!found) {
      // deno-lint-ignore no-console
      console.error(`${task} needs ${tool} (${install})`);
      Deno.exit(1);
    }
  }
}
