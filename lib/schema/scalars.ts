/**
 * Scalar schema specs: strings (optionally limited to a set of values), numbers, booleans,
 * Go-style durations and byte sizes, and the wrappers for optional and opaque values.
 *
 * @module
 */
import { type CommonOptions, describe, type Spec } from "./spec.ts";
import { nearestKey } from "../suggest.ts";
import { formatDuration, parseDuration, parseSize } from "./units.ts";

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
    fits: options.fits,
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
      const suggestion = nearestKey(value, [
        ...options.oneOf,
        ...Object.keys(options.aliases ?? {}),
      ]);
      const hint = suggestion === undefined
        ? ""
        : `; did you mean "${options.aliases?.[suggestion] ?? suggestion}"?`;
      throw new RangeError(`${describe(raw)} is not one of ${options.oneOf.join(", ")}${hint}`);
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
    fits: options.fits,
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
