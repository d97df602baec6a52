/**
 * Where on an endpoint a request goes: a profile path (or a configured override, which
 * may be an absolute URL) resolved against the endpoint's base URL.
 *
 * @module
 */

/** Resolves a path or absolute URL against the endpoint's base URL. */
export function endpointUrl(endpoint: { readonly baseUrl: string }, pathOrUrl: string): string {
  if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl;
  return `${endpoint.baseUrl}${pathOrUrl.startsWith("/") ? "" : "/"}${pathOrUrl}`;
}
