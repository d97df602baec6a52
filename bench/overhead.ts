// deno-lint-ignore-file no-console
/**
 * olla-ts's own cost per request, without sockets: the real service (`createService`, the
 * same one main.ts runs) is handed requests directly and forwards them to an injected
 * `fetch` that answers at once. What remains is everything olla-ts does per request
 * (routing, header shaping, body handling, telemetry) on the runtime's Request/Response
 * objects, measured as microseconds of wall time per request at a fixed concurrency.
 * The socket benchmarks are too noisy on a shared 2-core machine to show a few
 * microseconds; this is the instrument for working on the hot path.
 *
 * olla-ts runs with its default configuration (access log on, through the real buffered
 * log writer into an output that discards), except that rate limits are off;
 * `--no-access-log` turns the access log off.
 *
 * `--stream` answers every request with a 100-frame SSE stream and reports the cost per
 * frame: olla-ts's stream stage and usage observer, without sockets; `--frames=N` sets the
 * frame count (a few frames show what a stream costs per request beyond a whole answer).
 *
 * `--anthropic` sends Anthropic Messages requests to `/olla/anthropic/v1/messages` in front
 * of an engine without the Messages API, so every request and (with `--stream`) every
 * frame is translated: the translator's cost beside the passthrough's.
 *
 * `deno run -A bench/overhead.ts [requests] [--no-access-log] [--stream] [--frames=N] [--anthropic]` or
 * `bun bench/overhead.ts ...`;
 * prints one JSON line.
 */
import {
  args,
  CHAT_ANSWER,
  IN_PROCESS_RUNTIME,
  MODEL_LIST,
  postInProcess,
  untilModelsKnown,
} from "./_shared.ts";
import { systemClock } from "../lib/clock.ts";
import { parseConfig } from "../lib/config/load.ts";
import { Logger } from "../lib/log.ts";
import { LogWriter } from "../lib/log_writer.ts";
import { configuredSecrets, createRedactor } from "../lib/observability/redact.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { createService } from "../lib/startup/service.ts";

const REQUESTS = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const ACCESS_LOG = !args.includes("--no-access-log");
/** With `--stream`, each answer is an SSE stream of this many frames (`us_per_frame`). */
const FRAMES_FLAG = "--frames=";
const FRAMES_ARG = args.find((arg) => arg.startsWith(FRAMES_FLAG));
const FRAMES = FRAMES_ARG
  ? Number(FRAMES_ARG.slice(FRAMES_FLAG.length))
  : args.includes("--stream")
  ? 100
  : 0;
/** With `--anthropic`, requests are Anthropic Messages, translated for an SGLang endpoint. */
const ANTHROPIC = args.includes("--anthropic");
const encoder = new TextEncoder();
const FRAME = encoder.encode(
  `data: ${
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta: { content: "tok" }, finish_reason: null }],
    })
  }\n\n`,
);
const LAST_FRAMES = encoder.encode(
  'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":100}}\n\ndata: [DONE]\n\n',
);

/** An SSE body of FRAMES frames, as a byte stream where the runtime has them (as fetch's is). */
function sseBody(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      controller.enqueue(sent++ < FRAMES ? FRAME.slice() : LAST_FRAMES.slice());
      if (sent > FRAMES) controller.close();
    },
  });
}
const CONCURRENCY = 32;
const UPSTREAM = "http://127.0.0.1:18400";

const BODY = ANTHROPIC
  ? `{"model":"bench-model","max_tokens":128,"stream":${
    FRAMES > 0
  },"messages":[{"role":"user","content":"Hello"}]}`
  : '{"model":"bench-model","messages":[{"role":"user","content":"Hello"}]}';
const PATH = ANTHROPIC ? "/olla/anthropic/v1/messages" : "/olla/lmdeploy/v1/chat/completions";

/** The upstream, answering as a real fetch would: a JSON body with its length. */
function upstreamFetch(input: RequestInfo | URL): Promise<Response> {
  const path = new URL(String(input)).pathname;
  const body = path === "/v1/models"
    ? MODEL_LIST
    : path === "/is_sleeping"
    ? '{"is_sleeping":false}'
    : path === "/health"
    ? '{"status":"healthy","message":"Engine is healthy."}'
    : CHAT_ANSWER;
  if (FRAMES > 0 && path === "/v1/chat/completions") {
    return Promise.resolve(
      new Response(sseBody(), { headers: { "content-type": "text/event-stream" } }),
    );
  }
  return Promise.resolve(
    new Response(body, {
      headers: {
        "content-type": "application/json",
        "content-length": String(body.length),
        date: "Tue, 25 Nov 2026 10:00:00 GMT",
        server: "uvicorn",
      },
    }),
  );
}

const profiles = new ProfileSet(BUILT_IN_PROFILES);
const { config } = parseConfig(
  `
server: { request_logging: ${ACCESS_LOG}, rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 } }
discovery:
  static:
    endpoints:
      - { name: bench, url: "${UPSTREAM}", type: ${
    ANTHROPIC ? "sglang" : "lmdeploy"
  }, check_interval: 1h }
`,
  { knownTypes: profiles.typeNames, env: () => undefined },
);
const writer = new LogWriter({
  write: () => Promise.resolve(),
  clock: systemClock,
  redact: createRedactor(configuredSecrets(config)),
});
const logger = new Logger({
  level: "info",
  format: "json",
  write: (line) => writer.line(line),
});
const service = createService({
  config,
  profiles,
  logger,
  clock: systemClock,
  fetch: upstreamFetch as typeof fetch,
  canConnect: () => Promise.resolve(true),
  runtime: IN_PROCESS_RUNTIME,
});
service.start();
await untilModelsKnown(service.registry);

const info = { remoteAddr: "127.0.0.1" };
const run = (count: number) =>
  postInProcess((request) => service.fetch(request, info), count, PATH, BODY, CONCURRENCY);

await run(Math.min(20_000, REQUESTS)); // warm-up: JIT and caches
const ms = await run(REQUESTS);
service.stop();
console.log(JSON.stringify({
  runtime: (globalThis as { Bun?: unknown }).Bun ? "bun" : "deno",
  requests: REQUESTS,
  concurrency: CONCURRENCY,
  access_log: ACCESS_LOG,
  anthropic: ANTHROPIC,
  us_per_request: Number((ms * 1000 / REQUESTS).toFixed(2)),
  ...(FRAMES > 0 ? { us_per_frame: Number((ms * 1000 / REQUESTS / (FRAMES + 1)).toFixed(3)) } : {}),
}));
