/**
 * olla-ts entry point. Runs under `deno run -A main.ts`, `deno serve -A main.ts`,
 * `bun run main.ts` and as the single executable built by `deno task build`, with the
 * same code: it loads the configuration, builds the service, serves it and stops it on
 * SIGINT/SIGTERM. The default export is the `{ fetch }` object `deno serve` and Bun use.
 *
 * @module
 */
import { createApp } from "./lib/app.ts";
import { systemClock } from "./lib/clock.ts";
import { InflightTracker } from "./lib/inflight.ts";
import { detectRuntime } from "./lib/runtime.ts";
import {
  createLogger,
  exitOnSignal,
  handleCommandLine,
  loadConfigOrExit,
  logStartup,
} from "./lib/startup.ts";

const runtime = detectRuntime();
const cli = handleCommandLine(runtime);
const loaded = await loadConfigOrExit(runtime, cli, ["lmdeploy"]);
const { config } = loaded;
const logger = createLogger(runtime, config);
const inflight = new InflightTracker();

const app = createApp({ config, logger, inflight, clock: systemClock });
const serving = runtime.serve({
  hostname: config.server.host,
  port: config.server.port,
  fetch: app.fetch,
  maxRequestBodySize: config.server.request_limits.max_body_size + 1024 ** 2,
});
exitOnSignal(runtime, {
  logger,
  server: serving.listening,
  inflight,
  background: { stop: () => {} },
  shutdownTimeoutMs: config.server.shutdown_timeout,
});
serving.listening.then((server) => logStartup(logger, loaded, server));

export default serving.entry;
