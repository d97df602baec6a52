/**
 * olla-ts entry point. Runs under `deno run -A main.ts`, `deno serve -A main.ts`,
 * `bun run main.ts` and as the single executable built by `deno task build`, with the
 * same code: it loads the configuration, builds the service, serves it and stops it on
 * SIGINT/SIGTERM. The default export is the `{ fetch }` object `deno serve` and Bun use.
 *
 * @module
 */
import { detectRuntime } from "./lib/startup/runtime.ts";
import {
  createLogger,
  exitOnSignal,
  handleCommandLine,
  loadConfigOrExit,
  logStartup,
  serveService,
} from "./lib/startup/startup.ts";

const runtime = detectRuntime();
const cli = handleCommandLine(runtime);
const loaded = await loadConfigOrExit(runtime, cli);
const { config, profiles } = loaded;
const logger = createLogger(runtime, config);

const { service, serving } = serveService(runtime, { config, profiles, logger });
serving.listening.then((server) => {
  logStartup(logger, loaded, server);
  service.start();
});
exitOnSignal(runtime, {
  logger,
  server: serving.listening,
  inflight: service.inflight,
  background: service,
  shutdownTimeoutMs: config.server.shutdown_timeout,
});

export default serving.entry;
