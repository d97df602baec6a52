// deno-lint-ignore-file no-console
/**
 * The floor for a proxy that keeps Olla's wire contract: the body-aware passthrough
 * (bench/body_passthrough.ts) plus everything the contract and olla-ts's guarantees make a
 * proxy do at the runtime's boundary for each request, written as directly as possible:
 *
 * - the client's address (Bun's `requestIP`), and Bun's idle timeout suspended while the
 *   request is answered and restored after (`server.timeout`, twice);
 * - a request id (`crypto.randomUUID`);
 * - the upstream request with the headers olla-ts sends (`X-Forwarded-For/-Proto/-Host`,
 *   `Via`, `X-Request-ID`, `Accept-Encoding`, the client's `User-Agent`), an
 *   `AbortController` of its own, and a listener on the client's `request.signal`;
 * - the backend answer's headers read once (the head-size check and client shaping);
 * - the answer's `X-Olla-*` headers, `Server-Timing`, `Via` and `X-Served-By`;
 * - one JSON access line per request, written through a buffered stdout (64 KiB).
 *
 * What it leaves out is olla-ts's own decision making (routing, health, failover,
 * limits, usage, metrics), so the distance from here to olla-ts is olla-ts's own code,
 * and the distance from the bare passthrough to here is what the runtime charges for the
 * contract. bench/floor.ts measures the three side by side.
 *
 * `bun bench/contract_passthrough.ts <port> <upstream>` (or `deno run -A ...`).
 */
import { args } from "./_shared.ts";

const [port, upstream] = [Number(args[0]), args[1]];
const MODEL_REGEXP = /"model"\s*:\s*"([^"]*)"/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let pending = "";
let writing = false;
function logLine(line: string): void {
  pending += line;
  if (pending.length < 65536 || writing) return;
  const bytes = encoder.encode(pending);
  pending = "";
  writing = true;
  write(bytes).finally(() => writing = false);
}
const bun = (globalThis as { Bun?: BunApi }).Bun;
const write = (bytes: Uint8Array): Promise<unknown> =>
  bun ? bun.write(bun.stdout, bytes) : Deno.stdout.write(bytes);

/** The Bun server calls the contract needs. */
interface BunServer {
  timeout(request: Request, seconds: number): void;
  requestIP(request: Request): { address: string } | null;
}
interface BunApi {
  serve(options: unknown): unknown;
  write(destination: unknown, bytes: Uint8Array): Promise<number>;
  stdout: unknown;
}

async function handle(request: Request, clientIp: string): Promise<Response> {
  const started = performance.now();
  const id = crypto.randomUUID();
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  const model = MODEL_REGEXP.exec(decoder.decode(body.subarray(0, 4096)))?.[1] ?? "";
  const headers: Record<string, string> = {
    "content-type": request.headers.get("content-type") ?? "application/json",
    "user-agent": request.headers.get("user-agent") ?? "",
    "accept-encoding": "identity",
    "x-forwarded-for": clientIp,
    "x-forwarded-proto": "http",
    "x-forwarded-host": request.headers.get("host") ?? "",
    via: "1.1 olla-ts",
    "x-request-id": id,
  };
  const controller = new AbortController();
  const onAbort = () => controller.abort(request.signal.reason);
  request.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const response = await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.method === "GET" ? undefined : body,
      signal: controller.signal,
    });
    const entries = [...response.headers];
    const bytes = new Uint8Array(await response.arrayBuffer());
    const answer = new Response(bytes, { status: response.status });
    const out = answer.headers;
    for (const [name, value] of entries) if (name !== "content-length") out.set(name, value);
    out.set("via", "1.1 olla-ts");
    out.set("x-served-by", "olla-ts/bench");
    out.set("x-olla-request-id", id);
    out.set("x-olla-endpoint", "bench");
    out.set("x-olla-model", model);
    out.set("x-olla-backend-type", "lmdeploy");
    out.set("x-olla-response-time", `${Math.round(performance.now() - started)}ms`);
    out.set("x-olla-routing-strategy", "priority");
    out.set("x-olla-routing-decision", "routed");
    out.set("x-olla-routing-reason", "model_found");
    out.set("server-timing", `olla;desc="proxy overhead";dur=0.1`);
    logLine(
      `{"time":"${
        new Date().toISOString()
      }","level":"info","msg":"access","request_id":"${id}","client":"${clientIp}","method":"${request.method}","path":"${url.pathname}","model":"${model}","endpoint":"bench","status":${response.status},"bytes_in":${body.byteLength},"bytes_out":${bytes.byteLength},"duration_ms":${
        performance.now() - started
      }}\n`,
    );
    return answer;
  } finally {
    request.signal.removeEventListener("abort", onAbort);
  }
}

if (bun) {
  bun.serve({
    hostname: "127.0.0.1",
    port,
    idleTimeout: 10,
    development: false,
    async fetch(request: Request, server: BunServer) {
      server.timeout(request, 0);
      const answer = await handle(request, server.requestIP(request)?.address ?? "");
      server.timeout(request, 10);
      return answer;
    },
  });
} else {
  Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    (request, info) => handle(request, info.remoteAddr.hostname),
  );
}
console.log(`contract passthrough listening on ${port}`);
