/**
 * Cross-field checks of a parsed configuration that the schema cannot express: endpoint
 * names, URLs and types, auth blocks, CIDR lists, CORS, inbound keys and aliases.
 *
 * @module
 */
import { AUTO_TYPE } from "./endpoints.ts";
import type { Config } from "./schema.ts";
import { parseCidr } from "../cidr.ts";
import type { ParseContext, Path } from "../schema/spec.ts";
import { nearestKey } from "../suggest.ts";

/** Directories the Anthropic inspector must never write into (Olla refuses them too). */
const SYSTEM_DIRS: ReadonlySet<string> = new Set([
  "/",
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/proc",
  "/root",
  "/sbin",
  "/sys",
  "/usr",
  "/var",
]);

/** Cross-field checks the schema cannot express. */
export function validate(
  config: Config,
  ctx: ParseContext,
  knownTypes: readonly string[] | undefined,
): void {
  const seen = new Map<string, number>();
  config.discovery.static.endpoints.forEach((endpoint, index) => {
    const path = ["discovery", "static", "endpoints", index];

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
    if (knownTypes && endpoint.type !== AUTO_TYPE && !knownTypes.includes(endpoint.type)) {
      const suggestion = nearestKey(endpoint.type, knownTypes);
      ctx.error(
        [...path, "type"],
        `unknown endpoint type "${endpoint.type}": expected one of ${
          [...knownTypes, AUTO_TYPE].join(", ")
        }${suggestion ? `; did you mean "${suggestion}"?` : ""}`,
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
  const registeredType = config.discovery.registration.defaults.type;
  if (knownTypes && !knownTypes.includes(registeredType)) {
    ctx.error(
      ["discovery", "registration", "defaults", "type"],
      `unknown type "${registeredType}"; known: ${knownTypes.join(", ")}`,
    );
  }
  if (config.translators.anthropic.max_message_size <= 0) {
    ctx.warn(
      ["translators", "anthropic", "max_message_size"],
      "0 or less means the default, 10 MiB (10485760)",
    );
  }
  const inspector = config.translators.anthropic.inspector;
  if (inspector.enabled && SYSTEM_DIRS.has(inspector.output_dir.replace(/\/+$/, "") || "/")) {
    ctx.error(
      ["translators", "anthropic", "inspector", "output_dir"],
      `"${inspector.output_dir}" is a system directory; the inspector writes request bodies there`,
    );
  }
  if (inspector.enabled && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(inspector.session_header)) {
    ctx.error(
      ["translators", "anthropic", "inspector", "session_header"],
      `"${inspector.session_header}" is not a valid header name`,
    );
  }
  const redisProblem = redisUrlProblem(config.cluster.redis_url);
  if (redisProblem) ctx.error(["cluster", "redis_url"], redisProblem);
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
    ctx.error(
      path,
      `"${urlForDisplay(text)}" embeds credentials; move them to the endpoint's auth block`,
    );
  }
  if (url.search !== "" || url.hash !== "") {
    ctx.error(path, `"${text}" must not have a query string or fragment`);
  }
}

/** A URL fit for messages, logs and status pages: its user name and password replaced. */
export function urlForDisplay(text: string): string {
  try {
    const url = new URL(text);
    if (url.username) url.username = "REDACTED";
    if (url.password) url.password = "REDACTED";
    return url.href;
  } catch {
    return "(not a URL)";
  }
}

/** Why `cluster.redis_url` cannot be used, or `undefined` when it can. */
function redisUrlProblem(text: string): string | undefined {
  if (text === "") return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${urlForDisplay(text)} is not a valid URL (expected redis://host:port)`;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return `"${urlForDisplay(text)}" must use redis:// or rediss://, not ${url.protocol}//`;
  }
  if (url.hostname === "") return `"${urlForDisplay(text)}" has no host`;
  return undefined;
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
