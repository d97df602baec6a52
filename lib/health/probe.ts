/**
 * One health probe of one endpoint: GET its health path (and, for engines with a sleep
 * mode, its sleep path) with the endpoint's credentials, within `check_timeout`, and
 * classify the answers. Classification is pure ({@linkcode classifyHealth}); the probe
 * itself only does the requests.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { HealthFormat } from "../profiles/profile.ts";
import type { EndpointView, ProbeResult } from "../registry/endpoint.ts";
import type { EndpointStatus } from "../registry/endpoint_state.ts";
import { endpointUrl } from "../upstream/endpoint_url.ts";
import { describeFetchError, isConnectionError } from "../upstream/fetch_errors.ts";
import { parseRetryAfter } from "../upstream/retry_after.ts";
import { boundedText } from "../upstream/bounded_text.ts";
import { fetchWithin } from "../upstream/timed_fetch.ts";

/** How much of a health answer is read. */
const HEALTH_ANSWER_BYTES = 64 * 1024;

/** The health answer as far as classification needs it. */
export interface HealthAnswer {
  status: number;
  body: string;
  retryAfter: string | null;
  /** Where a 3xx pointed (it is not followed). */
  location?: string;
}

/**
 * Classifies a health answer. LMDeploy answers an empty 200 up to v0.13 and
 * `{"status","message"}` from v0.14, with `sleeping` on 200 and `initializing` or
 * `unhealthy` on 503. llama.cpp answers 503 while its model loads.
 */
export function classifyHealth(
  format: HealthFormat,
  answer: HealthAnswer,
): { status: EndpointStatus; error?: string; retryAfterMs?: number } {
  if (answer.status === 401 || answer.status === 403) {
    return {
      status: "config_error",
      error: `health check answered ${answer.status}: check the endpoint's auth`,
    };
  }
  if (answer.status >= 300 && answer.status < 400) {
    return {
      status: "unhealthy",
      error: `health check was redirected (${answer.status}${
        answer.location ? ` to ${answer.location}` : ""
      }); olla-ts does not follow redirects: point the endpoint's url at the server itself`,
    };
  }
  if (answer.status === 429) {
    return {
      status: "rate_limited",
      error: "health check answered 429",
      retryAfterMs: parseRetryAfter(answer.retryAfter) ?? 30_000,
    };
  }
  const json = parseJsonObject(answer.body);
  if (format === "lmdeploy" && json && typeof json.status === "string") {
    const message = typeof json.message === "string" ? `: ${json.message}` : "";
    if (json.status === "healthy" && answer.status < 300) return { status: "healthy" };
    if (json.status === "sleeping") return { status: "sleeping" };
    return { status: "unhealthy", error: `LMDeploy reports ${json.status}${message}` };
  }
  if (format === "llamacpp" && answer.status === 503) {
    const error = json?.error as { message?: unknown } | undefined;
    if (typeof error?.message === "string" && /loading/i.test(error.message)) {
      return { status: "loading", error: `llama.cpp: ${error.message}` };
    }
  }
  if (answer.status >= 200 && answer.status < 300) return { status: "healthy" };
  return { status: "unhealthy", error: `health check answered ${answer.status}` };
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Options for {@linkcode probeEndpoint}. */
export interface ProbeOptions {
  fetch: typeof fetch;
  clock: Clock;
}

/**
 * Probes an endpoint. A connection failure is `offline`, a timeout `unhealthy`; a
 * healthy answer from a slow endpoint (over half of `check_timeout`) is `busy`. An
 * LMDeploy endpoint that says it is healthy is also asked `/is_sleeping`, because its
 * `/health` stays 200 while the engine sleeps.
 */
export async function probeEndpoint(
  endpoint: EndpointView,
  options: ProbeOptions,
): Promise<ProbeResult> {
  const { clock } = options;
  const timeoutMs = endpoint.config.check_timeout;
  const started = clock.now();
  const healthUrl = endpointUrl(
    endpoint,
    endpoint.config.health_check_url ?? endpoint.profile.health.path,
  );
  let answer: HealthAnswer;
  try {
    answer = await timedGet(healthUrl, endpoint, options, timeoutMs);
  } catch (error) {
    return failedProbe(error, clock.now() - started, timeoutMs);
  }
  const latencyMs = clock.now() - started;
  const verdict = classifyHealth(endpoint.profile.health.format, answer);
  if (verdict.status === "healthy" && endpoint.profile.sleepProbePath) {
    const remaining = Math.max(1, timeoutMs - latencyMs);
    const sleep = await probeSleep(
      endpointUrl(endpoint, endpoint.profile.sleepProbePath),
      endpoint,
      options,
      remaining,
    );
    if (sleep) return { ...sleep, latencyMs: clock.now() - started };
  }
  if (verdict.status === "healthy" && latencyMs > timeoutMs / 2) {
    return { status: "busy", latencyMs, error: `health check took ${Math.round(latencyMs)}ms` };
  }
  return { ...verdict, latencyMs };
}

/** Asks `/is_sleeping`; returns a result only when it changes the verdict. */
async function probeSleep(
  url: string,
  endpoint: EndpointView,
  options: ProbeOptions,
  timeoutMs: number,
): Promise<Omit<ProbeResult, "latencyMs"> | undefined> {
  let answer: HealthAnswer;
  try {
    answer = await timedGet(url, endpoint, options, timeoutMs);
  } catch (error) {
    return isConnectionError(error)
      ? { status: "offline", error: describeFetchError(error) }
      : undefined;
  }
  if (answer.status === 401 || answer.status === 403) {
    return {
      status: "config_error",
      error: `/is_sleeping answered ${answer.status}: check the endpoint's auth`,
    };
  }
  // LMDeploy before v0.11 has no /is_sleeping (404) and no sleep mode to detect.
  if (answer.status !== 200) return undefined;
  return parseJsonObject(answer.body)?.is_sleeping === true ? { status: "sleeping" } : undefined;
}

class ProbeTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`health check timed out after ${timeoutMs}ms`);
    this.name = "ProbeTimeout";
  }
}

/**
 * A GET within `timeoutMs`. (A pooled connection the backend closed is no outage: the
 * `fetch` olla-ts's own requests use retries a reset once on a new one, reset_retry.ts.)
 */
function timedGet(
  url: string,
  endpoint: EndpointView,
  { fetch, clock }: ProbeOptions,
  timeoutMs: number,
): Promise<HealthAnswer> {
  return fetchWithin(
    { fetch, clock, timeoutMs, timeoutError: () => new ProbeTimeout(timeoutMs) },
    url,
    {
      headers: [...endpoint.outboundHeaders, ["user-agent", "olla-ts-health"]] as [
        string,
        string,
      ][],
    },
    async (response) => ({
      status: response.status,
      location: response.headers.get("location") ?? undefined,
      // Only a health answer's start is read: its status code and a short JSON decide.
      body: await boundedText(response, "the health answer", {
        maxBytes: HEALTH_ANSWER_BYTES,
        truncate: true,
      }),
      retryAfter: response.headers.get("retry-after"),
    }),
  );
}

function failedProbe(error: unknown, latencyMs: number, timeoutMs: number): ProbeResult {
  if (error instanceof ProbeTimeout) {
    return { status: "unhealthy", latencyMs, error: error.message };
  }
  if (isConnectionError(error)) {
    return { status: "offline", latencyMs, error: describeFetchError(error) };
  }
  return {
    status: "unhealthy",
    latencyMs: Math.min(latencyMs, timeoutMs),
    error: `health check failed: ${describeFetchError(error)}`,
  };
}
