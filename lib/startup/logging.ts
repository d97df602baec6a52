/**
 * The process logger: JSON lines on stdout, or text on a terminal or when configured,
 * with every configured secret redacted, through one buffered asynchronous writer.
 *
 * @module
 */
import type { Runtime } from "./runtime_api.ts";
import type { Config } from "../config/schema.ts";
import { systemClock } from "../clock.ts";
import { Logger } from "../log.ts";
import { LogWriter } from "../log_writer.ts";
import { configuredSecrets, createRedactor } from "../observability/redact.ts";

/** The process's logger and the buffered writer behind it. */
export interface ProcessLogging {
  logger: Logger;
  writer: LogWriter;
}

/**
 * The process logger: JSON lines on stdout, or text on a terminal / when configured,
 * written through one buffered writer that never blocks (log_writer.ts).
 */
export function createLogging(runtime: Runtime, config: Config): ProcessLogging {
  const format = config.logging.format === "auto"
    ? runtime.stdoutIsTerminal() ? "text" : "json"
    : config.logging.format;
  const writer = new LogWriter({
    write: runtime.writeStdoutAsync,
    clock: systemClock,
    // The writer only calls back after a write, by which time `logger` exists.
    onResumed: (dropped) => logger.warn("log output was blocked; lines were dropped", { dropped }),
    redact: createRedactor(configuredSecrets(config)),
  });
  const logger = new Logger({
    level: config.logging.level,
    format,
    write: (line) => writer.line(line),
  });
  return { logger, writer };
}
