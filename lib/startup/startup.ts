/**
 * The steps `main.ts` composes: answering `--help`/`--version`/`--validate-config`,
 * loading the configuration (or exiting with every problem listed), building the
 * logger, building and serving the service, printing the startup report, and graceful
 * shutdown on SIGINT/SIGTERM.
 *
 * @module
 */
import { type CliOptions, HELP_TEXT, parseCli } from "./cli.ts";
import { sleep, systemClock } from "../clock.ts";
import { ConfigError, formatIssue } from "../config/config_error.ts";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { InflightTracker } from "../server/inflight.ts";
import { Logger } from "../log.ts";
import { loadProfiles, ProfileError } from "../profiles/loader.ts";
import type { ProfileSet } from "../profiles/profile.ts";
import type { RunningServer, Runtime, Serving } from "./runtime.ts";
import { createService, type Service } from "./service.ts";
import { configuredSecrets, createRedactor, redactUrl } from "../observability/redact.ts";
import { NAME, VERSION } from "../version.ts";

/** Parses the command line; prints help or version and exits when asked to. */
export function handleCommandLine(runtime: Runtime): CliOptions {
  let cli: CliOptions;
  try {
    cli = parseCli(runtime.args());
  } catch (error) {
    runtime.writeStderr(`${(error as Error).message}\n`);
    return runtime.exit(2);
  }
  if (cli.help) {
    runtime.writeStdout(HELP_TEXT);
    runtime.exit(0);
  }
  if (cli.version) {
    runtime.writeStdout(`${NAME} ${VERSION} (${runtime.name} ${runtime.version})\n`);
    runtime.exit(0);
  }
  return cli;
}

/**
 * Loads the configuration. On a problem, prints every issue and exits 1 before anything
 * listens; with `--validate-config`, prints the verdict and exits 0 or 1.
 */
export async function loadConfigOrExit(
  runtime: Runtime,
  cli: CliOptions,
): Promise<LoadedConfig & { profiles: ProfileSet }> {
  try {
    const loaded = await loadConfig({
      flagPath: cli.configPath,
      env: runtime.env,
      readTextFile: runtime.readTextFile,
      isFile: runtime.isFile,
      loadProfiles: (config) =>
        loadProfiles({
          dir: config.proxy.profiles_dir,
          include: config.proxy.profile_filter.include,
          exclude: config.proxy.profile_filter.exclude,
          listDir: runtime.listDir,
          readTextFile: runtime.readTextFile,
        }),
    });
    if (cli.validateConfig) {
      const lines = [
        `Configuration is valid: ${loaded.source ?? "built-in defaults"}`,
        `  ${loaded.config.discovery.static.endpoints.length} endpoint(s)`,
        `  profiles: ${loaded.profiles.all.map((profile) => profile.name).join(", ")}`,
        ...loaded.warnings.map((issue) => `  warning: ${formatIssue(issue)}`),
        ...loaded.unsupported.map((key) => `  not yet supported: ${key.path} (${key.reason})`),
      ];
      runtime.writeStdout(`${lines.join("\n")}\n`);
      runtime.exit(0);
    }
    return loaded;
  } catch (error) {
    const message = error instanceof ConfigError || error instanceof ProfileError
      ? error.message
      : `Cannot load configuration: ${error}`;
    runtime.writeStderr(`${message}\n`);
    return runtime.exit(1);
  }
}

/** The process logger: JSON lines on stdout, or text on a terminal / when configured. */
export function createLogger(runtime: Runtime, config: Config): Logger {
  const format = config.logging.format === "auto"
    ? runtime.stdoutIsTerminal() ? "text" : "json"
    : config.logging.format;
  return new Logger({
    level: config.logging.level,
    format,
    write: runtime.writeStdout,
    redact: createRedactor(configuredSecrets(config)),
  });
}

/** Logs the configuration source, warnings, ignored keys, the address and the endpoint table. */
/**
 * Builds the service for `config` and serves it on `server.host`/`server.port`. Call
 * `service.start()` once `serving.listening` resolves, so probes begin with the server up.
 */
export function serveService(
  runtime: Runtime,
  { config, profiles, logger }: { config: Config; profiles: ProfileSet; logger: Logger },
): { service: Service; serving: Serving } {
  const service = createService({
    config,
    profiles,
    logger,
    clock: systemClock,
    fetch: globalThis.fetch,
    canConnect: runtime.canConnect,
    runtime,
  });
  const serving = runtime.serve({
    hostname: config.server.host,
    port: config.server.port,
    fetch: service.fetch,
    // Above olla-ts's own limit, so an oversized body gets olla-ts's JSON 413.
    maxRequestBodySize: config.server.request_limits.max_body_size + 1024 ** 2,
  });
  return { service, serving };
}

export function logStartup(logger: Logger, loaded: LoadedConfig, server: RunningServer): void {
  const { config } = loaded;
  logger.info("configuration loaded", { file: loaded.source ?? "built-in defaults" });
  for (const issue of loaded.warnings) {
    logger.warn("configuration warning", { detail: formatIssue(issue) });
  }
  for (const key of loaded.unsupported) {
    logger.warn("configuration key not yet supported; it is ignored", {
      key: key.path,
      reason: key.reason,
    });
  }
  logger.info(`${NAME} ${VERSION} listening`, {
    address: `http://${
      server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname
    }:${server.port}`,
    mode: server.ownsListener ? "standalone" : "deno serve",
  });
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

/** What graceful shutdown stops, besides the server. */
export interface Stoppable {
  stop(): void | Promise<void>;
}

/**
 * On the first SIGINT/SIGTERM: refuse new requests, stop background work, wait for
 * in-flight requests (streams included) up to `server.shutdown_timeout`, exit 0.
 * A second signal exits at once with 128 + the signal number.
 */
export function exitOnSignal(
  runtime: Runtime,
  options: {
    logger: Logger;
    server: Promise<RunningServer>;
    inflight: InflightTracker;
    background: Stoppable;
    shutdownTimeoutMs: number;
  },
): void {
  let stopping = false;
  runtime.onShutdownSignal(async (signal) => {
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
    options.logger.info(finished ? "stopped" : "shutdown timeout reached; exiting", {
      in_flight: options.inflight.count,
    });
    runtime.exit(0);
  });
}
