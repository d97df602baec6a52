/**
 * olla-ts entry point and composition root. Runs under `deno run -A main.ts`,
 * `deno serve -A main.ts`, `bun run main.ts` and as the single executable built by
 * `deno task build`, with the same code: load the configuration, build the service
 * (registry, health checks, discovery, proxy, app: lib/startup/service.ts), serve it,
 * start its background work once listening, reload the configuration on SIGHUP (and on
 * file changes with `server.watch_config`), and stop it on SIGINT/SIGTERM. The default
 * export is the `{ fetch }` object `deno serve` and Bun use.
 *
 * @module
 */
import { handleCommandLine } from "./lib/startup/cli.ts";
import { runHealthcheck } from "./lib/startup/healthcheck.ts";
import { loadConfigOrExit } from "./lib/startup/configuration.ts";
import { exitOnSignal, logStartup } from "./lib/startup/lifecycle.ts";
import { createLogging } from "./lib/startup/logging.ts";
import { detectRuntime } from "./lib/startup/runtime.ts";
import { createReloader, debounced } from "./lib/startup/reload.ts";
import { createService, serveOptions } from "./lib/startup/service.ts";
import { RELAUNCHED_VARIABLE, relaunchEnvironment } from "./lib/startup/bun_launch.ts";

const runtime = detectRuntime();
const cli = handleCommandLine(runtime);
const loaded = await loadConfigOrExit(runtime, cli);
const { config, profiles } = loaded;
if (cli.healthcheck) {
  runtime.exit(await runHealthcheck(config.server, (line) => runtime.writeStderr(`${line}\n`)));
}
// Bun's fetch reads its in-flight limit only at process start (bun_launch.ts).
const relaunchEnv = relaunchEnvironment(config, runtime.env);
if (runtime.relaunch && relaunchEnv) runtime.exit(await runtime.relaunch(relaunchEnv));
const { logger, writer: logWriter } = createLogging(runtime, config);

const stateFile = config.discovery.registration.state_file;
const service = createService({
  config,
  profiles,
  logger,
  runtime,
  logLinesDropped: () => logWriter.dropped,
  registrationStore: stateFile === "" ? undefined : {
    load: async () =>
      (await runtime.isFile(stateFile)) ? runtime.readTextFile(stateFile) : undefined,
    save: (text) => runtime.writeTextFileAtomic(stateFile, text),
  },
});
const reload = createReloader({ runtime, cli, service, logger });
service.onReload(reload);
runtime.onReloadSignal(() => void reload());
if (config.server.watch_config && loaded.source !== undefined) {
  runtime.watchFile(loaded.source, debounced(reload, 300));
}
const serving = runtime.serve(serveOptions(config, service));
serving.listening.then((server) => {
  logStartup(logger, loaded, server, runtime);
  service.start();
});
const shutdown = exitOnSignal(runtime, {
  logger,
  server: serving.listening,
  inflight: service.inflight,
  background: service,
  shutdownTimeoutMs: config.server.shutdown_timeout,
  endStreams: () => service.endStreams(),
  flushLogs: () => logWriter.close(),
  finalStats: config.engineering.show_nerdstats
    ? () => ({
      ...service.telemetry.totals,
      memory: runtime.memory(),
      log_lines_dropped: logWriter.dropped,
    })
    : undefined,
});
if (runtime.env(RELAUNCHED_VARIABLE)) {
  // Relaunched for Bun's fetch limit: never outlive the parent that supervises us.
  runtime.onOrphaned(() => void shutdown("SIGTERM"));
}

export default serving.entry;
