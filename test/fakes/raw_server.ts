/**
 * A minimal LMDeploy-like HTTP/1.1 server over node:net, for faults a web-standard server
 * cannot produce:
 *
 * - `stale-keepalive` reproduces the keep-alive race LMDeploy's uvicorn causes (it closes
 *   connections idle for 5 s): every connection serves one request with
 *   `Connection: keep-alive`, then drops the next request sent on it without answering,
 *   as if the server had closed it just as the client reused it.
 * - `truncated-body`: a POST is answered 200 with its full `content-length` but only half
 *   the body, then the connection drops.
 * - `stalled-body`: the same half body, then silence with the connection open.
 * - `stalled-error-body`: a POST is answered 503 with half its error body, then silence.
 * - `many-headers`: a POST is answered with 10,000 response headers.
 * - `huge-header`: a POST is answered with one 1 MB response header.
 */
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";

export type RawFault =
  | "stale-keepalive"
  | "truncated-body"
  | "stalled-body"
  | "stalled-error-body"
  | "many-headers"
  | "huge-header";

/** Extra response headers a fault adds to a POST's answer. */
function extraHeaders(fault: RawFault): string {
  if (fault === "many-headers") {
    return Array.from({ length: 10_000 }, (_, i) => `x-extra-${i}: ${i}\r\n`).join("");
  }
  if (fault === "huge-header") return `x-huge: ${"h".repeat(1 << 20)}\r\n`;
  return "";
}

const TRUNCATING: ReadonlySet<RawFault> = new Set([
  "truncated-body",
  "stalled-body",
  "stalled-error-body",
]);
const OVERLOADED = { status: 503, body: '{"object":"error","message":"engine overloaded"}' };

export interface RawServer {
  readonly url: string;
  /** Requests dropped on reused connections (`stale-keepalive`). */
  readonly resets: number;
  /** Requests answered. */
  readonly served: number;
  close(): Promise<void>;
}

const MODEL = "internlm/internlm2_5-7b-chat";

function answer(method: string, path: string): { status: number; body: string } {
  if (path === "/health") {
    return { status: 200, body: '{"status":"healthy","message":"Engine is healthy."}' };
  }
  if (path === "/is_sleeping") return { status: 200, body: '{"is_sleeping":false}' };
  if (path === "/v1/models") {
    return {
      status: 200,
      body: JSON.stringify({
        object: "list",
        data: [{ id: MODEL, object: "model", owned_by: "lmdeploy" }],
      }),
    };
  }
  if (method === "POST") {
    return {
      status: 200,
      body: JSON.stringify({
        id: "chatcmpl-stale",
        object: "chat.completion",
        model: MODEL,
        choices: [{
          index: 0,
          message: { role: "assistant", content: "fresh" },
          finish_reason: "stop",
        }],
      }),
    };
  }
  return { status: 404, body: '{"detail":"Not Found"}' };
}

export function startRawServer(fault: RawFault): Promise<RawServer> {
  let resets = 0;
  let served = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    let requests = 0;
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const headerEnd = buffered.indexOf("\r\n\r\n");
        if (headerEnd === -1) return;
        const head = buffered.subarray(0, headerEnd).toString();
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < headerEnd + 4 + length) return;
        buffered = buffered.subarray(headerEnd + 4 + length);
        requests++;
        if (fault === "stale-keepalive" && requests > 1) {
          resets++;
          socket.destroy();
          return;
        }
        const [method, path] = head.split(" ");
        const { status, body } = method === "POST" && fault === "stalled-error-body"
          ? OVERLOADED
          : answer(method, path);
        served++;
        const extra = method === "POST" ? extraHeaders(fault) : "";
        const responseHead = `HTTP/1.1 ${status} OK\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\n` +
          `${extra}\r\n`;
        if (method === "POST" && TRUNCATING.has(fault)) {
          socket.write(responseHead + body.slice(0, body.length >> 1));
          if (fault === "truncated-body") socket.destroy();
          return;
        }
        socket.write(responseHead + body);
      }
    });
    socket.on("error", () => {});
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        get resets() {
          return resets;
        },
        get served() {
          return served;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
