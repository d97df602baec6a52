/**
 * What olla-ts needs from the JavaScript runtime it runs on, and the parts Deno and Bun
 * implement the same way (files, TCP reachability and memory through their `node:`
 * modules; request URLs made parsable). The adapters are runtime_deno.ts and
 * runtime_bun.ts; runtime.ts picks one.
 *
 * @module
 */
import { watch } from "node:fs";
import { readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname } from "node:path";
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
  /**
   * How long a keep-alive connection may stay idle between requests
   * (`server.idle_timeout`, or `server.read_timeout` when that is 0). Applied where the
   * runtime allows it ({@linkcode Runtime.cannotCloseIdle} says where not).
   */
  idleTimeoutMs: number;
  /**
   * Called when the runtime's accept loop fails (Deno: out of file descriptors); the
   * server keeps the connections it has and resumes accepting shortly after.
   */
  onAcceptError?: (error: unknown) => void;
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
  /**
   * What the runtime's HTTP server does with a client slow to send its request headers,
   * which `server.read_header_timeout` cannot change on either runtime (measured: Bun 1.4
   * disconnects it after about 12 s whatever its options say; Deno 2.9 never does).
   */
  readonly slowHeaders: string;
  /**
   * Why `server.idle_timeout` cannot be applied on this runtime, where it cannot (Deno
   * 2.9's server has no idle timeout); `undefined` where it is applied.
   */
  readonly cannotCloseIdle: string | undefined;
  /**
   * `fetch` options that make a request open a new connection instead of reusing an idle
   * pooled one (and not pool it after): the retry after a connection reset, which may
   * otherwise take another connection the backend has already closed.
   */
  readonly freshConnection: RequestInit;
  /** Command-line arguments after the script (or executable) name. */
  args(): string[];
  env(name: string): string | undefined;
  readTextFile(path: string): Promise<string>;
  /** File names (not paths) in a directory, sorted. */
  listDir(path: string): Promise<string[]>;
  isFile(path: string): Promise<boolean>;
  /** Replaces a file's content atomically (a temporary file renamed over it). */
  writeTextFileAtomic(path: string, text: string): Promise<void>;
  /** Calls `onChange` when the file changes; returns the function that stops watching. */
  watchFile(path: string, onChange: () => void): () => void;
  stdoutIsTerminal(): boolean;
  /** Writes synchronously (command-line answers, before the logger exists). */
  writeStdout(text: string): void;
  /**
   * Writes without blocking the event loop, however slow the reader: the promise settles
   * when the bytes are written. The log writer's output.
   */
  writeStdoutAsync(bytes: Uint8Array): Promise<void>;
  writeStderr(text: string): void;
  exit(code: number): never;
  /** Calls `handler` for every SIGINT and SIGTERM. */
  onShutdownSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): void;
  /** Calls `handler` for every SIGHUP (reload the configuration). */
  onReloadSignal(handler: () => void): void;
  /**
   * Serves `options.fetch` the way the launch mode needs: `deno run`, `bun run` and the
   * compiled executable listen on `options.hostname:port`; under `deno serve` Deno
   * listens where its `--port`/`--host` flags say and olla-ts only supplies the handler.
   */
  serve(options: ServeOptions): Serving;
  memory(): MemoryFigures;
  /** Whether a TCP connection to host:port opens within `timeoutMs`. */
  canConnect(hostname: string, port: number, timeoutMs: number): Promise<boolean>;
  /**
   * Bun only (see bun_launch.ts): runs this same program again as a child with `env`
   * added, forwarding SIGINT, SIGTERM and SIGHUP to it; resolves to the exit code to end
   * with once the child ends.
   */
  relaunch?(env: Record<string, string>): Promise<number>;
  /** Calls `handler` once if the process that started this one goes away. */
  onOrphaned(handler: () => void): void;
}

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

/**
 * Why the server cannot listen, in words (Deno's error names and Bun's codes both), or
 * `undefined` for an error that is not about the address.
 */
export function listenFailure(error: unknown): string | undefined {
  const text = `${(error as { code?: string })?.code ?? ""} ${
    (error as { name?: string })?.name ?? ""
  } ${String(error)}`;
  if (/EADDRINUSE|AddrInUse|in use/i.test(text)) return "address already in use";
  if (/EACCES|PermissionDenied|permission denied/i.test(text)) return "permission denied";
  if (
    /EADDRNOTAVAIL|AddrNotAvailable|not available|ENOTFOUND|EAI_|getaddrinfo|lookup address|EINVAL/i
      .test(text)
  ) {
    return "no such address on this host";
  }
  return undefined;
}

/**
 * Ends the process when the server cannot listen: one line on stderr, exit 1 (no stack
 * trace: the address and the reason are all an operator needs). Other errors propagate.
 */
export function exitIfCannotListen(error: unknown, hostname: string, port: number): void {
  const reason = listenFailure(error);
  if (reason === undefined) return;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  process.stderr.write(`Cannot listen on ${host}:${port}: ${reason}\n`);
  process.exit(1);
}

/** The file, memory and TCP parts of a runtime, the same on Deno and Bun. */
export function sharedFileAndProcessApis() {
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
    async writeTextFileAtomic(path: string, text: string) {
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, text, { mode: 0o600 });
      await rename(temporary, path);
    },
    watchFile(path: string, onChange: () => void) {
      // The directory is watched: editors replace a file (rename) rather than write it.
      const directory = dirname(path);
      const name = basename(path);
      const watcher = watch(directory, (_event, changed) => {
        if (changed === null || String(changed) === name) onChange();
      });
      return () => watcher.close();
    },
    memory(): MemoryFigures {
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      return { rss, heapUsed, heapTotal, external };
    },
    canConnect,
    onOrphaned(handler: () => void) {
      // No parent-death signal from JavaScript: a changed parent pid means it is gone.
      const parent = process.ppid;
      const timer = setInterval(() => {
        if (process.ppid === parent) return;
        clearInterval(timer);
        handler();
      }, 1_000);
      (timer as { unref?: () => void }).unref?.();
    },
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

/** This machine's host name (node:os, on both runtimes): the default `cluster.instance_id`. */
export function hostName(): string {
  return hostname();
}
