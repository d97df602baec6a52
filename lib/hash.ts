/**
 * Fast non-cryptographic string hashes, for keys that need spread rather than strength:
 * sticky-session pins, status ETags, and Olla's endpoint ids.
 *
 * @module
 */

/** 53-bit hash (cyrb53) of bytes or a string's UTF-16 code units, in base 36. */
export function hash53(bytes: Uint8Array | string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const code = typeof bytes === "string" ? bytes.charCodeAt(i) : bytes[i];
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/**
 * 32-bit FNV-1a of a string's UTF-8 bytes, in base 36: the hash Olla names endpoints by
 * in its status answers, so the same URL gets the same id from both.
 */
export function fnv1a32(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
