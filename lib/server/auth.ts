/**
 * Inbound API keys (`server.auth`): each key has a name (used in logs and metrics) and
 * may be an admin key. Clients present a key as `Authorization: Bearer <key>` or
 * `X-Api-Key: <key>`. Keys are compared as SHA-256 digests with a constant-time
 * comparison against every configured key (no early exit), so neither the key's length
 * nor which key matched leaks through timing.
 *
 * @module
 */

/** A configured key. */
export interface ApiKey {
  readonly name: string;
  readonly key: string;
  readonly admin: boolean;
}

/** Who presented a valid key. */
export interface Principal {
  readonly name: string;
  readonly admin: boolean;
}

/** Compares two byte arrays in time that depends only on their length. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** The key a request presents, if any. */
export function presentedKey(headers: Headers): string | undefined {
  const authorization = headers.get("authorization");
  const bearer = authorization && /^bearer\s+(.+)$/i.exec(authorization.trim());
  if (bearer) return bearer[1].trim();
  const apiKey = headers.get("x-api-key")?.trim();
  return apiKey ? apiKey : undefined;
}

/** Options for {@linkcode KeyAuthenticator}. */
export interface KeyAuthenticatorOptions {
  /** @default {timingSafeEqual} (replaceable so tests can see it is used). */
  compare?: (a: Uint8Array, b: Uint8Array) => boolean;
}

/** Checks presented keys against the configured ones. */
export class KeyAuthenticator {
  readonly #keys: Promise<{ principal: Principal; digest: Uint8Array }[]>;
  readonly #compare: (a: Uint8Array, b: Uint8Array) => boolean;

  constructor(keys: readonly ApiKey[], options: KeyAuthenticatorOptions = {}) {
    this.#compare = options.compare ?? timingSafeEqual;
    this.#keys = Promise.all(
      keys.map(async ({ name, key, admin }) => ({
        principal: { name, admin },
        digest: await digest(key),
      })),
    );
  }

  /** The principal whose key the request presents, or `undefined`. */
  async authenticate(headers: Headers): Promise<Principal | undefined> {
    const key = presentedKey(headers);
    if (key === undefined) return undefined;
    const presented = await digest(key);
    let found: Principal | undefined;
    for (const entry of await this.#keys) {
      // Every key is compared, match or not, so timing does not depend on which matched.
      if (this.#compare(presented, entry.digest) && found === undefined) found = entry.principal;
    }
    return found;
  }
}
