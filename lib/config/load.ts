/**
 * Turns a YAML file and the environment into a validated, defaulted, frozen
 * {@linkcode Config}: finds the file (`--config` flag, `OLLA_CONFIG_FILE`, `./config.yaml`,
 * built-in defaults), expands `${VAR}` and `${VAR:-default}` in string values, applies
 * `OLLA_*` overrides, and reports every problem at once with its path, value and, for
 * values from the file, its line and column.
 *
 * This module reads files only through the functions it is given.
 *
 * @module
 */
import { ConfigError } from "./config_error.ts";
import { interpolate } from "./interpolate.ts";
import { type Config, configSpec } from "./schema.ts";
import { resolveSecretFiles } from "./secrets.ts";
import { validate } from "./validate.ts";
import { type Issue, ParseContext } from "../schema/spec.ts";
import { readYaml } from "../schema/yaml_source.ts";

/** A configuration ready to run, with what the operator should be told about it. */
export interface LoadedConfig {
  readonly config: Config;
  /** The file read, or `undefined` when built-in defaults were used. */
  readonly source: string | undefined;
  readonly warnings: readonly Issue[];
  /** Keys present in the file that olla-ts accepts but does not act on. */
  readonly unsupported: readonly { path: string; reason: string }[];
}

/** What the configuration needs to know of the profile set: which endpoint types exist. */
export interface ProfileNames {
  readonly typeNames: readonly string[];
}

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions<P extends ProfileNames = ProfileNames> {
  /** Path given with `--config`/`-c`. */
  flagPath?: string;
  env: (name: string) => string | undefined;
  readTextFile: (path: string) => Promise<string>;
  isFile: (path: string) => Promise<boolean>;
  /**
   * Loads the provider profiles the configuration asks for (its `proxy.profiles_dir`);
   * their type names are what endpoint types are checked against.
   */
  loadProfiles: (config: Config) => Promise<P>;
}

/** Default file looked for in the working directory. */
export const DEFAULT_CONFIG_FILE = "config.yaml";

/**
 * Finds the configuration file: the flag, then `OLLA_CONFIG_FILE`, then `./config.yaml`.
 * A file named by the flag or the variable must exist.
 *
 * @throws {ConfigError} when an explicitly named file does not exist.
 */
export async function locateConfigFile(
  options: Pick<LoadConfigOptions, "flagPath" | "env" | "isFile">,
): Promise<string | undefined> {
  const named = options.flagPath !== undefined
    ? { path: options.flagPath, via: "--config" }
    : options.env("OLLA_CONFIG_FILE")
    ? { path: options.env("OLLA_CONFIG_FILE") as string, via: "OLLA_CONFIG_FILE" }
    : undefined;
  if (named) {
    if (await options.isFile(named.path)) return named.path;
    throw new ConfigError(named.path, [{
      path: named.via,
      message: `file "${named.path}" does not exist or is not a file`,
    }]);
  }
  return await options.isFile(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

/**
 * Locates, reads, parses and validates the configuration, then reads secret files.
 *
 * @throws {ConfigError} listing every problem found.
 */
export async function loadConfig<P extends ProfileNames>(
  options: LoadConfigOptions<P>,
): Promise<LoadedConfig & { profiles: P }> {
  const source = await locateConfigFile(options);
  const text = source === undefined ? "" : await options.readTextFile(source);
  // Endpoint types are checked against the profiles, which the configuration itself may
  // extend (proxy.profiles_dir): read it once for that, then validate it whole.
  const profiles = await options.loadProfiles(
    parseConfig(text, { ...options, source, knownTypes: undefined }).config,
  );
  const loaded = parseConfig(text, { ...options, source, knownTypes: profiles.typeNames });
  const config = await resolveSecretFiles(loaded.config, options.readTextFile, source);
  return { ...loaded, config: deepFreeze(config), profiles };
}

/**
 * Parses and validates configuration text (no file access).
 *
 * @throws {ConfigError} listing every problem found.
 */
export function parseConfig(
  text: string,
  options: {
    source?: string;
    env: (name: string) => string | undefined;
    /** Endpoint types with a profile; `undefined` skips the type check (first pass). */
    knownTypes: readonly string[] | undefined;
  },
): LoadedConfig {
  const label = options.source ?? "built-in defaults";
  const yaml = readYaml(text, options.source ?? "config");
  if (yaml.syntaxErrors.length > 0) throw new ConfigError(label, yaml.syntaxErrors);
  const ctx = new ParseContext(options.env, yaml.locate);
  if (!yaml.isMapping) {
    ctx.error(
      [],
      `the file must hold a mapping of sections, got ${
        Array.isArray(yaml.value) ? "a list" : "a value"
      }`,
    );
  }
  const interpolated = interpolate(yaml.isMapping ? yaml.value ?? {} : {}, [], ctx);
  const config = configSpec.parse(interpolated, [], ctx);
  validate(config, ctx, options.knownTypes);
  if (ctx.errors.length > 0) throw new ConfigError(label, ctx.errors);
  return { config, source: options.source, warnings: ctx.warnings, unsupported: ctx.unsupported };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
