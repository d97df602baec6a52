/**
 * A structured logger: one JSON object per line by default, or a readable text line for
 * terminals. Every line has `time`, `level` and `msg`, then the event's fields.
 *
 * Lines are handed to `write` finished (the process's buffered writer, log_writer.ts).
 * Hot lines (the access log) use {@linkcode Logger.logFixed}: a fixed list of keys and a
 * value per key, joined from pieces (each key's prefix built once per list) without
 * building or walking an object. The timestamp string is built once per millisecond.
 *
 * As a last line of defence, every line passes through a redactor on its way out
 * (log_writer.ts: configured secrets replaced by `[REDACTED]`, URLs stripped of
 * credentials and secret query values), so a secret that reaches a log field by mistake
 * still never reaches the output.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };
const TEXT_LEVEL: Readonly<Record<LogLevel, string>> = {
  debug: "DEBUG",
  info: "INFO ",
  warn: "WARN ",
  error: "ERROR",
};

/** Field values a log line may carry. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Options for {@linkcode Logger}. */
export interface LoggerOptions {
  /** @default {"info"} */
  level?: LogLevel;
  /** @default {"json"} */
  format?: "json" | "text";
  /** Receives each finished line, newline included. */
  write: (line: string) => void;
  /** Milliseconds since the epoch. @default {Date.now} */
  now?: () => number;
}

/** Printable ASCII without `"` or `\`: such a string is its own JSON body, no escaping. */
const JSON_SAFE_REGEXP = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A value's JSON text, for every value but a plain string (`#emit` puts those between
 * quotes as they are: most values are, and the check costs half of JSON.stringify).
 */
function jsonValue(value: unknown): string {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  return JSON.stringify(value instanceof Error ? value.message : value) ?? "null";
}

const NEEDS_QUOTES_REGEXP = /[\s"=]/;
const IDENTIFIER_REGEXP = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What precedes a field's value: `,"key":` in JSON, ` key=` in text. */
function fieldPrefix(json: boolean, key: string): string {
  const name = IDENTIFIER_REGEXP.test(key) ? key : JSON.stringify(key).slice(1, -1);
  return json ? `,"${name}":` : ` ${name}=`;
}

/** The prefixes of a fixed key list (the access log's), built once per list and format. */
const FIXED_PREFIXES = new WeakMap<readonly string[], { json?: string[]; text?: string[] }>();

function fixedPrefixes(json: boolean, keys: readonly string[]): readonly string[] {
  let cached = FIXED_PREFIXES.get(keys);
  if (cached === undefined) FIXED_PREFIXES.set(keys, cached = {});
  const format = json ? "json" : "text";
  return cached[format] ??= keys.map((key) => fieldPrefix(json, key));
}

function textValue(value: unknown): string {
  const text = typeof value === "string"
    ? value
    : JSON.stringify(value instanceof Error ? value.message : value);
  return NEEDS_QUOTES_REGEXP.test(text) ? JSON.stringify(text) : text;
}

/** Structured logger; create children to add fields to every line. */
export class Logger {
  /** Shared with children, so a reload's new level reaches every logger at once. */
  readonly #level: { value: number };
  readonly #json: boolean;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #base: LogFields;
  #stampMs = Number.NaN;
  #stamp = "";

  constructor(options: LoggerOptions, base: LogFields = {}, level?: { value: number }) {
    this.#level = level ?? { value: LEVEL_ORDER[options.level ?? "info"] };
    this.#json = (options.format ?? "json") === "json";
    this.#write = options.write;
    this.#now = options.now ?? Date.now;
    this.#base = base;
    this.options = options;
  }

  /** The options this logger was built with, for children. */
  readonly options: LoggerOptions;

  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger {
    return new Logger(this.options, { ...this.#base, ...fields }, this.#level);
  }

  /** Changes the level of this logger and every logger sharing it (a reload). */
  setLevel(level: LogLevel): void {
    this.#level.value = LEVEL_ORDER[level];
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= this.#level.value;
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const all = { ...this.#base, ...fields };
    const keys = Object.keys(all);
    this.#emit(
      level,
      msg,
      keys.map((key) => fieldPrefix(this.#json, key)),
      keys.map((key) => all[key]),
    );
  }

  /**
   * Logs one line whose field names are fixed: `values[i]` belongs to `keys[i]`, and an
   * `undefined` value leaves its key out. Keys must be plain identifiers, and `keys`
   * the same array on every call (what precedes each value is built once per array).
   */
  logFixed(
    level: LogLevel,
    msg: string,
    keys: readonly string[],
    values: readonly unknown[],
  ): void {
    if (!this.enabled(level)) return;
    const prefixes = fixedPrefixes(this.#json, keys);
    const baseKeys = Object.keys(this.#base);
    if (baseKeys.length === 0) return this.#emit(level, msg, prefixes, values);
    this.#emit(
      level,
      msg,
      [...baseKeys.map((key) => fieldPrefix(this.#json, key)), ...prefixes],
      [...baseKeys.map((key) => this.#base[key]), ...values],
    );
  }

  #timestamp(): string {
    const now = this.#now();
    if (now !== this.#stampMs) {
      this.#stampMs = now;
      this.#stamp = new Date(now).toISOString();
    }
    return this.#stamp;
  }

  /** `prefixes[i]` is what precedes `values[i]` in this logger's format (`fieldPrefix`). */
  #emit(
    level: LogLevel,
    msg: string,
    prefixes: readonly string[],
    values: readonly unknown[],
  ): void {
    const time = this.#timestamp();
    // The pieces are joined once, into a flat string, and a plain string value goes in
    // between its quotes as it is. Concatenating instead builds a rope (JavaScriptCore)
    // or cons string (V8) of some fifty nodes per line, which the writer's batch `join`
    // flattens later, when the nodes are no longer in cache. Timed inside a loaded server
    // on Bun, an access line cost 6-8 us built with `+` or templates, 4-5 us joined
    // (bench/README.md); every allocation saved here is young-generation work saved.
    const json = this.#json;
    // Reused unless a line is being built already (a value's toJSON that logs).
    const parts = PARTS.length === 0 ? PARTS : [];
    parts.push(
      json
        ? `{"time":"${time}","level":"${level}","msg":${JSON.stringify(msg)}`
        : `${time} ${TEXT_LEVEL[level]} ${msg}`,
    );
    for (let i = 0; i < prefixes.length; i++) {
      const value = values[i];
      if (value === undefined) continue;
      if (!json) parts.push(prefixes[i], textValue(value));
      else if (typeof value === "string" && JSON_SAFE_REGEXP.test(value)) {
        parts.push(prefixes[i], '"', value, '"');
      } else parts.push(prefixes[i], jsonValue(value));
    }
    parts.push(json ? "}\n" : "\n");
    const line = parts.join("");
    parts.length = 0;
    this.#write(line);
  }
}

/** The pieces of the line being built; a line is built synchronously, start to end. */
const PARTS: string[] = [];

/** A logger that drops everything; for tests and tools. */
export const silentLogger: Logger = new Logger({ write: () => {}, level: "error" });
