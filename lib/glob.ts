/**
 * Shell-style globs (`*`, `?`) for model and profile filters.
 *
 * @module
 */

/** Compiles a glob to an anchored, case-sensitive regular expression. */
export function globToRegExp(glob: string): RegExp {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll(
    "?",
    ".",
  );
  return new RegExp(`^${source}$`);
}

/**
 * A predicate keeping names that match an include glob (or any name when there are none)
 * and match no exclude glob. Exclude wins.
 */
export function globFilter(
  include: readonly string[],
  exclude: readonly string[],
): (name: string) => boolean {
  const includes = include.map(globToRegExp);
  const excludes = exclude.map(globToRegExp);
  return (name) =>
    (includes.length === 0 || includes.some((re) => re.test(name))) &&
    !excludes.some((re) => re.test(name));
}
