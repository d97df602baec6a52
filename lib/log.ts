/**
 * A structured logger: one JSON object per line by default, or a readable text line for
 * terminals. Every line has `time`, `level` and `msg`, then the event's fields.
 *
 * As a last line of defence, every finished line passes through a redactor (configured
 * secrets replaced by `[REDACTED]`, URLs stripped of credentials and secret query
 * values), so a secret that reaches a log field by mistake still never reaches the output.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

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
  /** Applied to every finished line (see redact.ts's `createRedactor`). */
  redact?: (line: string) => string;
  /** @default {() => new Date()} */
  now?: () => Date;
}

/** Structured logger; create children to add fields to every line. */
export class Logger {
  readonly #level: number;
  readonly #format: "json" | "text";
  readonly #write: (line: string) => void;
  readonly #redact: (line: string) => string;
  readonly #now: () => Date;
  readonly #base: LogFields;

  constructor(options: LoggerOptions, base: LogFields = {}) {
    this.#level = LEVEL_ORDER[options.level ?? "info"];
    this.#format = options.format ?? "json";
    this.#write = options.write;
    this.#redact = options.redact ?? ((line) => line);
    this.#now = options.now ?? (() => new Date());
    this.#base = base;
    this.options = options;
  }

  /** The options this logger was built with, for children. */
  readonly options: LoggerOptions;

  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger {
    return new Logger(this.options, { ...this.#base, ...fields });
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= this.#level;
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
    const time = this.#now().toISOString();
    const all = { ...this.#base, ...fields };
    const line = this.#format === "json"
      ? JSON.stringify({ time, level, msg, ...normalise(all) })
      : formatText(time, level, msg, all);
    this.#write(`${this.#redact(line)}\n`);
  }
}

function normalise(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = value instanceof Error ? value.message : value;
  }
  return out;
}

function formatText(time: string, level: LogLevel, msg: string, fields: LogFields): string {
  const parts = [`${time} ${level.toUpperCase().padEnd(5)} ${msg}`];
  for (const [key, value] of Object.entries(normalise(fields))) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    parts.push(`${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return parts.join(" ");
}

/** A logger that drops everything; for tests and tools. */
export const silentLogger: Logger = new Logger({ write: () => {}, level: "error" });
