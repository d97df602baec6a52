// deno-lint-ignore-file no-non-null-assertion
/**
 * The one test harness: olla-ts built from YAML text by the same `createService` main.ts
 * uses, on a real socket in front of fake backends or in process with an injected
 * `fetch`; and the helpers every test shares (until, post, chat, SSE reading, fixtures).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { serve } from "./_serve.ts";
import { FakeClock } from "./fakes/clock.ts";
import { fakeFetch, type FetchScript } from "./fakes/fetch.ts";
import {
  type FakeLmdeploy,
  type FakeLmdeployOptions,
  startFakeLmdeploy,
} from "./fakes/lmdeploy.ts";
import type { Clock } from "../lib/clock.ts";
import type { RedisClientLike } from "../lib/cluster/redis_link.ts";
import { parseConfig } from "../lib/config/load.ts";
import type { Config } from "../lib/config/schema.ts";
import { Logger } from "../lib/log.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { type Profile, ProfileSet } from "../lib/profiles/profile.ts";
import type { RegistrationStore } from "../lib/startup/registration.ts";
import { detectRuntime } from "../lib/startup/runtime.ts";
import { createService, type Service } from "../lib/startup/service.ts";

/** The text of a file in test/fixtures/. */
export function fixture(name: string): Promise<string> {
  return readFile(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
}

/** A running in-process olla-ts. */
export interface TestOlla {
  readonly url: string;
  readonly service: Service;
  readonly config: Config;
  /** Log lines written so far (JSON objects). */
  readonly logs: Record<string, unknown>[];
  /** Every raw log line, for secret checks. */
  readonly rawLogs: string[];
  close(): Promise<void>;
}

/** How a test builds olla-ts. */
export interface BuildOptions {
  profiles?: readonly Profile[];
  env?: Record<string, string>;
  clock?: Clock;
  fetch?: typeof fetch;
  canConnect?: (hostname: string, port: number, timeoutMs: number) => Promise<boolean>;
  registrationStore?: RegistrationStore;
  /** Wraps or replaces the Redis client of `cluster.redis_url`. */
  createRedisClient?: (url: string) => Promise<RedisClientLike>;
}

/** The runtime's own options for a request on a new connection, as main.ts passes them. */
const FRESH_CONNECTION = detectRuntime().freshConnection;

/** The service main.ts would build from `yaml`, logging JSON lines into arrays. */
export function buildService(yaml: string, options: BuildOptions = {}) {
  const profiles = new ProfileSet(options.profiles ?? BUILT_IN_PROFILES);
  const { config } = parseConfig(yaml, {
    env: (name) => options.env?.[name],
    knownTypes: profiles.typeNames,
  });
  const logs: Record<string, unknown>[] = [];
  const rawLogs: string[] = [];
  const logger = new Logger({
    level: "debug",
    format: "json",
    write: (line) => {
      rawLogs.push(line);
      logs.push(JSON.parse(line));
    },
  });
  const service = createService({
    config,
    profiles,
    logger,
    clock: options.clock,
    fetch: options.fetch,
    canConnect: options.canConnect,
    registrationStore: options.registrationStore,
    createRedisClient: options.createRedisClient,
    runtime: {
      name: "Bun" in globalThis ? "bun" : "deno",
      version: "0",
      freshConnection: FRESH_CONNECTION,
      memory: () => ({ rss: 1, heapUsed: 1, heapTotal: 1, external: 0 }),
    },
  });
  return { service, config, logs, rawLogs };
}

/** Starts olla-ts with `yaml` (endpoints and all) and waits for its first health probes. */
export async function startOlla(
  yaml: string,
  options: BuildOptions & { waitForHealthy?: boolean } = {},
): Promise<TestOlla> {
  const built = buildService(yaml, options);
  const { service } = built;
  const server = await serve((request, info) => service.fetch(request, info));
  service.start();
  if (options.waitForHealthy !== false) {
    // Best effort: some tests start olla-ts in front of endpoints that never come up.
    await until(
      () =>
        !service.registry.endpoints.some((e) =>
          e.status === "unknown" || (e.models === undefined && e.status === "healthy")
        ),
      5_000,
    ).catch(() => {});
  }
  return {
    ...built,
    url: server.url,
    async close() {
      service.stop();
      await server.close();
    },
  };
}

/**
 * olla-ts without sockets or timers: the real service handed `Request`s directly, its
 * backends an injected `fetch`, its time a {@linkcode FakeClock}. Nothing is probed; a
 * test makes an endpoint healthy with a model list with `serve()`.
 */
export function inProcessOlla(yaml: string, script: FetchScript, options: BuildOptions = {}) {
  const clock = new FakeClock();
  const upstream = fakeFetch(script);
  const built = buildService(yaml, {
    clock,
    fetch: upstream,
    canConnect: () => Promise.resolve(true),
    ...options,
  });
  const { registry } = built.service;
  return {
    ...built,
    clock,
    upstream,
    /** Sends a request to olla-ts as a client at `remoteAddr` would. */
    request(path: string, init: RequestInit = {}, remoteAddr = "127.0.0.1"): Promise<Response> {
      return Promise.resolve(
        built.service.fetch(new Request(`http://olla.test${path}`, init), { remoteAddr }),
      );
    },
    /** Marks an endpoint healthy, listing `models`, as probes and discovery would. */
    serve(name: string, models: string[]): void {
      registry.applyProbe(name, { status: "healthy", latencyMs: 1 });
      registry.setModels(name, models.map((id) => ({ id, raw: { id, object: "model" } })));
    },
  };
}

/** An endpoint entry for YAML configs. */
export function endpointYaml(name: string, url: string, extra = ""): string {
  return `      - name: ${name}\n        url: ${url}\n        type: lmdeploy\n        check_interval: 200ms\n        check_timeout: 500ms\n${extra}`;
}

/** A minimal config around the given endpoint entries. */
export function configYaml(endpoints: string[], extra = ""): string {
  return `server:\n  rate_limits:\n    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n  request_logging: true\ndiscovery:\n  static:\n    endpoints:\n${
    endpoints.join("")
  }${extra}`;
}

/**
 * Resolves once `predicate` holds (checked every 10 ms); fails the test after `timeoutMs`.
 * Tests wait for the event they need (a log line, a metric, a status) this way, never for
 * a fixed time.
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 3_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** POSTs JSON (or a string as it is) to `path` on olla-ts (or any base URL). */
export function post(
  target: TestOlla | string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const base = typeof target === "string" ? target : target.url;
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The model the LMDeploy fake serves by default. */
export const FAKE_MODEL = "internlm/internlm2_5-7b-chat";

/** A chat completion request to `/olla/lmdeploy/` (the fake's model unless `body` says otherwise). */
export function chat(
  olla: TestOlla,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return post(olla, "/olla/lmdeploy/v1/chat/completions", {
    model: FAKE_MODEL,
    messages: [{ role: "user", content: "hi" }],
    ...body,
  }, headers);
}

/** One server-sent event. */
export interface SseEvent {
  event?: string;
  data: string;
}

/** Reads a whole SSE body and splits it into events (comments and blank events dropped). */
export async function readSse(response: Response): Promise<SseEvent[]> {
  const text = await readText(response);
  return text.replaceAll("\r\n", "\n").split("\n\n").flatMap((block) => {
    const lines = block.split("\n").filter((line) => line !== "" && !line.startsWith(":"));
    if (lines.length === 0) return [];
    const event = lines.find((line) => line.startsWith("event:"))?.slice(6).trim();
    const data = lines.filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
    return [{ ...(event === undefined ? {} : { event }), data }];
  });
}

/** olla-ts in front of LMDeploy fakes, for suites that share one setup. */
export interface OllaWithFakes {
  olla: TestOlla;
  fakes: FakeLmdeploy[];
  close(): Promise<void>;
}

/**
 * Starts one LMDeploy fake per entry of `fakes`, then olla-ts with the configuration
 * `yaml(urls)` builds. `close()` stops all of them.
 */
export async function startOllaWithFakes(
  fakes: FakeLmdeployOptions[],
  yaml: (urls: string[]) => string,
  options: Parameters<typeof startOlla>[1] = {},
): Promise<OllaWithFakes> {
  const started = await Promise.all(fakes.map((fake) => startFakeLmdeploy(fake)));
  const closeFakes = () => Promise.all(started.map((fake) => fake.close().catch(() => {})));
  let olla: TestOlla;
  try {
    olla = await startOlla(yaml(started.map((fake) => fake.url)), options);
  } catch (error) {
    await closeFakes();
    throw error;
  }
  return {
    olla,
    fakes: started,
    async close() {
      await olla.close();
      await closeFakes();
    },
  };
}

/** Runs `run` against olla-ts in front of LMDeploy fakes, and stops everything after. */
export async function withOllaAndFakes(
  fakes: FakeLmdeployOptions[],
  yaml: (urls: string[]) => string,
  run: (olla: TestOlla, fakes: FakeLmdeploy[]) => Promise<void>,
  options: Parameters<typeof startOlla>[1] = {},
): Promise<void> {
  const fleet = await startOllaWithFakes(fakes, yaml, options);
  try {
    await run(fleet.olla, fleet.fakes);
  } finally {
    await fleet.close();
  }
}

/** Resolves once olla-ts has finished (and so logged and counted) `count` requests. */
export function untilObserved(olla: TestOlla, count: number): Promise<void> {
  return until(
    () => olla.service.telemetry.totals.requests >= count,
    3_000,
    `${count} finished requests`,
  );
}

/** Reads a whole body as text, chunk by chunk (so a stream is read as it arrives). */
export async function readText(response: Response): Promise<string> {
  return (await readChunks(response)).map((chunk) => chunk.text).join("");
}

/** Reads a streamed body chunk by chunk, with the time each chunk arrived. */
export async function readChunks(response: Response): Promise<{ text: string; at: number }[]> {
  const out: { text: string; at: number }[] = [];
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push({ text: decoder.decode(value, { stream: true }), at: performance.now() });
  }
  return out;
}
