/**
 * Loading the configuration at startup: the file and the provider profiles it names,
 * with every problem printed and exit 1 before anything listens; `--validate-config`
 * prints the verdict and exits.
 *
 * @module
 */
import type { CliOptions } from "./cli.ts";
import type { Runtime } from "./runtime_api.ts";
import { ConfigError, formatIssue } from "../config/config_error.ts";
import { loadConfig } from "../config/load.ts";
import { type LoadedConfig } from "../config/loaded.ts";
import { loadProfiles, ProfileError } from "../profiles/loader.ts";
import type { ProfileSet } from "../profiles/profile.ts";

/**
 * Keys the file sets that olla-ts accepts but does not act on, with the reason: the
 * schema's, and `server.read_header_timeout`, which neither runtime's HTTP server lets
 * olla-ts set (the reason says what the runtime does instead).
 */
export function notActedOn(
  loaded: LoadedConfig,
  runtime: Pick<Runtime, "slowHeaders" | "cannotCloseIdle">,
): { path: string; reason: string }[] {
  const keys = [...loaded.unsupported];
  if (loaded.locate?.(["server", "read_header_timeout"])) {
    keys.push({ path: "server.read_header_timeout", reason: runtime.slowHeaders });
  }
  if (runtime.cannotCloseIdle && loaded.locate?.(["server", "idle_timeout"])) {
    keys.push({ path: "server.idle_timeout", reason: runtime.cannotCloseIdle });
  }
  return keys;
}

/** Every warning of loading the configuration and its profiles, as one-line texts. */
export function configurationWarnings(
  loaded: LoadedConfig & { profiles: ProfileSet },
): string[] {
  return [...loaded.warnings, ...loaded.profiles.warnings].map(formatIssue);
}

/**
 * Loads the configuration and its profiles the way startup does (reloads do the same).
 *
 * @throws {ConfigError} or {ProfileError} listing every problem.
 */
export function loadFromRuntime(
  runtime: Runtime,
  cli: CliOptions,
): Promise<LoadedConfig & { profiles: ProfileSet }> {
  return loadConfig({
    flagPath: cli.configPath,
    env: runtime.env,
    readTextFile: runtime.readTextFile,
    isFile: runtime.isFile,
    loadProfiles: (config) =>
      loadProfiles({
        dir: config.proxy.profiles_dir,
        include: config.proxy.profile_filter.include,
        exclude: config.proxy.profile_filter.exclude,
        listDir: runtime.listDir,
        readTextFile: runtime.readTextFile,
      }),
  });
}

/** The text of a loading failure: every issue, or the unexpected error. */
export function loadFailure(error: unknown): string {
  return error instanceof ConfigError || error instanceof ProfileError
    ? error.message
    : `Cannot load configuration: ${error}`;
}

/**
 * Loads the configuration. On a problem, prints every issue and exits 1 before anything
 * listens; with `--validate-config`, prints the verdict and exits 0 or 1.
 */
export async function loadConfigOrExit(
  runtime: Runtime,
  cli: CliOptions,
): Promise<LoadedConfig & { profiles: ProfileSet }> {
  try {
    const loaded = await loadFromRuntime(runtime, cli);
    if (cli.validateConfig) {
      const lines = [
        `Configuration is valid: ${loaded.source ?? "built-in defaults"}`,
        `  ${loaded.config.discovery.static.endpoints.length} endpoint(s)`,
        `  profiles: ${loaded.profiles.all.map((profile) => profile.name).join(", ")}`,
        ...configurationWarnings(loaded).map((warning) => `  warning: ${warning}`),
      ];
      const ignored = notActedOn(loaded, runtime);
      if (ignored.length > 0) {
        lines.push(
          `  accepted, not acted on: ${
            ignored.map((key) => `${key.path} (${key.reason})`).join("; ")
          }`,
        );
      }
      runtime.writeStdout(`${lines.join("\n")}\n`);
      runtime.exit(0);
    }
    return loaded;
  } catch (error) {
    runtime.writeStderr(`${loadFailure(error)}\n`);
    return runtime.exit(1);
  }
}
