// deno-lint-ignore-file no-console
/**
 * The floor for any proxy on a runtime: a bare `fetch` passthrough in a few lines, run
 * under Deno or Bun: `deno run -A bench/passthrough.ts <port> <upstream>`.
 */
import { args, serveOn } from "./_shared.ts";

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

serveOn(port, handle);
console.log(`passthrough listening on ${port}`);
