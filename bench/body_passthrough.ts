// deno-lint-ignore-file no-console
/**
 * The floor for a proxy that routes by model on a runtime: a passthrough that, like any
 * such proxy must, reads the request body (to find `model`) and forwards its bytes with
 * a timeout signal, and hands a small non-streamed answer on as bytes. Streams pass
 * through untouched. Set beside bench/passthrough.ts, it shows how much of the distance
 * between a bare passthrough and olla-ts is the runtime's cost of touching bodies at all.
 *
 * `deno run -A bench/body_passthrough.ts <port> <upstream> [stage]` or `bun bench/body_passthrough.ts ...`
 *
 * With a `stage`, streamed answers pass through JavaScript (what any proxy that looks at
 * stream chunks needs) instead of going out natively, the least code of each kind: the
 * experiments behind bench/README.md's figures on the cost of a JavaScript stream body.
 *
 * - `wrap`: a pull-driven `ReadableStream`, one default read per client pull;
 * - `byob`: the same, reading a byte stream into one reused buffer (olla-ts's stage on Deno);
 * - `bytes`: as `byob`, the client's stream a byte stream (`type: "bytes"`) itself;
 * - `direct`: Bun's `type: "direct"` stream, one pull writing each chunk to the socket;
 * - `transform`: `pipeThrough` a `TransformStream`.
 */
import { args, serveOn } from "./_shared.ts";

const [port, upstream] = [Number(args[0]), args[1]];
const stage = args[2];
const MODEL_REGEXP = /"model"\s*:\s*"([^"]*)"/;

/** The smallest stream stage: one upstream read per client pull, nothing queued. */
function wrapped(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** One read into a reused buffer per client pull, the chunk copied out at its size. */
function byobStage(body: ReadableStream<Uint8Array>, type?: "bytes"): ReadableStream<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(4 * 1024);
  return new ReadableStream({
    type,
    async pull(controller: ReadableStreamDefaultController<Uint8Array>) {
      const result = await reader.read(new Uint8Array(buffer));
      if (result.done || !result.value) return controller.close();
      const chunk = result.value.slice();
      buffer = result.value.buffer;
      controller.enqueue(chunk);
    },
    cancel: (reason: unknown) => reader.cancel(reason),
  } as UnderlyingDefaultSource<Uint8Array>, type ? undefined : { highWaterMark: 0 });
}

/** Bun's direct stream: one pull for the whole answer, each chunk written and flushed. */
function directStage(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream({
    type: "direct",
    async pull(controller: { write(b: Uint8Array): unknown; flush(): unknown; close(): void }) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        await controller.write(value);
        await controller.flush();
      }
    },
    cancel: (reason: unknown) => reader.cancel(reason),
  } as unknown as UnderlyingDefaultSource<Uint8Array>);
}

const STAGES: Record<string, (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>> = {
  wrap: wrapped,
  byob: (body) => byobStage(body),
  bytes: (body) => byobStage(body, "bytes"),
  direct: directStage,
  transform: (body) => body.pipeThrough(new TransformStream()),
};

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  const model = MODEL_REGEXP.exec(new TextDecoder().decode(body.subarray(0, 4096)))?.[1];
  const headers: Record<string, string> = {
    "content-type": request.headers.get("content-type") ?? "application/json",
    "x-model": model ?? "",
  };
  const response = await fetch(`${upstream}${url.pathname}${url.search}`, {
    method: request.method,
    headers,
    body: request.method === "GET" ? undefined : body,
    signal: AbortSignal.timeout(600_000),
  });
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    const body = response.body && stage ? STAGES[stage](response.body) : response.body;
    return new Response(body, response);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const answer = new Response(bytes, { status: response.status });
  answer.headers.set("content-type", response.headers.get("content-type") ?? "");
  return answer;
}

serveOn(port, handle);
console.log(`body-aware passthrough listening on ${port}`);
