/**
 * Renders `config.example.yaml` from the configuration schema, so the example always
 * shows every option olla-ts acts on, with its default and a one-line comment. Keys
 * accepted only for Olla compatibility are listed at the end.
 *
 * @module
 */
import { configSpec } from "./schema.ts";
import { envNames, type Fields, type ListSpec, type ObjectSpec } from "../schema/composites.ts";
import type { Spec } from "../schema/spec.ts";

const HEADER = `# olla-ts configuration: every option with its default.
# Generated from lib/config/schema*.ts by \`deno task config:example\`; a test keeps it in sync.
# Durations are Go-style (500ms, 5s, 2m, 1h30m). Sizes are bytes or 50MB-style (1024-based).
# String values may use \${VAR} or \${VAR:-default}. OLLA_* variables (named per key below)
# override the file.`;

/** The full text of `config.example.yaml`. */
export function renderExample(): string {
  const unsupported: string[] = [];
  const body = renderFields(configSpec.fields, configSpec.fallback, "", "", unsupported);
  return [
    HEADER,
    "",
    ...body,
    "",
    "# Accepted so that an Olla config.yaml loads unchanged, but not acted on by olla-ts",
    "# (reported once at startup when present):",
    ...unsupported.map((line) => `#   ${line}`),
    "",
  ].join("\n");
}

function comment(spec: Spec<unknown>): string {
  const names = envNames(spec.env);
  const env = names.length > 0 ? ` (env ${names.join(" or ")})` : "";
  return spec.doc || env ? ` # ${spec.doc}${env}` : "";
}

/** Lines for the fields of an object whose current values are `values`. */
function renderFields(
  fields: Fields,
  values: unknown,
  indent: string,
  path: string,
  unsupported: string[],
): string[] {
  const lines: string[] = [];
  for (const [key, spec] of Object.entries(fields)) {
    const here = path === "" ? key : `${path}.${key}`;
    if (spec.unsupported) {
      unsupported.push(`${here}: ${spec.unsupported}`);
      continue;
    }
    const value = (values as Record<string, unknown> | undefined)?.[key];
    lines.push(...renderField(key, spec, value, indent, here, unsupported));
  }
  return lines;
}

function renderField(
  key: string,
  spec: Spec<unknown>,
  value: unknown,
  indent: string,
  path: string,
  unsupported: string[],
): string[] {
  if (spec.kind === "object" && value !== undefined) {
    const inner = renderFields(
      (spec as ObjectSpec<unknown>).fields,
      value,
      `${indent}  `,
      path,
      unsupported,
    );
    if (inner.length === 0) return [];
    return [...(spec.doc ? [`${indent}# ${spec.doc}`] : []), `${indent}${key}:`, ...inner];
  }
  if (spec.example !== undefined) return [`${indent}# ${spec.example}${comment(spec)}`];
  if (value === undefined) return [`${indent}# ${key}:${comment(spec)}`];
  const item = (spec as ListSpec<unknown>).of;
  if (spec.kind === "list" && item?.kind === "object") {
    const lines = [`${indent}# ${spec.doc}`, `${indent}${key}:`];
    for (const entry of value as unknown[]) {
      const fields = (item as ObjectSpec<unknown>).fields;
      const itemLines = renderFields(fields, entry, `${indent}    `, `${path}[]`, unsupported);
      itemLines[0] = `${indent}  - ${itemLines[0].trimStart()}`;
      lines.push(...itemLines);
    }
    return lines;
  }
  return [`${indent}${key}: ${spec.show(value)}${comment(spec)}`];
}
