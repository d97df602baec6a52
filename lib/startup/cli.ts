/**
 * Command-line flags: parsing them (pure: the argument list in, what was asked for out),
 * and answering `--help` and `--version` before anything else happens.
 *
 * @module
 */

import type { Runtime } from "./runtime_api.ts";
import { CONFIG_SEARCH_PATHS } from "../config/load.ts";
import { NAME, VERSION } from "../version.ts";

/** What the command line asks olla-ts to do. */
export interface CliOptions {
  configPath?: string;
  validateConfig: boolean;
  /** `--healthcheck`: ask the configured olla-ts whether it is alive, exit 0 or 1. */
  healthcheck: boolean;
  version: boolean;
  help: boolean;
}

/** The `--help` text. */
export const HELP_TEXT =
  `olla-ts: an Olla-compatible LLM proxy for LMDeploy and other inference servers

Usage:
  olla-ts [--config FILE]          serve (also: deno run -A main.ts, bun run main.ts)
  olla-ts --validate-config [-c F] check the configuration and exit 0 (valid) or 1
  olla-ts --healthcheck [-c F]     ask the olla-ts configured there whether it is alive
  olla-ts --version                print the version
  olla-ts --help                   print this help

Options:
  -c, --config FILE     configuration file; also --config=FILE. Without it: $OLLA_CONFIG_FILE,
                        then the first that exists of
                        ${CONFIG_SEARCH_PATHS.join(", ")},
                        then built-in defaults (one LMDeploy at http://localhost:23333)
      --validate-config load and validate the configuration without serving
      --healthcheck     GET /internal/health on server.host:server.port; exit 0 if it
                        answers 200 within 3 s, else 1 (a container HEALTHCHECK)
  -v, --version         print the version and exit
  -h, --help            print this help and exit

Examples:
  olla-ts --config /etc/olla-ts/config.yaml
  olla-ts --validate-config -c config.yaml
  OLLA_SERVER_PORT=8080 OLLA_LOG_LEVEL=debug olla-ts

Environment: OLLA_CONFIG_FILE, OLLA_SERVER_HOST, OLLA_SERVER_PORT, OLLA_LOG_LEVEL,
OLLA_LOGGING_FORMAT and the other OLLA_* overrides listed in config.example.yaml.
`;

/**
 * Parses the argument list.
 *
 * @throws {TypeError} naming the argument when it is unknown or lacks its value.
 */
export function parseCli(args: readonly string[]): CliOptions {
  const options: CliOptions = {
    validateConfig: false,
    healthcheck: false,
    version: false,
    help: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--config" || arg === "-c") {
      const value = args[++i];
      if (value === undefined || value.startsWith("-")) {
        throw new TypeError(`Cannot parse arguments: ${arg} needs a file path`);
      }
      options.configPath = value;
    } else if (arg.startsWith("--config=")) {
      options.configPath = arg.slice("--config=".length);
    } else if (arg === "--validate-config") {
      options.validateConfig = true;
    } else if (arg === "--healthcheck") {
      options.healthcheck = true;
    } else if (arg === "--version" || arg === "-v") {
      options.version = true;
    } else if (arg === "--help" || arg === "-h") {
      options.help = true;
    } else {
      throw new TypeError(`Cannot parse arguments: unknown argument "${arg}" (see --help)`);
    }
  }
  return options;
}

/** Parses the command line; prints help or version and exits when asked to. */
export function handleCommandLine(runtime: Runtime): CliOptions {
  let cli: CliOptions;
  try {
    cli = parseCli(runtime.args());
  } catch (error) {
    runtime.writeStderr(`${(error as Error).message}\n`);
    return runtime.exit(2);
  }
  if (cli.help) {
    runtime.writeStdout(HELP_TEXT);
    runtime.exit(0);
  }
  if (cli.version) {
    runtime.writeStdout(`${NAME} ${VERSION} (${runtime.name} ${runtime.version})\n`);
    runtime.exit(0);
  }
  return cli;
}
