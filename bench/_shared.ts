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
