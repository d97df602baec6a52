/**
 * The access log: one line per finished request (`msg: "access"`) with what an operator
 * needs to follow it: who, what, where it went, how long, how many tokens, how it ended.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { RequestRecord } from "../proxy/request_record.ts";
import { NAME } from "../version.ts";

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
  logger.info("access", {
    service: NAME,
    request_id: record.id,
    client: record.clientIp,
    key: record.keyName,
    method: record.method,
    path: record.safePath,
    route: record.route,
    model: record.model === undefined
      ? undefined
      : model === "unknown"
      ? record.model.slice(0, 128)
      : model,
    endpoint: record.endpoint,
    status: record.status,
    bytes_in: record.bytesIn,
    bytes_out: record.bytesOut,
    duration_ms: round(durationMs),
    ttft_ms: round(ttftMs),
    overhead_ms: round(record.overheadMs),
    prompt_tokens: record.usage?.promptTokens,
    completion_tokens: record.usage?.completionTokens,
    tokens_estimated: record.usage?.estimated || undefined,
    finish_reason: record.usage?.finishReason,
    failovers: record.failovers.length,
    failover_reasons: record.failovers.length > 0
      ? record.failovers.map((failover) => `${failover.endpoint}:${failover.reason}`)
      : undefined,
    routing: record.routing ? `${record.routing.decision}:${record.routing.reason}` : undefined,
    sticky: record.sticky?.outcome,
    outcome: record.outcome,
    fault: record.fault,
    error: record.error?.message ?? record.upstreamFailure,
  });
}
