/**
 * The client's address. The socket's peer is the client unless
 * `server.rate_limits.trust_proxy_headers` is on and the peer is a trusted proxy; then
 * `X-Forwarded-For` is read from the right, skipping trusted proxies, and the first
 * untrusted address is the client (`X-Real-IP` when there is no `X-Forwarded-For`).
 * A client can therefore never choose its own address by sending these headers.
 *
 * @module
 */
import { type Cidr, ipInAny, parseIp } from "../cidr.ts";

/** Options for {@linkcode resolveClientIp}. */
export interface ClientIpOptions {
  trustProxyHeaders: boolean;
  trustedProxies: readonly Cidr[];
}

/** The client address for a request arriving from `peer`. */
export function resolveClientIp(peer: string, headers: Headers, options: ClientIpOptions): string {
  if (!options.trustProxyHeaders || !ipInAny(peer, options.trustedProxies)) return peer;
  const forwarded = headers.get("x-forwarded-for");
  if (forwarded) {
    const hops = forwarded.split(",").map((hop) => hop.trim()).filter((hop) => hop !== "");
    for (let i = hops.length - 1; i >= 0; i--) {
      if (parseIp(hops[i]) === undefined) return peer;
      if (!ipInAny(hops[i], options.trustedProxies)) return hops[i];
    }
    return hops[0] ?? peer;
  }
  const realIp = headers.get("x-real-ip")?.trim();
  return realIp && parseIp(realIp) !== undefined ? realIp : peer;
}
