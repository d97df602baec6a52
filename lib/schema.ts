/**
 * A small declarative schema for olla-ts's YAML configuration. One tree of specs
 * describes every key once: its type, default, documentation, environment override and
 * whether olla-ts acts on it. The same tree validates a parsed file (collecting every
 * problem with its path instead of stopping at the first), fills in defaults, warns
 * about unknown keys with the nearest known one, and renders `config.example.yaml`.
 *
 * @module
 */
import { formatDuration, parseDuration, parseSize } from "./units.ts";

/** A location in the configuration tree, such as `["discovery", "static", "endpoints", 0]`. */
export type Path = readonly (string | number)[];

/** One problem found while reading the configuration. */
export interface Issue {
  /** Dotted path (`discovery.static.endpoints[0].url`) or environment variable name. */
  path: string;
  message: string;
  /** `file:line:column` of the offending value when it came from a file. */
  location?: string;
}

/** Formats a path the way users write it: `a.b[0].c`. */
export function formatPath(path: Path): string {
  let out = "";
  for (const segment of path) {
    out += typeof segment === "number" ? `[${segment}]` : out === "" ? segment : `.${segment}`;
  }
  return out;
}

/** Collects problems while a spec tree parses a configuration. */
export class ParseContext {
  readonly errors: Issue[] = [];
  readonly warnings: Issue[] = [];
  /** Paths of keys that are present and accepted but not acted on, with the reason. */
  readonly unsupported: { path: string; reason: string }[] = [];
  readonly #env: (name: string) => string | undefined;
  readonly #locate: (path: Path) => string | undefined;

  constructor(
    env: (name: string) => string | undefined = () => undefined,
    locate: (path: Path) => string | undefined = () => undefined,
  ) {
    this.#env = env;
    this.#locate = locate;
  }

  env(name: string): string | undefined {
    return this.#env(name);
  }

  error(path: Path | string, message: string): void {
    this.errors.push(this.#issue(path, message));
  }

  warn(path: Path | string, message: string): void {
    this.warnings.push(this.#issue(path, message));
  }

  #issue(path: Path | string, message: string): Issue {
    if (typeof path === "string") return { path, message };
    return { path: formatPath(path), message, location: this.#locate(path) };
  }
}

/** A schema node that turns a raw YAML value into a typed, defaulted value. */
export interface Spec<T> {
  readonly kind: string;
  readonly doc: string;
  /** The value used when the key is absent. */
  readonly fallback: T;
  /** Environment variable that overrides this key after the file is read. */
  readonly env?: string;
  /** When set, the key is accepted but olla-ts does not act on it; says why. */
  readonly unsupported?: string;
  /** YAML text shown (commented out) in the example when there is no default to show. */
  readonly example?: string;
  parse(raw: unknown, path: Path, ctx: ParseContext): T;
  /** Renders a default value as YAML scalar text. */
  show(value: T): string;
}

/** The value type a spec produces. */
export type SpecType<S> = S extends Spec<infer T> ? T : never;

interface CommonOptions {
  doc: string;
  env?: string;
  unsupported?: string;
  example?: string;
}

function describe(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : JSON.stringify(value) ?? String(value);
}

function scalarSpec<T>(
  kind: string,
  options: CommonOptions & { default: T },
  convert: (raw: unknown) => T,
  show: (value: T) => string,
): Spec<T> {
  return {
    kind,
    doc: options.doc,
    env: options.env,
    unsupported: options.unsupported,
    example: options.example,
    fallback: options.default,
    show,
    parse(raw, path, ctx) {
      if (raw === undefined || raw === null) return options.default;
      try {
        return convert(raw);
      } catch (error) {
        ctx.error(path, (error as Error).message);
        return options.default;
      }
    },
  };
}

/** A string limited to a set of values (with accepted aliases), typed as their union. */
export function str<const V extends string>(
  options: CommonOptions & {
    default: NoInfer<V>;
    oneOf: readonly V[];
    aliases?: Readonly<Record<string, V>>;
  },
): Spec<V>;
/** A string. */
export function str(options: CommonOptions & { default: string }): Spec<string>;
export function str(
  options: CommonOptions & {
    default: string;
    oneOf?: readonly string[];
    aliases?: Readonly<Record<string, string>>;
  },
): Spec<string> {
  return scalarSpec("string", options, (raw) => {
    if (typeof raw !== "string" && typeof raw !== "number" && typeof raw !== "boolean") {
      throw new TypeError(`expected a string, got ${describe(raw)}`);
    }
    const value = options.aliases?.[String(raw)] ?? String(raw);
    if (options.oneOf && !options.oneOf.includes(value)) {
      throw new RangeError(`${describe(raw)} is not one of ${options.oneOf.join(", ")}`);
    }
    return value;
  }, (value) => (value === "" ? '""' : JSON.stringify(value)));
}

/** A string that may be absent. */
export function optStr(options: CommonOptions): Spec<string | undefined> {
  return optional(str({ ...options, default: "" }));
}

/** The same spec, but `undefined` (not the default) when the key is absent. */
export function optional<T>(spec: Spec<T>): Spec<T | undefined> {
  return {
    ...spec,
    fallback: undefined,
    show: (value) => (value === undefined ? '""' : spec.show(value)),
    parse: (
      raw,
      path,
      ctx,
    ) => (raw === undefined || raw === null ? undefined : spec.parse(raw, path, ctx)),
  };
}

/** Any value, kept as it is; for Olla sections olla-ts accepts but does not read. */
export function opaque(options: CommonOptions): Spec<unknown> {
  return {
    kind: "opaque",
    doc: options.doc,
    unsupported: options.unsupported,
    example: options.example,
    fallback: undefined,
    show: () => "{}",
    parse: (raw) => raw,
  };
}

function toNumber(raw: unknown): number {
  const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`expected a number, got ${describe(raw)}`);
  }
  return value;
}

