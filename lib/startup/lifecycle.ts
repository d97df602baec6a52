/**
 * The two ends of a process's life: the startup report (configuration source, warnings,
 * ignored keys, the address, the endpoint table) and graceful shutdown on SIGINT/SIGTERM.
 *
 * @module
 */
import { configurationWarnings, notActedOn } from "./configuration.ts";
import type { RunningServer, Runtime } from "./runtime_api.ts";
import { sleep, systemClock } from "../clock.ts";
import { CONFIG_SEARCH_PATHS } from "../config/load.ts";
import type { LoadedConfig } from "../config/loaded.ts";
import type { LogFields, Logger } from "../log.ts";
import { redactUrl } from "../observability/redact.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import type { InflightTracker } from "../server/inflight.ts";
import { NAME, VERSION } from "../version.ts";

/** Logs the configuration source, warnings, ignored keys, the address and the endpoint table. */
export function logStartup(
  logger: Logger,
  loaded: LoadedConfig & { profiles: ProfileSet },
  server: RunningServer,
  runtime: Pick<Runtime, "slowHeaders" | "cannotCloseIdle">,
): void {
  const { config } = loaded;
  logger.info("configuration loaded", {
    file: loaded.source ?? "built-in defaults",
    searched: loaded.source === undefined ? CONFIG_SEARCH_PATHS.join(", ") : undefined,
  });
  for (const warning of configurationWarnings(loaded)) {
    logger.warn("configuration warning", { detail: warning });
  }
  // One line for every key olla-ts accepts without acting on it (Olla's stock file has
  // several), with each key's reason.
  const ignored = notActedOn(loaded, runtime);
  if (ignored.length > 0) {
    logger.warn("configuration keys accepted but not acted on", {
      keys: ignored.map((key) => key.path).join(", "),
      reasons: Object.fromEntries(ignored.map((key) => [key.path, key.reason])),
    });
  }
  logger.info(`${NAME} ${VERSION} listening`, {
    address: `http://${
      server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname
    }:${server.port}`,
    mode: server.ownsListener ? "standalone" : "deno serve",
  });
  const configured = config.server;
  if (
    !server.ownsListener &&
    (configured.port !== server.port || !sameHost(configured.host, server.hostname))
  ) {
    logger.warn("server.host and server.port are not used under deno serve", {
      configured: `${configured.host}:${configured.port}`,
      listening: `${server.hostname}:${server.port}`,
      hint: "deno serve listens where its --host and --port flags say (default 0.0.0.0:8000)",
    });
  }
  for (const endpoint of config.discovery.static.endpoints) {
    logger.info("endpoint", {
      name: endpoint.name,
      type: endpoint.type,
      url: redactUrl(endpoint.url),
      priority: endpoint.priority,
      weight: endpoint.weight,
    });
  }
}

/** Whether a configured host names the address bound (`localhost` is either loopback). */
function sameHost(configured: string, bound: string): boolean {
  if (configured === bound) return true;
  return configured === "localhost" && (bound === "127.0.0.1" || bound === "::1");
}

/** What graceful shutdown stops, besides the server. */
export interface Stoppable {
  stop(): void | Promise<void>;
}

/** Longest wait for streams ended at shutdown to write their error events. */
const STREAM_END_GRACE_MS = 1_000;

/**
 * On the first SIGINT/SIGTERM: refuse new requests, stop background work, wait for
 * in-flight requests (streams included) up to `server.shutdown_timeout`, end the streams
 * still open with an error event, exit 0.
 * A second signal exits at once with 128 + the signal number. Returns the same shutdown,
 * for other reasons to stop (the relaunching parent gone).
 */
export function exitOnSignal(
  runtime: Runtime,
  options: {
    logger: Logger;
    server: Promise<RunningServer>;
    inflight: InflightTracker;
    background: Stoppable;
    shutdownTimeoutMs: number;
    /**
     * Ends the answers still streaming when the timeout runs out (each SSE answer with an
     * error event); returns how many there were.
     */
    endStreams: () => number;
    /** Writes out buffered log lines; awaited (for at most a second) before exiting. */
    flushLogs: () => Promise<void>;
    /** With `engineering.show_nerdstats`: runtime statistics logged before exiting. */
    finalStats?: () => LogFields;
  },
): (signal: "SIGINT" | "SIGTERM") => Promise<void> {
  let stopping = false;
  const shutdown = async (signal: "SIGINT" | "SIGTERM") => {
    if (stopping) {
      options.logger.warn("second signal: exiting now", { signal });
      runtime.exit(signal === "SIGINT" ? 130 : 143);
    }
    stopping = true;
    options.logger.info("shutting down", {
      signal,
      in_flight: options.inflight.count,
      timeout_ms: options.shutdownTimeoutMs,
    });
    options.inflight.drain();
    await options.background.stop();
    const server = await options.server;
    const drained = Promise.all([server.shutdown(), options.inflight.whenIdle()]).then(() => true);
    const finished = await Promise.race([
      drained,
      sleep(systemClock, options.shutdownTimeoutMs).then(() => false),
    ]);
    if (!finished && options.endStreams() > 0) {
      // The error events reach the sockets before the process ends: the server's shutdown
      // resolves once the ended streams' connections have closed, their tails written.
      await Promise.race([drained, sleep(systemClock, STREAM_END_GRACE_MS)]);
    }
    options.logger.info(finished ? "stopped" : "shutdown timeout reached; exiting", {
      in_flight: options.inflight.count,
    });
    if (options.finalStats) options.logger.info("runtime statistics", options.finalStats());
    // Nothing logged before exit is lost, unless the output itself is stuck.
    await Promise.race([options.flushLogs(), sleep(systemClock, 1_000)]);
    runtime.exit(0);
  };
  runtime.onShutdownSignal(shutdown);
  return shutdown;
}
