/**
 * The Bun adapter: `Bun.serve` and `node:process` for arguments, environment, standard
 * streams and signals. Minimal local shapes of the Bun APIs keep type checking free of
 * Bun's types (the approach oak's http_server_bun.ts takes).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import {
  exitIfCannotListen,
  type Runtime,
  sharedFileAndProcessApis,
  withParsableUrl,
} from "./runtime_api.ts";

// Minimal local shapes of the Bun APIs used here, so type checking needs no Bun types
// (the approach oak's http_server_bun.ts takes).
interface BunServer {
  fetch(request: Request): Response | Promise<Response>;
  readonly port: number;
  readonly hostname: string;
  stop(closeActiveConnections?: boolean): Promise<void>;
  requestIP(request: Request): { address: string } | null;
  /** Sets the idle timeout of the request's connection, in seconds (0: none). */
  timeout(request: Request, seconds: number): void;
}
/** The parts of the `Bun` global olla-ts uses. */
export interface BunGlobal {
  readonly version: string;
  readonly argv: string[];
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    reusePort: boolean;
    maxRequestBodySize: number;
    development: boolean;
    fetch(request: Request, server: BunServer): Response | Promise<Response>;
  }): BunServer;
}

/** Bun's largest idle timeout, in seconds. */
export const BUN_MAX_IDLE_SECONDS = 255;

/** `server.idle_timeout` as Bun takes it: whole seconds, at least 1, at most 255. */
export function bunIdleSeconds(idleTimeoutMs: number): number {
  return Math.min(BUN_MAX_IDLE_SECONDS, Math.max(1, Math.ceil(idleTimeoutMs / 1000)));
}

/** The runtime adapter for Bun. */
export function createBunRuntime(bun: BunGlobal): Runtime {
  return {
    ...sharedFileAndProcessApis(),
    name: "bun",
    version: bun.version,
    slowHeaders: "Bun's HTTP server disconnects a client whose request headers are " +
      "incomplete after about 12 s by itself, whatever the value",
    cannotCloseIdle: undefined,
    // Bun reads `keepalive: false` as "neither take a pooled connection nor pool this one".
    freshConnection: { keepalive: false },
    args: () => bun.argv.slice(2),
    env: (name) => process.env[name],
    stdoutIsTerminal: () => Boolean(process.stdout.isTTY),
    writeStdout: (text) => void process.stdout.write(text),
    // With a callback, process.stdout.write never blocks on a full pipe (Bun.write to
    // Bun.stdout does; measured on Bun 1.4); one write is in flight at a time.
    writeStdoutAsync: (bytes) =>
      new Promise((resolve, reject) =>
        process.stdout.write(bytes, (error) => error ? reject(error) : resolve())
      ),
    writeStderr: (text) => void process.stderr.write(text),
    exit: (code) => process.exit(code),
    onShutdownSignal(handler) {
      process.on("SIGINT", () => handler("SIGINT"));
      process.on("SIGTERM", () => handler("SIGTERM"));
    },
    onReloadSignal(handler) {
      process.on("SIGHUP", handler);
    },
    relaunch(env) {
      // Compiled, argv[1] is the executable's own embedded path; otherwise the script.
      const script = bun.argv[1]?.startsWith("/$bunfs/") ? [] : [bun.argv[1]];
      const child = spawn(process.execPath, [...script, ...bun.argv.slice(2)], {
        env: { ...process.env, ...env },
        stdio: "inherit",
        // Its own process group: a terminal's Ctrl-C reaches it once, through us.
        detached: true,
      });
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.on(signal, () => child.kill(signal));
      }
      return new Promise((resolve) => {
        child.once("error", (error) => {
          process.stderr.write(`olla-ts: cannot relaunch with ${JSON.stringify(env)}: ${error}\n`);
          resolve(1);
        });
        child.once(
          "exit",
          (code, signal) =>
            resolve(code ?? 128 + (signal === "SIGINT" ? 2 : signal === "SIGKILL" ? 9 : 15)),
        );
      });
    },
    serve({ hostname, port, fetch, maxRequestBodySize, idleTimeoutMs }) {
      const idleSeconds = bunIdleSeconds(idleTimeoutMs);
      let server: BunServer;
      try {
        server = listen();
      } catch (error) {
        exitIfCannotListen(error, hostname, port);
        throw error;
      }
      function listen(): BunServer {
        return bun.serve({
          hostname,
          port,
          // Never share the port with another process (Bun's default on Linux lets a second
          // olla-ts on a taken port start silently and split the traffic).
          reusePort: false,
          // Keep-alive connections idle this long are closed (server.idle_timeout). While a
          // request is being answered its connection has no idle timeout: an SSE stream may
          // stay silent while the engine prefills a long prompt, and a non-streamed answer
          // sends nothing until it is done; olla-ts bounds those itself (proxy.read_timeout,
          // proxy.response_timeout). Neither setting governs a request whose headers are
          // incomplete: Bun drops those after about 12 s in any case (measured on Bun 1.4).
          idleTimeout: idleSeconds,
          maxRequestBodySize,
          development: false,
          fetch(request, srv) {
            srv.timeout(request, 0);
            return fetch(withParsableUrl(request), {
              remoteAddr: srv.requestIP(request)?.address ?? "",
              onFinished: () => srv.timeout(request, idleSeconds),
            });
          },
        });
      }
      // Bun serves a default export that has `fetch` by itself (printing a banner on
      // stdout) unless that export is a Server, so main.ts exports the server it started.
      return {
        entry: server,
        listening: Promise.resolve({
          hostname: server.hostname,
          port: server.port,
          ownsListener: true,
          shutdown: () => server.stop(false),
        }),
      };
    },
  };
}
