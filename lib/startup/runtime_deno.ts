/**
 * The Deno adapter: `Deno.*` for arguments, environment, standard streams, signals and
 * serving, under `deno run` and `deno serve` alike.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import {
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