/** A number within optional bounds; `integer` refuses fractions. */
export function num(
  options: CommonOptions & { default: number; min?: number; max?: number; integer?: boolean },
): Spec<number> {
  const { min = -Infinity, max = Infinity, integer = true } = options;
  return scalarSpec("number", options, (raw) => {
    const value = toNumber(raw);
    if (integer && !Number.isInteger(value)) {
      throw new TypeError(`expected a whole number, got ${describe(raw)}`);
    }
    if (value < min || value > max) {
      const range = max === Infinity ? `at least ${min}` : `between ${min} and ${max}`;
      throw new RangeError(`${describe(raw)} is out of range: must be ${range}`);
    }
    return value;
  }, String);
}

/** A boolean; also accepts the strings `true`/`false`/`1`/`0` (for environment values). */
export function bool(options: CommonOptions & { default: boolean }): Spec<boolean> {
  return scalarSpec("boolean", options, (raw) => {
    if (typeof raw === "boolean") return raw;
    const text = String(raw).toLowerCase();
    if (["true", "1", "yes", "on"].includes(text)) return true;
    if (["false", "0", "no", "off"].includes(text)) return false;
    throw new TypeError(`expected true or false, got ${describe(raw)}`);
  }, String);
}

/** A Go-style duration, parsed to milliseconds; never negative. */
export function duration(
  options: CommonOptions & { default: string; min?: string; max?: string },
): Spec<number> {
  const min = options.min === undefined ? 0 : parseDuration(options.min);
  const max = options.max === undefined ? Infinity : parseDuration(options.max);
  return scalarSpec("duration", { ...options, default: parseDuration(options.default) }, (raw) => {
    if (typeof raw === "number" && raw !== 0) {
      throw new TypeError(`duration ${raw} has no unit (add a unit, for example "${raw}s")`);
    }
    if (typeof raw !== "string" && raw !== 0) {
      throw new TypeError(`expected a duration such as "5s", got ${describe(raw)}`);
    }
    const ms = parseDuration(String(raw));
    if (ms < 0) throw new RangeError(`duration ${describe(raw)} must not be negative`);
    if (ms < min || ms > max) {
      const range = max === Infinity
        ? `at least ${options.min}`
        : `between ${options.min ?? "0s"} and ${options.max}`;
      throw new RangeError(`duration ${describe(raw)} is out of range: must be ${range}`);
    }
    return ms;
  }, formatDuration);
}

/** A byte size: a number of bytes or a string such as `"50MB"`. */
export function size(options: CommonOptions & { default: number }): Spec<number> {
  return scalarSpec("size", options, (raw) => {
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new TypeError(`expected a size such as "50MB", got ${describe(raw)}`);
    }
    return parseSize(typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : raw);
  }, String);
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
      const envValue = spec.env === undefined ? undefined : ctx.env(spec.env);
      if (envValue !== undefined) {
        out[key] = spec.parse(envValue, [spec.env as string], ctx);
        continue;
      }
      const value = record[key];
      if (value !== undefined && spec.unsupported) {
        ctx.unsupported.push({ path: formatPath([...path, key]), reason: spec.unsupported });
      }
      out[key] = spec.parse(value, [...path, key], ctx);
    }
    return out as ObjectType<F>;
  };
  const fallback = parse({}, [], new ParseContext());
  return {
    kind: "object",
    doc: options.doc,
    unsupported: options.unsupported,
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

/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}

/** The known key closest to `key`, when it is close enough to be a likely typo. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
