/**
 * The only module that touches Deno or Bun globals: process arguments, environment,
 * files, standard streams, signals, memory figures and starting the HTTP server.
 * Everything else in `lib/` uses web-standard APIs and receives what it needs from here.
 *
 * Where Deno and Bun both implement a `node:` module the same way (files, TCP probes,
 * memory usage), that module is used instead of two branches.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { connect } from "node:net";
import process from "node:process";

import type { ConnInfo } from "../server/app_env.ts";

/** A request handler as olla-ts's app exposes it. */
export type FetchHandler = (request: Request, info: ConnInfo) => Response | Promise<Response>;

/** Options for {@linkcode Runtime.serve}. */
export interface ServeOptions {
  hostname: string;
  /** 0 picks any free port. */
  port: number;
  fetch: FetchHandler;
  /**
   * Largest request body the runtime itself accepts. olla-ts enforces its own, lower
   * limit with a JSON error; this only keeps the runtime from answering first.
   */
  maxRequestBodySize: number;
}

/** A listening server started by {@linkcode Runtime.serve}. */
export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /**
   * Whether olla-ts owns the listener. Under `deno serve` Deno owns it, so
   * {@linkcode RunningServer.shutdown} cannot close it and the app refuses new requests instead.
   */
  readonly ownsListener: boolean;
  /** Stops accepting connections and resolves once in-flight requests have finished. */
  shutdown(): Promise<void>;
}

/** The default export of `main.ts`: an object with `fetch`, as `deno serve` and Bun expect. */
export interface ServeEntry {
  fetch(request: Request, ...rest: unknown[]): Response | Promise<Response>;
}

/** What {@linkcode Runtime.serve} returns. */
export interface Serving {
  /** For `main.ts` to export as its default. */
  entry: ServeEntry;
  /** Resolves once the server listens. */
  listening: Promise<RunningServer>;
}

/** Resident and heap memory in bytes. */
export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** What olla-ts needs from the JavaScript runtime it runs on. */
export interface Runtime {
  readonly name: "deno" | "bun";
  readonly version: string;
  /** Command-line arguments after the script (or executable) name. */
  args(): string[];
  env(name: string): string | undefined;
  readTextFile(path: string): Promise<string>;
  /** File names (not paths) in a directory, sorted. */
  listDir(path: string): Promise<string[]>;
  isFile(path: string): Promise<boolean>;
  stdoutIsTerminal(): boolean;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
  exit(code: number): never;
  /** Calls `handler` for every SIGINT and SIGTERM. */
  onShutdownSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): void;
  /**
   * Serves `options.fetch` the way the launch mode needs: `deno run`, `bun run` and the
   * compiled executable listen on `options.hostname:port`; under `deno serve` Deno
   * listens where its `--port`/`--host` flags say and olla-ts only supplies the handler.
   */
  serve(options: ServeOptions): Serving;
  memory(): MemoryFigures;
  /** Whether a TCP connection to host:port opens within `timeoutMs`. */
  canConnect(hostname: string, port: number, timeoutMs: number): Promise<boolean>;
}

// Minimal local shapes of the Bun APIs used here, so type checking needs no Bun types
// (the approach oak's http_server_bun.ts takes).
interface BunServer {
  fetch(request: Request): Response | Promise<Response>;
  readonly port: number;
  readonly hostname: string;
  stop(closeActiveConnections?: boolean): Promise<void>;
  requestIP(request: Request): { address: string } | null;
}
interface BunGlobal {
  readonly version: string;
  readonly argv: string[];
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    maxRequestBodySize: number;
    development: boolean;
    fetch(request: Request, server: BunServer): Response | Promise<Response>;
  }): BunServer;
}

const globals = globalThis as unknown as { Bun?: BunGlobal };

/**
 * The request with a URL that parses. From a request with an empty or invalid `Host`
 * header, Bun 1.4 builds URLs such as `/v1/models?x` (no scheme or host) or
 * `http://evil:99999/` that neither `new URL` nor Hono's path parsing read correctly;
 * such a request is rebuilt on a placeholder host (its `Host` header is untouched).
 * Well-formed requests pass as they are.
 */
export function withParsableUrl(request: Request): Request {
  const url = request.url;
  const scheme = url.indexOf("://");
  if (scheme !== -1 && url.charCodeAt(scheme + 3) !== 47 && URL.canParse(url)) return request;
  // With no Host at all Bun hands over just the path ("/v1/models").
  const pathStart = scheme === -1 ? url.indexOf("/") : url.indexOf("/", scheme + 3);
  const target = pathStart === -1 ? "/" : url.slice(pathStart).replace(/^\/+/, "/");
  try {
    return new Request(`http://unknown-host${target}`, {
      method: request.method,
      headers: request.headers,
      body: /^(GET|HEAD)$/i.test(request.method) ? undefined : request.body,
      signal: request.signal,
      duplex: "half",
    } as RequestInit);
  } catch {
    // A method fetch forbids (TRACE, CONNECT): keep the original; olla-ts reads request
    // URLs by position (request_record.ts's splitTarget), never by parsing them.
    return request;
  }
}

