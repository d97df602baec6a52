/**
 * The access log: one line per finished request (`msg: "access"`) with what an operator
 * needs to follow it: who, what, where it went, how long, how many tokens, how it ended.
 * The keys are fixed and the values are read straight from the record into an array, so
 * a line costs a few string concatenations (no object is built or walked per request).
 *
 * @module
 */
import { clipped } from "../errors.ts";
import type { Logger, LogLevel } from "../log.ts";
import type { RequestRecord } from "../proxy/request_record.ts";
import { NAME } from "../version.ts";

/** The longest path and query an access line shows whole (real ones are far shorter). */
const MAX_LOGGED_PATH = 2048;

const KEYS = [
  "service",
  "request_id",
  "client",
  "key",
  "method",
  "path",
  "route",
  "model",
  "endpoint",
  "status",
  "bytes_in",
  "bytes_out",
  "duration_ms",
  "ttft_ms",
  "overhead_ms",
  "prompt_tokens",
  "completion_tokens",
  "tokens_estimated",
  "finish_reason",
  "failovers",
  "failover_reasons",
  "routing",
  "sticky",
  "outcome",
  "fault",
  "error",
] as const;

/**
 * The level of a request's access line, so that `logging.level: warn` keeps exactly the
 * requests worth a look: `error` for olla-ts's own faults; `warn` for upstream faults,
 * any 5xx, and answers that ended early or badly (an error event in the stream, from the
 * backend or from olla-ts; a timeout; a cut at shutdown); `info` otherwise (client errors included: they are the
 * client's business, and a scan would flood the log).
 */
export function accessLevel(record: RequestRecord): LogLevel {
  const fault = record.fault;
  if (fault === "proxy") return "error";
  if (fault === "upstream" || record.status >= 500) return "warn";
  const outcome = record.outcome;
  if (outcome !== undefined && outcome !== "complete" && outcome !== "client_cancelled") {
    return "warn";
  }
  // The backend's own error event inside a stream it otherwise ended properly.
  return record.usage?.errorEvent ? "warn" : "info";
}

function round(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 1000) / 1000;
}

/**
 * Writes the access-log line of a finished request. `model` is its bounded model label
 * (`unknown` for names no endpoint lists, whose raw value is then logged truncated).
 */
export function logAccess(
  logger: Logger,
  record: RequestRecord,
  model: string,
  durationMs: number,
  ttftMs: number | undefined,
): void {
  const usage = record.usage;
  const failovers = record.failovers;
  logger.logFixed(accessLevel(record), "access", KEYS, [
    NAME,
    record.id,
    record.clientIp,
    record.keyName,
    record.method,
    clipped(record.safePath, MAX_LOGGED_PATH),
    record.route,
    record.model === undefined
      ? undefined
      : model === "unknown"
      ? record.model.slice(0, 128)
      : model,
    record.endpoint,
    record.status,
    record.bytesIn,
    record.bytesOut,
    round(durationMs),
    round(ttftMs),
    round(record.overheadMs),
    usage?.promptTokens,
    usage?.completionTokens,
    usage?.estimated || undefined,
    usage?.finishReason,
    failovers.length,
    failovers.length > 0
      ? failovers.map((failover) => `${failover.endpoint}:${failover.reason}`)
      : undefined,
    record.routing ? `${record.routing.decision}:${record.routing.reason}` : undefined,
    record.sticky?.outcome,
    record.outcome,
    record.fault,
    record.error?.message ?? record.upstreamFailure,
  ]);
}
