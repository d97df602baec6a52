/**
 * The Deno adapter: `Deno.*` for arguments, environment, standard streams, signals and
 * serving, under `deno run` and `deno serve` alike.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import {
  exitIfCannotListen,
  type RunningServer,
  type Runtime,
  type ServeEntry,
  sharedFileAndProcessApis,
  withParsableUrl,
} from "./runtime_api.ts";

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

/** How long to wait before listening again after running out of file descriptors. */
const RELISTEN_DELAY_MS = 250;

/** EMFILE or ENFILE: the process or the system has no file descriptor left. */
function isOutOfFileDescriptors(error: unknown): boolean {
  return /too many open files|os error 2[34]\b|EMFILE|ENFILE/i.test(String(error));
}

/** The runtime adapter for Deno. */
export function createDenoRuntime(): Runtime {
  const encoder = new TextEncoder();
  const writeAll = (file: { writeSync(p: Uint8Array): number }, text: string) => {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
  };
  return {
    ...sharedFileAndProcessApis(),
    name: "deno",
    slowHeaders: "Deno's HTTP server has no header read timeout (Deno 2.9), so a client " +
      "that never finishes its headers keeps its connection; put a reverse proxy with " +
      "one (nginx client_header_timeout) in front of an exposed olla-ts",
    cannotCloseIdle: "Deno's HTTP server has no idle timeout (Deno 2.9): idle keep-alive " +
      "connections stay open until the client closes them",
    // A client of its own that keeps no idle connection: every request on it opens one.
    freshConnection: { client: Deno.createHttpClient({ poolMaxIdlePerHost: 0 }) } as RequestInit,
    version: Deno.version.deno,
    args: () => [...Deno.args],
    env: (name) => Deno.env.get(name),
    stdoutIsTerminal: () => Deno.stdout.isTerminal(),
    writeStdout: (text) => writeAll(Deno.stdout, text),
    // Deno.stdout.write is an async op: a full pipe leaves it pending, not the event loop
    // (writeSync and node:fs.write block it; measured on Deno 2.9).
    async writeStdoutAsync(bytes) {
      let rest = bytes;
      while (rest.length > 0) rest = rest.subarray(await Deno.stdout.write(rest));
    },
    writeStderr: (text) => writeAll(Deno.stderr, text),
    exit: (code) => Deno.exit(code),
    onShutdownSignal(handler) {
      Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
      Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
    },
    onReloadSignal(handler) {
      Deno.addSignalListener("SIGHUP", handler);
    },
    serve({ hostname, port, fetch, onAcceptError }) {
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
        let current: Deno.HttpServer<Deno.NetAddr>;
        let stopping = false;
        const listen = (onPort: number, first: boolean) => {
          current = Deno.serve({
            hostname,
            port: onPort,
            onListen: (addr) => {
              if (!first) return;
              resolve({
                hostname: addr.hostname,
                port: addr.port,
                ownsListener: true,
                shutdown: () => {
                  stopping = true;
                  return current.shutdown();
                },
              });
            },
          }, handler);
          const boundPort = current.addr.port;
          // Out of file descriptors, Deno's accept loop ends with an uncaught rejection
          // that kills the process (Deno 2.9). Connections already open keep being
          // served; listening again shortly after refuses new ones only while at the limit.
          current.finished.catch((error) => {
            if (stopping || !isOutOfFileDescriptors(error)) throw error;
            onAcceptError?.(error);
            setTimeout(() => relisten(boundPort), RELISTEN_DELAY_MS);
          });
        };
        const relisten = (onPort: number) => {
          if (stopping) return;
          try {
            listen(onPort, false);
          } catch (error) {
            if (!isOutOfFileDescriptors(error)) throw error;
            onAcceptError?.(error);
            setTimeout(() => relisten(onPort), RELISTEN_DELAY_MS);
          }
        };
        try {
          listen(port, true);
        } catch (error) {
          exitIfCannotListen(error, hostname, port);
          throw error;
        }
      });
      // `deno run` warns "did you mean to run deno serve?" when the main module's default
      // export has an own `fetch`; an inherited one keeps the export usable without it.
      const entry = Object.create({ fetch: handler }) as ServeEntry;
      return { entry, listening };
    },
  };
}
