/**
 * IP address and CIDR matching for IPv4 and IPv6. IPv4 addresses are held as
 * IPv4-mapped IPv6 (`::ffff:a.b.c.d`) so that `127.0.0.0/8` also matches a client the
 * runtime reports as `::ffff:127.0.0.1`.
 *
 * @module
 */

/** A parsed CIDR block. */
export interface Cidr {
  readonly text: string;
  readonly network: bigint;
  readonly mask: bigint;
}

const ALL_ONES = (1n << 128n) - 1n;
const V4_MAPPED_PREFIX = 0xffffn << 32n;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIPv6(text: string): bigint | undefined {
  let head = text;
  let tail = "";
  const doubleColon = text.indexOf("::");
  if (doubleColon !== -1) {
    if (text.indexOf("::", doubleColon + 1) !== -1) return undefined;
    head = text.slice(0, doubleColon);
    tail = text.slice(doubleColon + 2);
  }
  const groups = (part: string): bigint[] | undefined => {
    if (part === "") return [];
    const out: bigint[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        out.push(BigInt(`0x${piece}`));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const headGroups = groups(head);
  const tailGroups = groups(tail);
  if (!headGroups || !tailGroups) return undefined;
  const missing = 8 - headGroups.length - tailGroups.length;
  if (doubleColon === -1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...headGroups, ...Array(doubleColon === -1 ? 0 : missing).fill(0n), ...tailGroups];
  return all.reduce((value, group) => (value << 16n) | group, 0n);
}

/** Parses an IPv4 or IPv6 address (brackets and zone ids allowed) to a 128-bit value. */
export function parseIp(text: string): bigint | undefined {
  const bare = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = parseIPv4(bare);
  if (v4 !== undefined) return V4_MAPPED_PREFIX | v4;
  return bare.includes(":") ? parseIPv6(bare) : undefined;
}

/**
 * Parses `a.b.c.d/n` or `x::y/n`; a bare address is a single-host block.
 *
 * @throws {RangeError} naming the text when it is not a CIDR block.
 */
export function parseCidr(text: string): Cidr {
  const [address, bitsText, extra] = text.trim().split("/");
  const ip = parseIp(address);
  const isV4 = parseIPv4(address) !== undefined;
  const maxBits = isV4 ? 32 : 128;
  const bits = bitsText === undefined ? maxBits : Number(bitsText);
  if (
    ip === undefined || extra !== undefined || !Number.isInteger(bits) || bits < 0 ||
    bits > maxBits || (bitsText !== undefined && !/^\d+$/.test(bitsText))
  ) {
    throw new RangeError(
      `Cannot parse CIDR "${text}": expected an address/prefix such as 10.0.0.0/8`,
    );
  }
  const prefix = isV4 ? bits + 96 : bits;
  const mask = prefix === 0 ? 0n : (ALL_ONES << BigInt(128 - prefix)) & ALL_ONES;
  return { text, network: ip & mask, mask };
}

/** Whether `ip` (text) lies in any of the blocks. Unparsable addresses match nothing. */
export function ipInAny(ip: string, blocks: readonly Cidr[]): boolean {
  const value = parseIp(ip);
  if (value === undefined) return false;
  return blocks.some((block) => (value & block.mask) === block.network);
}
