/**
 * The parts of a request URL, split by position. A URL built from a client's absurd
 * `Host` header (`evil:99999`) does not parse with `new URL`, so olla-ts never parses the
 * request URL.
 *
 * @module
 */

/** Protocol, path and query of a request URL. */
export interface RequestTarget {
  /** `http` or `https`. */
  readonly proto: string;
  /** Path as sent (percent-encoding kept). */
  readonly path: string;
  /** Query string with its `?`, or "". */
  readonly search: string;
}

/** Splits a request URL into protocol, path and query without parsing it. */
export function splitTarget(url: string): RequestTarget {
  const schemeEnd = url.indexOf("://");
  const pathStart = url.indexOf("/", schemeEnd + 3);
  const target = pathStart === -1 ? "/" : url.slice(pathStart);
  const question = target.indexOf("?");
  return {
    proto: url.slice(0, Math.max(0, schemeEnd)) || "http",
    path: question === -1 ? target : target.slice(0, question),
    search: question === -1 ? "" : target.slice(question),
  };
}
