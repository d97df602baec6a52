/**
 * What the benchmark's small servers share: their command-line arguments, a server
 * bootstrap for Deno or Bun, and the fake upstream's answers (also used in process by
 * overhead.ts).
 *
 * @module
 */

/** Command-line arguments under Deno or Bun. */
export const args: readonly string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

/** Serves `handler` on 127.0.0.1:`port` with whichever runtime runs this. */
export function serveOn(port: number, handler: (request: Request) => Promise<Response>): void {
  const bun = (globalThis as { Bun?: { serve(o: unknown): unknown } }).Bun;
  if (bun) {
    bun.serve({ hostname: "127.0.0.1", port, fetch: handler, idleTimeout: 0, development: false });
  } else {
    (globalThis as unknown as { Deno: { serve(o: unknown, h: unknown): unknown } }).Deno.serve(
      { hostname: "127.0.0.1", port, onListen() {} },
      handler,
    );
  }
}

/** The upstream's non-streamed chat completion. */
export const CHAT_ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1755760000,
  model: "bench-model",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, total_tokens: 15, completion_tokens: 3 },
});

/** The upstream's model list. */
export const MODEL_LIST = JSON.stringify({
  object: "list",
  data: [{ id: "bench-model", object: "model", owned_by: "lmdeploy" }],
});

/**
 * Hands `count` POSTs of `body` to `path` to `serve` (a service's fetch, no sockets),
 * `concurrency` at a time, reading each answer whole; returns the milliseconds it took.
 *
 * @throws {Error} on an answer other than 200.
 */
export async function postInProcess(
  serve: (request: Request) => Response | Promise<Response>,
  count: number,
  path: string,
  body: string,
  concurrency = 32,
): Promise<number> {
  let left = count;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) {
      const request = new Request(`http://127.0.0.1:18501${path}`, {
        method: "POST",
        headers: {
          host: "127.0.0.1:18501",
          "content-type": "application/json",
          "content-length": String(body.length),
          "user-agent": "bench",
        },
        body,
      });
      const response = await serve(request);
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      await response.arrayBuffer();
    }
  }));
  return performance.now() - started;
}

/** The runtime a service built in process (overhead.ts, overhead_ab.ts) reports. */
export const IN_PROCESS_RUNTIME = {
  name: "bench",
  version: "0",
  memory: () => ({ rss: 0, heapUsed: 0, heapTotal: 0, external: 0 }),
};

/** Resolves once every endpoint in `registry` has its model list (the service can route). */
export async function untilModelsKnown(
  registry: { endpoints: readonly { models?: unknown }[] },
): Promise<void> {
  while (!registry.endpoints.every((endpoint) => endpoint.models !== undefined)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
