/**
 * Settings Bun reads only when its process starts, and so olla-ts's relaunch on Bun.
 *
 * How many upstream requests the runtime's fetch may have in flight at once. Bun's fetch
 * queues everything beyond `BUN_CONFIG_MAX_HTTP_REQUESTS` (256 by default): with 1,000
 * concurrent streams to one endpoint, p50 became 6 s, and health probes queued behind
 * proxied traffic timed out, marking healthy backends unhealthy.
 *
 * How large request headers may be. Bun's server answers 431 above 16 KiB (measured on
 * Bun 1.4), well below `server.request_limits.max_header_size` (1 MiB by default, which
 * olla-ts enforces itself with its own JSON 431); Bun's `--max-http-header-size` raises
 * it. Deno's server refuses headers over 64 KiB with an empty 400 and has no setting.
 *
 * Bun reads both only when the process starts (setting `process.env` later has no
 * effect, measured on Bun 1.4), so olla-ts on Bun relaunches itself once, with
 * `BUN_CONFIG_MAX_HTTP_REQUESTS` and `BUN_OPTIONS=--max-http-header-size=...` (which the
 * single executable honours too), unless the environment already gives at least both.
 * Deno's fetch has no in-flight limit.
 *
 * The need: `proxy.max_upstream_connections`, or else the sum of every static endpoint's
 * `max_concurrent_requests` (an unlimited one counts {@linkcode UNLIMITED_SHARE}), plus
 * {@linkcode BACKGROUND_PER_ENDPOINT} for its probes, model discovery, engine metrics and
 * wake-ups, plus {@linkcode UNLIMITED_SHARE} when LMDeploy nodes may register at run time;
 * never below {@linkcode MIN_UPSTREAM_REQUESTS}, never above Bun's maximum. With room for
 * every admitted request and every probe, probes never wait behind proxied traffic.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";

/** The environment variable Bun's fetch reads its in-flight limit from. */
export const BUN_LIMIT_VARIABLE = "BUN_CONFIG_MAX_HTTP_REQUESTS";
/** Set in the relaunched process, so it never relaunches again. */
export const RELAUNCHED_VARIABLE = "OLLA_TS_RELAUNCHED";
/** What one endpoint without a concurrency limit (or all registered nodes) count for. */
export const UNLIMITED_SHARE = 1_024;
/** Requests of olla-ts's own per endpoint: probe, discovery, engine metrics, wake-up. */
export const BACKGROUND_PER_ENDPOINT = 4;
/** The least olla-ts asks for. */
export const MIN_UPSTREAM_REQUESTS = 1_024;
/** The most Bun accepts. */
export const BUN_MAX_UPSTREAM_REQUESTS = 65_336;
/** The environment variable Bun reads extra command-line options from. */
export const BUN_OPTIONS_VARIABLE = "BUN_OPTIONS";
/** Added to Bun's header limit: Bun counts the request line and line ends too. */
const HEADER_SLACK_BYTES = 8 * 1024;

/** Upstream requests olla-ts may need in flight at once under `config`. */
export function upstreamRequestsNeeded(config: Config): number {
  const configured = config.proxy.max_upstream_connections;
  if (configured > 0) return Math.min(configured, BUN_MAX_UPSTREAM_REQUESTS);
  let total = config.discovery.registration.enabled ? UNLIMITED_SHARE : 0;
  for (const endpoint of config.discovery.static.endpoints) {
    total += (endpoint.max_concurrent_requests || UNLIMITED_SHARE) + BACKGROUND_PER_ENDPOINT;
  }
  return Math.min(Math.max(total, MIN_UPSTREAM_REQUESTS), BUN_MAX_UPSTREAM_REQUESTS);
}

/**
 * The request-header limit to give Bun's server under `config`: twice `max_header_size`,
 * so headers somewhat over the limit get olla-ts's own JSON 431 naming the key (only
 * beyond twice does Bun answer its bare 431 first).
 */
export function bunHeaderLimit(config: Config): number {
  return 2 * config.server.request_limits.max_header_size + HEADER_SLACK_BYTES;
}

/**
 * The environment to relaunch with, or `undefined` when this process already has what it
 * needs (or is itself the relaunched one).
 */
export function relaunchEnvironment(
  config: Config,
  env: (name: string) => string | undefined,
): Record<string, string> | undefined {
  if (env(RELAUNCHED_VARIABLE)) return undefined;
  const needed = upstreamRequestsNeeded(config);
  const current = Number(env(BUN_LIMIT_VARIABLE) ?? 256);
  const headerLimit = bunHeaderLimit(config);
  const options = env(BUN_OPTIONS_VARIABLE) ?? "";
  const givenHeaderLimit = Number(/--max-http-header-size[= ](\d+)/.exec(options)?.[1] ?? 0);
  if (current >= needed && givenHeaderLimit >= headerLimit) return undefined;
  return {
    [BUN_LIMIT_VARIABLE]: String(Math.max(needed, Number.isFinite(current) ? current : 0)),
    [BUN_OPTIONS_VARIABLE]: `${options} --max-http-header-size=${headerLimit}`.trim(),
    [RELAUNCHED_VARIABLE]: "1",
  };
}
