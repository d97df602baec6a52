/**
 * Parsing and formatting of the two unit-bearing value kinds in Olla's configuration:
 * Go-style durations (`500ms`, `5s`, `1h30m`) and byte sizes (`52428800`, `50MB`).
 *
 * @module
 */

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "\u00b5s": 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION_PART_REGEXP = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/y;

/**
 * Parses a Go duration string into milliseconds.
 *
 * Accepts what Go's `time.ParseDuration` accepts (`300ms`, `1.5h`, `2h45m`, `0`), because
 * Olla's configuration is decoded by Go. A bare number other than 0 is refused: Go would
 * read it as nanoseconds, which is never what a config author meant.
 *
 * @throws {RangeError} when the text is not a duration; the message names the text.
 *
 * @example Usage
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * ```
 */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === "0") return 0;
  let rest = input;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "") throw new RangeError(`Cannot parse duration "${text}": it is empty`);
  let total = 0;
  DURATION_PART_REGEXP.lastIndex = 0;
  while (DURATION_PART_REGEXP.lastIndex < rest.length) {
    const start = DURATION_PART_REGEXP.lastIndex;
    const match = DURATION_PART_REGEXP.exec(rest);
    if (!match) {
      const hint = /^\d+(\.\d+)?$/.test(rest) ? ` (add a unit, for example "${rest}s")` : "";
      throw new RangeError(
        `Cannot parse duration "${text}": unexpected "${rest.slice(start)}"${hint}`,
      );
    }
    total += Number(match[1]) * DURATION_UNITS_MS[match[2]];
  }
  return sign * total;
}

/**
 * Formats milliseconds as a short Go-style duration (`1m30s`, `250ms`, `0s`).
 *
 * @example Usage
 * ```ts
 * formatDuration(90_000); // "1m30s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1_000) return `${+ms.toFixed(3)}ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${+(rest / 1_000).toFixed(3)}s`);
  return parts.join("");
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const SIZE_REGEXP = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parses a byte size: a number of bytes, or a number with a unit. `KB`, `MB` and `GB`
 * are binary (1024-based), matching the comments in Olla's shipped configuration
 * (`52428800 # 50MB`); `KiB`, `MiB` and `GiB` mean the same.
 *
 * @throws {RangeError} when the value is negative or not a size.
 *
 * @example Usage
 * ```ts
 * parseSize("50MB"); // 52_428_800
 * ```
 */
export function parseSize(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`Cannot parse size ${value}: it must be a non-negative number of bytes`);
    }
    return Math.floor(value);
  }
  const match = SIZE_REGEXP.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new RangeError(`Cannot parse size "${value}": use bytes or a unit such as "50MB"`);
  }
  return Math.floor(Number(match[1]) * unit);
}
