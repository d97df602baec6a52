/**
 * Olla's verdicts on the whole proxy, shared by `/internal/status` and the
 * `olla_system_status` / `olla_security_status` metrics: pure functions of counts.
 *
 * @module
 */
import type { RequestTotals, SecurityCounters } from "./traffic_stats.ts";

/** How the proxy as a whole is doing. */
export type SystemStatus = "healthy" | "degraded" | "critical";

/**
 * Olla's rule: nothing configured is `critical`; otherwise the share of healthy endpoints
 * (below 0.5 critical, below 0.8 degraded) and, once there is traffic, the proxy's
 * success rate (below 90% critical, below 95% degraded), whichever is worse.
 */
export function systemStatus(healthy: number, total: number, proxied: RequestTotals): SystemStatus {
  if (total === 0) return "critical";
  const ratio = healthy / total;
  const success = proxied.requests === 0
    ? 100
    : ((proxied.requests - proxied.failures) / proxied.requests) * 100;
  if (ratio < 0.5 || success < 90) return "critical";
  if (ratio < 0.8 || success < 95) return "degraded";
  return "healthy";
}

/** `elevated` past 100 violations or 10 rate-limited clients, else `normal`. */
export function securityStatus(security: SecurityCounters): "normal" | "elevated" {
  return security.rateLimits + security.sizeLimits > 100 || security.blockedClients > 10
    ? "elevated"
    : "normal";
}

/** `olla_system_status`'s number for a status: 2 healthy, 1 degraded, 0 critical. */
export const SYSTEM_STATUS_VALUE: Readonly<Record<SystemStatus, number>> = {
  healthy: 2,
  degraded: 1,
  critical: 0,
};
