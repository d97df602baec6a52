/**
 * Endpoints as Olla accepts them, made usable: an endpoint without `name` gets one
 * derived from its URL (Olla keeps `""`, which cannot key headers, metrics or status),
 * and one without `type` is typed `auto` (detected by probing once it answers).
 *
 * @module
 */
import type { ParseContext } from "../schema/spec.ts";
import type { Config } from "./schema.ts";

/** The type of an endpoint whose kind of backend olla-ts detects by probing it. */
export const AUTO_TYPE = "auto";

/**
 * A stable name for an endpoint from its URL: host and port, plus its path when it has
 * one; credentials, query and fragment left out (`http://10.0.0.5:23333/` is
 * `10.0.0.5:23333`).
 */
export function nameFromUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname.replace(/\/+$/, "");
    return `${parsed.host}${path}`;
  } catch {
    return url.replace(/^[a-z]+:\/\//i, "").replace(/[?#].*$/, "");
  }
}

/** The configuration with every endpoint named and typed; each derived name is warned about. */
export function normaliseEndpoints(config: Config, ctx: ParseContext): Config {
  const used = new Set(config.discovery.static.endpoints.map((endpoint) => endpoint.name));
  const endpoints = config.discovery.static.endpoints.map((endpoint, index) => {
    let { name, type } = endpoint;
    if (name.trim() === "" && endpoint.url !== "") {
      const base = nameFromUrl(endpoint.url);
      name = base;
      for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
      used.add(name);
      ctx.warn(
        ["discovery", "static", "endpoints", index],
        `this endpoint has no name; it is called "${name}", from its url (set name to choose one)`,
      );
    }
    if (type.trim() === "") type = AUTO_TYPE;
    return name === endpoint.name && type === endpoint.type
      ? endpoint
      : { ...endpoint, name, type };
  });
  return { ...config, discovery: { ...config.discovery, static: { endpoints } } };
}

const ENDPOINT_PATH_REGEXP = /^discovery\.static\.endpoints\[(\d+)\]/;

/**
 * Adds the endpoint's name to issues about it, so a problem is found by the name the
 * operator knows (`... (endpoint "gpu-a")`), not only by its index.
 */
export function nameEndpointIssues<I extends { path: string; message: string }>(
  issues: readonly I[],
  names: readonly string[],
): I[] {
  return issues.map((issue) => {
    const index = ENDPOINT_PATH_REGEXP.exec(issue.path)?.[1];
    const name = index === undefined ? undefined : names[Number(index)];
    if (!name || issue.message.includes(`(endpoint "${name}")`)) return issue;
    return { ...issue, message: `${issue.message} (endpoint "${name}")` };
  });
}