function createDenoRuntime(): Runtime {
  const encoder = new TextEncoder();
  const writeAll = (file: { writeSync(p: Uint8Array): number }, text: string) => {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
  };
  return {
    ...sharedFileAndProcessApis(),
    name: "deno",
    version: Deno.version.deno,
    args: () => [...Deno.args],
    env: (name) => Deno.env.get(name),
    stdoutIsTerminal: () => Deno.stdout.isTerminal(),
    writeStdout: (text) => writeAll(Deno.stdout, text),
    writeStderr: (text) => writeAll(Deno.stderr, text),
    exit: (code) => Deno.exit(code),
    onShutdownSignal(handler) {
      Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
      Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
    },
    serve({ hostname, port, fetch }) {
      const handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) =>
        fetch(withParsableUrl(request), { remoteAddr: info.remoteAddr.hostname });
      if (launchedByDenoServe()) {
        let listened: (server: RunningServer) => void = () => {};
        const listening = new Promise<RunningServer>((resolve) => listened = resolve);
        const entry = {
          fetch: handler,
          onListen: (addr: Deno.NetAddr) =>
            listened({
              hostname: addr.hostname,
              port: addr.port,
              ownsListener: false,
              shutdown: () => Promise.resolve(),
            }),
        };
        return { entry, listening };
      }
      const listening = new Promise<RunningServer>((resolve) => {
        const server = Deno.serve({
          hostname,
          port,
          onListen: (addr) =>
            resolve({
              hostname: addr.hostname,
              port: addr.port,
              ownsListener: true,
              shutdown: () => server.shutdown(),
            }),
        }, handler);
      });
      // `deno run` warns "did you mean to run deno serve?" when the main module's default
      // export has an own `fetch`; an inherited one keeps the export usable without it.
      const entry = Object.create({ fetch: handler }) as ServeEntry;
      return { entry, listening };
    },
  };
}

function createBunRuntime(bun: BunGlobal): Runtime {
  return {
    ...sharedFileAndProcessApis(),
    name: "bun",
    version: bun.version,
    args: () => bun.argv.slice(2),
    env: (name) => process.env[name],
    stdoutIsTerminal: () => Boolean(process.stdout.isTTY),
    writeStdout: (text) => void process.stdout.write(text),
    writeStderr: (text) => void process.stderr.write(text),
    exit: (code) => process.exit(code),
    onShutdownSignal(handler) {
      process.on("SIGINT", () => handler("SIGINT"));
      process.on("SIGTERM", () => handler("SIGTERM"));
    },
    serve({ hostname, port, fetch, maxRequestBodySize }) {
      const server = bun.serve({
        hostname,
        port,
        // Bun closes connections silent for 10 s by default, which would cut an SSE
        // stream while the engine is still prefilling a long prompt. olla-ts runs its
        // own idle timeout on streams (proxy.read_timeout), so the runtime's is off.
        idleTimeout: 0,
        maxRequestBodySize,
        development: false,
        fetch: (request, srv) =>
          fetch(withParsableUrl(request), { remoteAddr: srv.requestIP(request)?.address ?? "" }),
      });
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

function sharedFileAndProcessApis() {
  return {
    readTextFile: (path: string) => readFile(path, "utf8"),
    listDir: async (path: string) => (await readdir(path)).sort(),
    async isFile(path: string) {
      try {
        return (await stat(path)).isFile();
      } catch {
        return false;
      }
    },
    memory(): MemoryFigures {
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      return { rss, heapUsed, heapTotal, external };
    },
    canConnect,
  };
}

/** Whether a TCP connection to `hostname:port` opens within `timeoutMs` (node:net, on both runtimes). */
export function canConnect(hostname: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Whether Deno was started as `deno serve`. Deno has no API for this (denoland/deno#29447),
 * and `import.meta.main` is true in both modes, so the command line is read from
 * /proc/self/cmdline. Systems without /proc are taken to use `deno run` (the README says
 * so). `deno serve --parallel` workers share the process, so all of them see "serve".
 */
function launchedByDenoServe(): boolean {
  try {
    const argv = readFileSync("/proc/self/cmdline", "utf8").split("\0");
    return argv.slice(1).find((arg) => !arg.startsWith("-")) === "serve";
  } catch {
    return false;
  }
}

/** Returns the runtime this process runs on. */
export function detectRuntime(): Runtime {
  if (globals.Bun) return createBunRuntime(globals.Bun);
  if (typeof Deno !== "undefined") return createDenoRuntime();
  throw new Error("Cannot start olla-ts: it runs on Deno or Bun, and neither was detected");
}
