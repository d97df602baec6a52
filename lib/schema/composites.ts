/**
 * Composite schema specs: lists, free-form maps and objects with known keys (which warn
 * about unknown keys with the nearest known one).
 *
 * @module
 */
import {
  type CommonOptions,
  describe,
  formatPath,
  ParseContext,
  type Path,
  type Spec,
  type SpecType,
} from "./spec.ts";
import { nearestKey } from "../suggest.ts";

/** A spec's environment variables as a list. */
export function envNames(env: string | readonly string[] | undefined): readonly string[] {
  return env === undefined ? [] : typeof env === "string" ? [env] : env;
}

/** A list spec, kept so the example renderer can walk its items. */
export interface ListSpec<T> extends Spec<readonly T[]> {
  readonly of: Spec<T>;
}

/** A list of items; a comma-separated string is accepted too (for environment values). */
export function list<T>(
  of: Spec<T>,
  options: CommonOptions & { default: NoInfer<readonly T[]> },
): ListSpec<T> {
  return {
    kind: "list",
    doc: options.doc,
    env: options.env,
    unsupported: options.unsupported,
    fits: options.fits,
    example: options.example,
    fallback: options.default,
    show: (value) => `[${value.map((item) => of.show(item)).join(", ")}]`,
    of,
    parse(raw, path, ctx) {
      if (raw === undefined || raw === null) return options.default;
      const items = typeof raw === "string"
        ? raw.split(",").map((item) => item.trim()).filter((item) => item !== "")
        : raw;
      if (!Array.isArray(items)) {
        ctx.error(path, `expected a list, got ${describe(raw)}`);
        return options.default;
      }
      return items.map((item, index) => of.parse(item, [...path, index], ctx));
    },
  };
}

/** A mapping from free-form string keys to values of one spec. */
export function map<T>(
  of: Spec<T>,
  options: CommonOptions,
): Spec<Readonly<Record<string, T>>> {
  return {
    kind: "map",
    doc: options.doc,
    unsupported: options.unsupported,
    fits: options.fits,
    example: options.example,
    fallback: {},
    show: () => "{}",
    parse(raw, path, ctx) {
      if (raw === undefined || raw === null) return {};
      if (typeof raw !== "object" || Array.isArray(raw)) {
        ctx.error(path, `expected a mapping, got ${describe(raw)}`);
        return {};
      }
      const out: Record<string, T> = {};
      for (const [key, value] of Object.entries(raw)) {
        out[key] = of.parse(value, [...path, key], ctx);
      }
      return out;
    },
  };
}

/** Field specs of an object spec. */
// deno-lint-ignore no-explicit-any
export type Fields = Readonly<Record<string, Spec<any>>>;

/** The value type of an object spec with these fields. */
export type ObjectType<F extends Fields> = { readonly [K in keyof F]: SpecType<F[K]> };

/** An object spec, kept so the example renderer can walk it. */
export interface ObjectSpec<T> extends Spec<T> {
  readonly fields: Fields;
}

/** An object with known keys; unknown keys are warned about with the nearest known key. */
export function obj<F extends Fields>(
  fields: F,
  options: CommonOptions = { doc: "" },
): ObjectSpec<ObjectType<F>> {
  const parse = (raw: unknown, path: Path, ctx: ParseContext): ObjectType<F> => {
    const source = raw ?? {};
    if (typeof source !== "object" || Array.isArray(source)) {
      ctx.error(path, `expected a mapping, got ${describe(raw)}`);
      return parse({}, path, ctx);
    }
    const record = source as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key in fields) continue;
      const suggestion = nearestKey(key, Object.keys(fields));
      ctx.warn(
        [...path, key],
        `unknown key "${key}" is ignored${suggestion ? `; did you mean "${suggestion}"?` : ""}`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(fields)) {
      const envName = envNames(spec.env).find((name) => ctx.env(name) !== undefined);
      if (envName !== undefined) {
        out[key] = spec.parse(ctx.env(envName), [envName], ctx);
        continue;
      }
      const value = record[key];
      out[key] = spec.parse(value, [...path, key], ctx);
      if (value !== undefined && spec.unsupported && !spec.fits?.(out[key])) {
        ctx.unsupported.push({ path: formatPath([...path, key]), reason: spec.unsupported });
      }
    }
    return out as ObjectType<F>;
  };
  const fallback = parse({}, [], new ParseContext());
  return {
    kind: "object",
    doc: options.doc,
    unsupported: options.unsupported,
    fits: options.fits,
    example: options.example,
    fields,
    fallback,
    show: () => "{}",
    parse,
  };
}

/** An object that may be absent (`undefined` when the key is missing). */
export function optObj<F extends Fields>(
  fields: F,
  options: CommonOptions,
): ObjectSpec<ObjectType<F> | undefined> {
  const inner = obj(fields, options);
  return {
    ...inner,
    fallback: undefined,
    parse: (
      raw,
      path,
      ctx,
    ) => (raw === undefined || raw === null ? undefined : inner.parse(raw, path, ctx)),
  };
}
