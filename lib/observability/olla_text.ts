/**
 * The human-readable strings Olla's status answers carry beside their numbers
 * (`"1.20 MB"`, `"250ms"`, `"3h 12m"`, `"2m ago"`, `"99.5%"`), written the way Olla
 * writes them so dashboards and scripts built for Olla read olla-ts's answers unchanged.
 *
 * @module
 */

const BYTE_UNITS = ["KB", "MB", "GB", "TB", "PB"];

/** `"512 B"`, `"4.37 GB"`: 1024-based, two decimals. */
export function bytesText(bytes: number): string {
  if (bytes < 1024) return `${Math.max(0, Math.floor(bytes))} B`;
  let unit = 0;
  let divisor = 1024;
  while (bytes / divisor >= 1024 && unit < BYTE_UNITS.length - 1) {
    divisor *= 1024;
    unit++;
  }
  return `${(bytes / divisor).toFixed(2)} ${BYTE_UNITS[unit]}`;
}

/** `"0ms"`, `"7ms"`, `"250ms"`, `"1.5s"`. */
export function latencyText(ms: number): string {
  const whole = Math.trunc(ms);
  if (whole <= 0) return "0ms";
  return whole >= 1000 ? `${(whole / 1000).toFixed(1)}s` : `${whole}ms`;
}

/** `"0%"`, `"100%"`, else one decimal (`"99.5%"`). */
export function percentText(value: number): string {
  if (value === 0) return "0%";
  if (value === 100) return "100%";
  return `${value.toFixed(1)}%`;
}

/** Uptime: `"45s"`, `"12m"`, `"3h 12m"`, `"2d 4h"`. */
export function uptimeText(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor(seconds / 60) % 60;
  if (hours < 24) return `${hours}h ${minutes}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A span as Olla's relative times spell it: `"5s"`, `"12m"`, `"3h"`, `"2d"`. */
function spanText(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${Math.max(0, Math.floor(seconds))}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** `"2m ago"`, or `"never"` for a time that has not happened. */
export function agoText(at: number | undefined, now: number): string {
  return at === undefined ? "never" : `${spanText(now - at)} ago`;
}

/** `"in 30s"`, `"now"` when due, `"unknown"` when nothing is scheduled. */
export function untilText(at: number | undefined, now: number): string {
  if (at === undefined) return "unknown";
  return at <= now ? "now" : `in ${spanText(at - now)}`;
}

/** An RFC 3339 time, or `undefined` (the key is then left out, as Olla omits it). */
export function isoOrUndefined(at: number | undefined): string | undefined {
  return at === undefined ? undefined : new Date(at).toISOString();
}
