// deno-lint-ignore-file no-console
/**
 * The floor for a proxy that routes by model on a runtime: a passthrough that, like any
 * such proxy must, reads the request body (to find `model`) and forwards its bytes with
 * a timeout signal, and hands a small non-streamed answer on as bytes. Streams pass
 * through untouched. Set beside bench/passthrough.ts, it shows how much of the distance
 * between a bare passthrough and olla-ts is the runtime's cost of touching bodies at all.
 *
 * `deno run -A bench/body_passthrough.ts <port> <upstream> [wrap]` or `bun bench/body_passthrough.ts ...`
 *
 * With `wrap`, streamed answers pass through a minimal pull-driven `ReadableStream` (what
 * any proxy that looks at stream chunks needs) instead of going out natively: the
 * experiment behind bench/README.md's figures on the cost of a JavaScript stream body.
 */
import { args, serveOn } from "./_shared.ts";

const [port, upstream, wrap] = [Number(args[0]), args[1], args[2] === "wrap"];
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
    return new Response(wrap && response.body ? wrapped(response.body) : response.body, response);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const answer = new Response(bytes, { status: response.status });
  answer.headers.set("content-type", response.headers.get("content-type") ?? "");
  return answer;
}

serveOn(port, handle);
console.log(`body-aware passthrough listening on ${port}`);
