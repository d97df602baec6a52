/**
 * The core of olla-ts's small declarative schema: a {@linkcode Spec} turns a raw YAML value
 * into a typed, defaulted value, collecting every problem in a {@linkcode ParseContext}
 * (with its path, and its file position when the value came from a file) instead of
 * stopping at the first. One tree of specs describes every configuration key once: its
 * type, default, documentation, environment override and whether olla-ts acts on it; the
 * same tree validates a file, fills in defaults, warns about unknown keys and renders
 * `config.example.yaml`. Scalar specs are in scalars.ts, lists and objects in composites.ts.
 *
 * @module
 */
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
  /** Environment variables that override this key after the file is read (first set wins). */
  readonly env?: string | readonly string[];
  /** When set, the key is accepted but olla-ts does not act on it; says why. */
  readonly unsupported?: string;
  /**
   * For an `unsupported` key: values olla-ts already behaves as (Olla's `write_timeout: 0s`
   * is olla-ts's only behaviour), which are accepted without being reported.
   */
  readonly fits?: (value: unknown) => boolean;
  /** YAML text shown (commented out) in the example when there is no default to show. */
  readonly example?: string;
  parse(raw: unknown, path: Path, ctx: ParseContext): T;
  /** Renders a default value as YAML scalar text. */
  show(value: T): string;
}

/** The value type a spec produces. */
export type SpecType<S> = S extends Spec<infer T> ? T : never;

/** Options every spec takes. */
export interface CommonOptions {
  doc: string;
  env?: string | readonly string[];
  unsupported?: string;
  fits?: (value: unknown) => boolean;
  example?: string;
}

/** A raw value as error messages show it. */
export function describe(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : JSON.stringify(value) ?? String(value);
}
