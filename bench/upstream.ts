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
import { args, CHAT_ANSWER, MODEL_LIST, serveOn } from "./_shared.ts";

const port = Number(args[0] ?? 18400);
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
    if (url.pathname === "/v1/models") return new Response(MODEL_LIST, { headers: JSON_HEADERS });
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
  return new Response(CHAT_ANSWER, { headers: JSON_HEADERS });
}

serveOn(port, handle);
console.log(`upstream listening on ${port}`);
