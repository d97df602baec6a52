/**
 * Removing secrets from text that is shown to people: URLs in status output and logs.
 *
 * @module
 */

const SECRET_PARAM_REGEXP = /(key|token|secret|password|passwd|auth|signature|sig|credential)/i;

/**
 * A URL safe to print: user info removed and the values of query parameters whose names
 * suggest a secret (`api_key`, `token`, `signature`, ...) replaced by `REDACTED`.
 * Text that is not a URL is returned with any query string dropped.
 *
 * @example Usage
 * ```ts
 * redactUrl("http://u:p@host/v1?api_key=abc&x=1"); // "http://host/v1?api_key=REDACTED&x=1"
 * ```
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return redactPathAndQuery(text);
  }
  url.username = "";
  url.password = "";
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM_REGEXP.test(name)) url.searchParams.set(name, "REDACTED");
  }
  return url.href;
}

/** A path with query string whose secret-looking parameter values are redacted. */
export function redactPathAndQuery(pathAndQuery: string): string {
  const question = pathAndQuery.indexOf("?");
  if (question === -1) return pathAndQuery;
  const params = new URLSearchParams(pathAndQuery.slice(question + 1));
  for (const name of [...params.keys()]) {
    if (SECRET_PARAM_REGEXP.test(name)) params.set(name, "REDACTED");
  }
  return `${pathAndQuery.slice(0, question)}?${params}`;
}
