/**
 * Olla's endpoint ids: FNV-1a 32 of the endpoint's URL without credentials, query or
 * fragment, in base 36. Endpoints sharing such a URL get `-0`, `-1`, ... in name order.
 * `/internal/status`, `/internal/status/endpoints` and `/internal/status/models` show
 * the same id for the same endpoint, as Olla's do.
 *
 * @module
 */
import { fnv1a32 } from "../../hash.ts";
import type { EndpointView } from "../../registry/endpoint.ts";

/** A URL as Olla displays it: user info, query and fragment dropped, otherwise as written. */
export function displayUrl(raw: string): string {
  const cut = raw.search(/[?#]/);
  const withoutQuery = cut === -1 ? raw : raw.slice(0, cut);
  return withoutQuery.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
}

/** Every endpoint's id, by endpoint name. */
export function endpointIds(endpoints: readonly EndpointView[]): Map<string, string> {
  const byUrl = new Map<string, EndpointView[]>();
  for (const endpoint of endpoints) {
    const url = displayUrl(endpoint.config.url);
    byUrl.set(url, [...(byUrl.get(url) ?? []), endpoint]);
  }
  const ids = new Map<string, string>();
  for (const [url, siblings] of byUrl) {
    const base = fnv1a32(url);
    if (siblings.length === 1) {
      ids.set(siblings[0].name, base);
      continue;
    }
    siblings.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    siblings.forEach((endpoint, index) => ids.set(endpoint.name, `${base}-${index}`));
  }
  return ids;
}
