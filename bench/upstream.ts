// deno-lint-ignore-file no-console
/**
 * The benchmark's fake upstream: an LMDeploy-shaped server that answers at once.
 *
 * - `POST /v1/chat/completions` (and any other POST): a small chat-completion JSON.
 * - any POST with `?frames=N&interval=MS`: a paced SSE stream of N frames, one every MS
 *   milliseconds; each frame carries the time it was sent (`sent`, ms since the epoch
 *   with sub-millisecond precision) so a client can measure per-frame proxy delay.
 * - `GET /health`, `/is_sleeping`, `/v1/models`: what olla-ts's probes and discovery read.
 *
 * Run with Bun (fastest) or Deno: `bun bench/upstream.ts <port>`.
 */
const port = Number(
  (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv[2] ?? 18400,
);

const CHAT = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1755760000,
  model: "bench-model",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, total_tokens: 15, completion_tokens: 3 },
});
const MODELS = JSON.stringify({
  object: "list",
  data: [{ id: "bench-model", object: "model", owned_by: "lmdeploy" }],
});
const JSON_HEADERS = { "content-type": "application/json" };
const encoder = new TextEncoder();
const now = () => performance.timeOrigin + performance.now();

function stream(frames: number, interval: number): Response {
  let sent = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const tick = () => {
        if (sent === frames) {
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          controller.close();
          return;
        }
        const frame = {
          i: sent++,
          sent: now(),
          choices: [{ index: 0, delta: { content: "tok" } }],
        };
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(frame)}\n\n`));
        timer = setTimeout(tick, interval);
      };
      tick();
    },
    cancel() {
      clearTimeout(timer);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8" } });
}

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (request.method === "GET") {
    if (url.pathname === "/health") {
      return new Response('{"status":"healthy","message":"ok"}', { headers: JSON_HEADERS });
    }
    if (url.pathname === "/is_sleeping") {
      return new Response('{"is_sleeping":false}', { headers: JSON_HEADERS });
    }
    if (url.pathname === "/v1/models") return new Response(MODELS, { headers: JSON_HEADERS });
    return new Response('{"detail":"Not Found"}', { status: 404, headers: JSON_HEADERS });
  }
  await request.arrayBuffer();
  // A request with ?frames= is answered with a paced stream, whatever its path, so the
  // same URL works directly, through a passthrough and through olla-ts's routes.
  if (url.searchParams.has("frames")) {
    return stream(
      Number(url.searchParams.get("frames") ?? 20),
      Number(url.searchParams.get("interval") ?? 50),
    );
  }
  return new Response(CHAT, { headers: JSON_HEADERS });
}

const bun = (globalThis as { Bun?: { serve(o: unknown): unknown } }).Bun;
if (bun) {
  bun.serve({ hostname: "127.0.0.1", port, fetch: handle, idleTimeout: 0, development: false });
} else {
  (globalThis as unknown as { Deno: { serve(o: unknown, h: unknown): unknown } }).Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    handle,
  );
}
console.log(`upstream listening on ${port}`);
