// deno-lint-ignore-file no-console
/**
 * The floor for any proxy on a runtime: a bare `fetch` passthrough in a few lines, run
 * under Deno or Bun: `deno run -A bench/passthrough.ts <port> <upstream>`.
 */
const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const [port, upstream] = [Number(args[0]), args[1]];

function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  return fetch(`${upstream}${url.pathname}${url.search}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    duplex: "half",
  } as RequestInit).then((response) => new Response(response.body, response));
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
console.log(`passthrough listening on ${port}`);
