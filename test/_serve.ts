/**
 * A web-standard HTTP server for tests, on whichever runtime runs them (Deno.serve under
 * `deno test`, Bun.serve under `bun test`), bound to 127.0.0.1; and a free port for
 * servers started some other way.
 */
import { createServer } from "node:net";

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A running test server. */
export interface TestServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server, closing open connections. */
  close(): Promise<void>;
}

type Handler = (request: Request, info: { remoteAddr: string }) => Response | Promise<Response>;

interface BunLike {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout?: number;
    development?: boolean;
    fetch(
      request: Request,
      server: { requestIP(r: Request): { address: string } | null },
    ): Response | Promise<Response>;
  }): { port: number; stop(force?: boolean): Promise<void> };
}

/** Serves `handler` on 127.0.0.1 (`port` 0 picks a free port). */
export function serve(handler: Handler, options: { port?: number } = {}): Promise<TestServer> {
  const port = options.port ?? 0;
  const bun = (globalThis as { Bun?: BunLike }).Bun;
  if (bun) {
    const server = bun.serve({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 0,
      development: false,
      fetch: (request, srv) =>
        handler(request, { remoteAddr: srv.requestIP(request)?.address ?? "" }),
    });
    return Promise.resolve({
      port: server.port,
      url: `http://127.0.0.1:${server.port}`,
      close: () => server.stop(true),
    });
  }
  return new Promise((resolve) => {
    const controller = new AbortController();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      signal: controller.signal,
      onListen: ({ port }) =>
        resolve({
          port,
          url: `http://127.0.0.1:${port}`,
          close: async () => {
            controller.abort();
            await server.finished;
          },
        }),
    }, (request, info) => handler(request, { remoteAddr: info.remoteAddr.hostname }));
  });
}
