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
import { parseCidr } from "./cidr.ts";
import { type Config, configSpec } from "./config_schema.ts";
import { type Issue, ParseContext, type Path } from "./schema.ts";
import { readYaml } from "./yaml_source.ts";
import type { ProfileSet } from "./profiles.ts";

export type { Config, EndpointConfig } from "./config_schema.ts";

/** Thrown when the configuration cannot be used; carries one issue per problem. */
export class ConfigError extends TypeError {
  readonly issues: readonly Issue[];

  constructor(source: string, issues: readonly Issue[]) {
    super(
      `Cannot load configuration from ${source}: ${issues.length} problem${
        issues.length === 1 ? "" : "s"
      }\n${issues.map((issue) => `  - ${formatIssue(issue)}`).join("\n")}`,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** `file:line:col: path: message`, or without location when unknown. */
export function formatIssue(issue: Issue): string {
  return `${issue.location ? `${issue.location}: ` : ""}${
    issue.path ? `${issue.path}: ` : ""
  }${issue.message}`;
}

/** A configuration ready to run, with what the operator should be told about it. */
export interface LoadedConfig {
  readonly config: Config;
  /** The file read, or `undefined` when built-in defaults were used. */
  readonly source: string | undefined;
  readonly warnings: readonly Issue[];
  /** Keys present in the file that olla-ts accepts but does not act on. */
  readonly unsupported: readonly { path: string; reason: string }[];
}

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Path given with `--config`/`-c`. */
  flagPath?: string;
  env: (name: string) => string | undefined;
  readTextFile: (path: string) => Promise<string>;
  isFile: (path: string) => Promise<boolean>;
  /** Loads the provider profiles the configuration asks for (its `proxy.profiles_dir`). */
  loadProfiles: (config: Config) => Promise<ProfileSet>;
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
export async function loadConfig(
  options: LoadConfigOptions,
): Promise<LoadedConfig & { profiles: ProfileSet }> {
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

const VARIABLE_REGEXP = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands `${VAR}` and `${VAR:-default}` in every string; `$$` is a literal `$`. */
function interpolate(value: unknown, path: Path, ctx: ParseContext): unknown {
  if (typeof value === "string") {
    return value.replace(VARIABLE_REGEXP, (match, name?: string, fallback?: string) => {
      if (match === "$$") return "$";
      const found = ctx.env(name as string);
      if (found !== undefined && found !== "") return found;
      if (fallback !== undefined) return fallback;
      ctx.error(path, `\${${name}} is not set (write \${${name}:-default} to give a default)`);
      return "";
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => interpolate(item, [...path, index], ctx));
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, [...path, key], ctx)]),
    );
  }
  return value;
}

/** Cross-field checks the schema cannot express. */
function validate(
  config: Config,
  ctx: ParseContext,
  knownTypes: readonly string[] | undefined,
): void {
  const seen = new Map<string, number>();
  config.discovery.static.endpoints.forEach((endpoint, index) => {
    const path = ["discovery", "static", "endpoints", index];
    if (endpoint.name.trim() === "") ctx.error([...path, "name"], "every endpoint needs a name");
    const first = seen.get(endpoint.name);
    if (first !== undefined) {
      ctx.error(
        [...path, "name"],
        `duplicate endpoint name "${endpoint.name}" (also used by endpoints[${first}])`,
      );
    } else {
      seen.set(endpoint.name, index);
    }
    validateUrl(endpoint.url, [...path, "url"], ctx);
    if (knownTypes && !knownTypes.includes(endpoint.type)) {
      ctx.error(
        [...path, "type"],
        endpoint.type === ""
          ? `every endpoint needs a type: one of ${knownTypes.join(", ")}`
          : `unknown endpoint type "${endpoint.type}": expected one of ${knownTypes.join(", ")}`,
      );
    }
    if (endpoint.check_timeout > endpoint.check_interval) {
      ctx.warn(
        [...path, "check_timeout"],
        "check_timeout is longer than check_interval; probes will not overlap, so the interval stretches",
      );
    }
    if (endpoint.auth) validateAuth(endpoint.auth, [...path, "auth"], ctx);
  });
  for (
    const [name, cidrs] of [
      ["server.rate_limits.trusted_proxy_cidrs", config.server.rate_limits.trusted_proxy_cidrs],
      ["server.internal.allowed_cidrs", config.server.internal.allowed_cidrs],
    ] as const
  ) {
    cidrs.forEach((cidr, index) => {
      try {
        parseCidr(cidr);
      } catch (error) {
        ctx.error([...name.split("."), index], (error as Error).message);
      }
    });
  }
  const cors = config.server.cors;
  if (cors.enabled && cors.allow_credentials && cors.allowed_origins.includes("*")) {
    ctx.error(
      ["server", "cors", "allow_credentials"],
      'cannot allow credentials with allowed_origins "*"; list the origins instead',
    );
  }
  if (
    config.server.auth.enabled && config.server.auth.keys.length === 0 &&
    config.server.auth.keys_file === undefined
  ) {
    ctx.error(
      ["server", "auth", "keys"],
      "auth is enabled but no keys are configured (keys or keys_file)",
    );
  }
  config.server.auth.keys.forEach((key, index) => {
    const path = ["server", "auth", "keys", index];
    if (key.name.trim() === "") ctx.error([...path, "name"], "every key needs a name");
    if ((key.key === undefined) === (key.key_file === undefined)) {
      ctx.error(path, "set exactly one of key and key_file");
    }
  });
  for (const [alias, targets] of Object.entries(config.model_aliases)) {
    if (targets.length === 0) {
      ctx.error(["model_aliases", alias], "an alias needs at least one model");
    }
  }
}

function validateUrl(text: string, path: Path, ctx: ParseContext): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.error(path, text === "" ? "every endpoint needs a url" : `"${text}" is not a valid URL`);
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    ctx.error(path, `"${text}" must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username !== "" || url.password !== "") {
    // Printing the URL would print the secret, so the message shows it redacted.
    url.username = url.username ? "REDACTED" : "";
    url.password = url.password ? "REDACTED" : "";
    ctx.error(path, `"${url.href}" embeds credentials; move them to the endpoint's auth block`);
  }
  if (url.search !== "" || url.hash !== "") {
    ctx.error(path, `"${text}" must not have a query string or fragment`);
  }
}

