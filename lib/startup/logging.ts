/**
 * The process logger: JSON lines on stdout, or text on a terminal or when configured,
 * with every configured secret redacted.
 *
 * @module
 */
import type { Runtime } from "./runtime_api.ts";
import type { Config } from "../config/schema.ts";
import { Logger } from "../log.ts";
import { configuredSecrets, createRedactor } from "../observability/redact.ts";

/** The process logger: JSON lines on stdout, or text on a terminal / when configured. */
export function createLogger(runtime: Runtime, config: Config): Logger {
  const format = config.logging.format === "auto"
    ? runtime.stdoutIsTerminal() ? "text" : "json"
    : config.logging.format;
  return new Logger({
    level: config.logging.level,
    format,
    write: runtime.writeStdout,
    redact: createRedactor(configuredSecrets(config)),
  });
}
