/**
 * `${VAR}` and `${VAR:-default}` in configuration strings. `$$` is a literal `$`; a variable
 * that is unset (or empty) and has no default is an error, so a missing secret never
 * becomes an empty password.
 *
 * @module
 */
import type { ParseContext, Path } from "../schema/spec.ts";

const VARIABLE_REGEXP = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands `${VAR}` and `${VAR:-default}` in every string; `$$` is a literal `$`. */
export function interpolate(value: unknown, path: Path, ctx: ParseContext): unknown {
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