const AUTH_FIELDS = {
  bearer: [["token", "token_file"]],
  api_key: [["key", "key_file"]],
  basic: [["username", "username_file"], ["password", "password_file"]],
} as const;

function validateAuth(
  auth: NonNullable<Config["discovery"]["static"]["endpoints"][0]["auth"]>,
  path: Path,
  ctx: ParseContext,
): void {
  const needed = AUTH_FIELDS[auth.type as keyof typeof AUTH_FIELDS];
  for (const [inline, file] of needed) {
    if ((auth[inline] === undefined) === (auth[file] === undefined)) {
      ctx.error(path, `${auth.type} auth needs exactly one of ${inline} and ${file}`);
    }
  }
  const allowed = new Set<string>(["type", "header", ...needed.flat()]);
  for (const field of Object.values(AUTH_FIELDS).flat(2)) {
    if (!allowed.has(field) && auth[field] !== undefined) {
      ctx.error([...path, field], `${auth.type} auth does not use ${field}`);
    }
  }
}

/** Replaces every `*_file` secret with the file's trimmed content. */
async function resolveSecretFiles(
  config: Config,
  readTextFile: (path: string) => Promise<string>,
  source: string | undefined,
): Promise<Config> {
  const issues: Issue[] = [];
  const read = async (file: string | undefined, path: string) => {
    if (file === undefined) return undefined;
    try {
      return (await readTextFile(file)).trim();
    } catch (error) {
      issues.push({
        path,
        message: `cannot read secret file "${file}": ${(error as Error).message}`,
      });
      return undefined;
    }
  };
  const endpoints = await Promise.all(
    config.discovery.static.endpoints.map(async (endpoint, index) => {
      const auth = endpoint.auth;
      if (!auth) return endpoint;
      const at = (field: string) => `discovery.static.endpoints[${index}].auth.${field}`;
      return {
        ...endpoint,
        auth: {
          ...auth,
          token: auth.token ?? await read(auth.token_file, at("token_file")),
          key: auth.key ?? await read(auth.key_file, at("key_file")),
          username: auth.username ?? await read(auth.username_file, at("username_file")),
          password: auth.password ?? await read(auth.password_file, at("password_file")),
        },
      };
    }),
  );
  const keys = await Promise.all(config.server.auth.keys.map(async (key, index) => ({
    ...key,
    key: key.key ?? await read(key.key_file, `server.auth.keys[${index}].key_file`),
  })));
  const fileKeys = await readKeysFile(config.server.auth.keys_file, readTextFile, issues);
  if (issues.length > 0) throw new ConfigError(source ?? "built-in defaults", issues);
  return {
    ...config,
    server: { ...config.server, auth: { ...config.server.auth, keys: [...keys, ...fileKeys] } },
    discovery: { ...config.discovery, static: { endpoints } },
  };
}

async function readKeysFile(
  file: string | undefined,
  readTextFile: (path: string) => Promise<string>,
  issues: Issue[],
): Promise<Config["server"]["auth"]["keys"]> {
  if (file === undefined) return [];
  let text: string;
  try {
    text = await readTextFile(file);
  } catch (error) {
    issues.push({
      path: "server.auth.keys_file",
      message: `cannot read "${file}": ${(error as Error).message}`,
    });
    return [];
  }
  const keys: Config["server"]["auth"]["keys"][number][] = [];
  text.split("\n").forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) return;
    const [name, key, flag] = line.split(":").map((part) => part.trim());
    if (!name || !key || (flag !== undefined && flag !== "admin")) {
      issues.push({
        path: "server.auth.keys_file",
        location: `${file}:${index + 1}`,
        message: "expected 'name:key' or 'name:key:admin'",
      });
      return;
    }
    keys.push({ name, key, key_file: undefined, admin: flag === "admin" });
  });
  return keys;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
