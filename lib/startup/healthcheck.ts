/**
 * `olla-ts --healthcheck`: asks the olla-ts configured here whether it is alive
 * (`GET /internal/health` on `server.host:server.port`) and exits 0 or 1, so a container's
 * HEALTHCHECK needs no curl in the image. A wildcard listen address is reached on
 * loopback; `/internal/health` is never rate-limited by the API's buckets and open to
 * every client, so the check works whatever `server.internal` allows.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";

/** How long the check waits for an answer. */
export const HEALTHCHECK_TIMEOUT_MS = 3_000;

/** The URL that answers whether the configured olla-ts is alive. */
export function healthcheckUrl(server: Pick<Config["server"], "host" | "port">): string {
  const host = server.host === "0.0.0.0" || server.host === ""
    ? "127.0.0.1"
    : server.host === "::"
    ? "[::1]"
    : server.host.includes(":")
    ? `[${server.host}]`
    : server.host;
  return `http://${host}:${server.port}/internal/health`;
}

/** 0 when olla-ts answers 200 within the timeout, else 1 with the reason in `report`. */
export async function runHealthcheck(
  server: Pick<Config["server"], "host" | "port">,
  report: (line: string) => void,
  fetchFn: typeof fetch = fetch,
): Promise<number> {
  const url = healthcheckUrl(server);
  try {
    const response = await fetchFn(url, { signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) });
    await response.body?.cancel();
    if (response.ok) return 0;
    report(`olla-ts at ${url} answered ${response.status}`);
  } catch (error) {
    report(`olla-ts at ${url} did not answer: ${error instanceof Error ? error.message : error}`);
  }
  return 1;
}
