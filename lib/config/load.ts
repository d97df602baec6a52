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
import { nameEndpointIssues, normaliseEndpoints } from "./endpoints.ts";
import { interpolate } from "./interpolate.ts";
import type { LoadedConfig } from "./loaded.ts";
import { type Config, configSpec } from "./schema.ts";
import { resolveSecretFiles } from "./secrets.ts";
import { validate } from "./validate.ts";
import { ParseContext } from "../schema/spec.ts";
import { readYaml } from "../schema/yaml_source.ts";

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

/**
 * Files looked for, in this order, when neither `--config` nor `OLLA_CONFIG_FILE` names
 * one: Olla's own search order (the first that exists is read; they are not layered).
 */
export const CONFIG_SEARCH_PATHS: readonly string[] = [
  "config/config.local.yaml",
  "config/config.yaml",
  "config.yaml",
  "default.yaml",
];

/**
 * Finds the configuration file: the flag, then `OLLA_CONFIG_FILE`, then the first of
 * {@linkcode CONFIG_SEARCH_PATHS} that exists. A file named by the flag or the variable
 * must exist.
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
  for (const path of CONFIG_SEARCH_PATHS) if (await options.isFile(path)) return path;
  return undefined;
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
  const config = await resolveSecretFiles(loaded, options.readTextFile);
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
  } else if (options.source !== undefined) {
    checkIsConfiguration(yaml.value as Record<string, unknown> | undefined, ctx);
  }
  const interpolated = interpolate(yaml.isMapping ? yaml.value ?? {} : {}, [], ctx);
  const config = normaliseEndpoints(configSpec.parse(interpolated, [], ctx), ctx);
  validate(config, ctx, options.knownTypes);
  const names = config.discovery.static.endpoints.map((endpoint) => endpoint.name);
  const errors = nameEndpointIssues(ctx.errors, names);
  const warnings = nameEndpointIssues(ctx.warnings, names);
  if (errors.length > 0) throw new ConfigError(label, errors, warnings);
  return {
    config,
    source: options.source,
    warnings,
    unsupported: ctx.unsupported,
    locate: yaml.locate,
  };
}

/**
 * Refuses a file that is not an olla-ts/Olla configuration (an empty file, Olla's
 * models.yaml, a provider profile, endpoints at the top level), with a hint, instead of
 * running it as "valid" with the built-in default endpoint.
 */
function checkIsConfiguration(value: Record<string, unknown> | undefined, ctx: ParseContext): void {
  if (value === undefined) {
    ctx.error(
      [],
      "the file is empty; a configuration has sections such as server:, proxy: and discovery:",
    );
    return;
  }
  const keys = Object.keys(value);
  if ("endpoints" in value) {
    ctx.error(["endpoints"], "endpoints belong under discovery: static: endpoints:");
  }
  const discovery = value.discovery as Record<string, unknown> | null | undefined;
  if (discovery && typeof discovery === "object" && "endpoints" in discovery) {
    ctx.error(["discovery", "endpoints"], "endpoints belong under discovery: static: endpoints:");
  }
  if (keys.some((key) => key in configSpec.fields) || "endpoints" in value) return;
  const hint = "model_extraction" in value || "families" in value
    ? "it looks like Olla's models.yaml (model unification rules), which olla-ts does not read"
    : "routes" in value || "api" in value
    ? "it looks like a provider profile; put it in the directory proxy.profiles_dir names"
    : `none of its keys (${keys.slice(0, 5).join(", ")}) is a configuration section`;
  ctx.error([], `this is not an olla-ts/Olla configuration: ${hint}`);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
