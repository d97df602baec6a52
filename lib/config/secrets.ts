/**
 * Secrets kept in files: every `*_file` field of endpoint auth and inbound keys is
 * replaced by the file's trimmed content, and `server.auth.keys_file` (one `name:key` or
 * `name:key:admin` per line) adds keys. Files are read only through the function given.
 *
 * @module
 */
import { ConfigError } from "./config_error.ts";
import type { Config } from "./schema.ts";
import { formatPath, type Issue, type Path } from "../schema/spec.ts";
import { nameEndpointIssues } from "./endpoints.ts";
import type { LoadedConfig } from "./loaded.ts";

/**
 * Replaces every `*_file` secret with the file's trimmed content. Problems name the
 * setting's `file:line:column`, and its endpoint by name.
 */
export async function resolveSecretFiles(
  loaded: Pick<LoadedConfig, "config" | "source" | "warnings" | "locate">,
  readTextFile: (path: string) => Promise<string>,
): Promise<Config> {
  const { config } = loaded;
  const issues: Issue[] = [];
  const read = async (file: string | undefined, path: Path) => {
    if (file === undefined) return undefined;
    try {
      return (await readTextFile(file)).trim();
    } catch (error) {
      issues.push({
        path: formatPath(path),
        location: loaded.locate?.(path),
        message: `cannot read secret file "${file}": ${(error as Error).message}`,
      });
      return undefined;
    }
  };
  const endpoints = await Promise.all(
    config.discovery.static.endpoints.map(async (endpoint, index) => {
      const auth = endpoint.auth;
      if (!auth) return endpoint;
      const at = (field: string) => ["discovery", "static", "endpoints", index, "auth", field];
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
    key: key.key ?? await read(key.key_file, ["server", "auth", "keys", index, "key_file"]),
  })));
  const fileKeys = await readKeysFile(
    config.server.auth.keys_file,
    readTextFile,
    issues,
    loaded.locate?.(["server", "auth", "keys_file"]),
  );
  if (issues.length > 0) {
    const names = config.discovery.static.endpoints.map((endpoint) => endpoint.name);
    throw new ConfigError(
      loaded.source ?? "built-in defaults",
      nameEndpointIssues(issues, names),
      loaded.warnings,
    );
  }
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
  /** Where the configuration names the file. */
  location: string | undefined,
): Promise<Config["server"]["auth"]["keys"]> {
  if (file === undefined) return [];
  let text: string;
  try {
    text = await readTextFile(file);
  } catch (error) {
    issues.push({
      path: "server.auth.keys_file",
      location,
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
        location: `${file}:${index + 1}:1`,
        message: `line ${index + 1} of the keys file: expected 'name:key' or 'name:key:admin'`,
      });
      return;
    }
    keys.push({ name, key, key_file: undefined, admin: flag === "admin" });
  });
  return keys;
}
