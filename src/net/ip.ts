// IP addresses: strict parsing, RFC 5952 formatting, BigInt/number conversions, ordering and the
// address classes validators ask about. Pure; nothing here imports podwire code.
//
// Parsing is as strict as Go's net/netip (what Kubernetes validates with): IPv4 is exactly four
// decimal octets without leading zeros ("010.0.0.1" is octal to inet_aton, decimal to others, so
// it is refused rather than guessed); IPv6 is RFC 4291 text, an embedded IPv4 tail allowed; a zone
// ("fe80::1%eth0"), brackets, a prefix or surrounding spaces are not an address. node:net's isIPv6
// does the IPv6 grammar (it matches RFC 4291 and refuses leading zeros in an IPv4 tail) except
// zones, which it accepts and which are refused here first.
//
// Why not ip-address (the design card's choice, under ip-cidr): it accepts "010.0.0.1" (as 10.0.0.1)
// and zones, costs 4-7 µs per IPv6 parse and 10-25 ms to load (the CNI plugin loads this module
// on every pod ADD/DEL). test/unit/net.test.ts checks this module against it instead.
import net from 'node:net';

export type Family = 4 | 6;

export interface IpAddr {
  family: Family;
  /** Network byte order: 4 bytes for IPv4, 16 for IPv6. */
  bytes: Buffer;
}

/**
 * reason: 'address' (not an IP address), 'form' (not ADDRESS/PREFIX, or a prefix that is not a
 * number), 'prefix' (prefix length out of range or spelt with leading zeros). `detail` is the
 * message without its "invalid CIDR "...": " head, for callers that word their own errors.
 */
export type AddressErrorReason = 'address' | 'form' | 'prefix';

export class AddressError extends Error {
  readonly reason: AddressErrorReason;
  readonly detail: string;
  /** The text that failed: the address part for reason 'address'. */
  readonly text: string;
  constructor(message: string, opts: { reason?: AddressErrorReason; detail?: string; text?: string } = {}) {
    super(message);
    this.name = 'AddressError';
    this.reason = opts.reason ?? 'address';
    this.detail = opts.detail ?? message;
    this.text = opts.text ?? '';
  }
}

export const bitsOf = (family: Family): 32 | 128 => (family === 4 ? 32 : 128);

export function familyOf(bytes: Uint8Array): Family {
  return bytes.length === 4 ? 4 : 6;
}

/**
 * A canonical dotted quad as a number (0..2^32-1), or -1 for anything else (leading zeros, fewer
 * or more octets, an octet above 255, any other character). The hot path of renderers' sort keys:
 * one pass over the characters, no allocation (split/map/Number cost ~4x as much at 10k services).
 */
export function ipv4Number(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || (digits > 0 && octet === 0)) return -1;
    octet = octet * 10 + d;
    if (octet > 255) return -1;
    digits++;
  }
  return dots === 3 && digits > 0 ? value * 256 + octet : -1;
}

/** a.b.c.d of a number 0..2^32-1. */
export function formatIpv4Number(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

function invalidIp(text: string): AddressError {
  let why = '';
  if (text.includes('%')) why = ': a zone (%...) is not part of an address';
  else if (/^\d+(\.\d+){3}$/.test(text)) why = /(^|\.)0\d/.test(text) ? ': leading zeros in an IPv4 octet are not allowed' : '';
  return new AddressError(`invalid IP address ${JSON.stringify(text)}${why}`, { reason: 'address', text });
}

/** Strict (see the top of this file); throws AddressError('invalid IP address "..."'). */
export function parseIp(text: string): IpAddr {
  if (typeof text === 'string') {
    const v4 = ipv4Number(text);
    if (v4 >= 0) {
      const bytes = Buffer.allocUnsafe(4);
      bytes.writeUInt32BE(v4, 0);
      return { family: 4, bytes };
    }
    if (!text.includes('%') && net.isIPv6(text)) return { family: 6, bytes: parseIpv6(text) };
  }
  throw invalidIp(String(text));
}

/** The address, or undefined for anything that is not one (any type, any non-strict text). */
export function tryParseIp(text: unknown): IpAddr | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    return parseIp(text);
  } catch {
    return undefined;
  }
}

/** Whether `text` is a (strict) IP address, of `family` when given. */
export function isIp(text: unknown, family?: Family): text is string {
  if (typeof text !== 'string') return false;
  if (ipv4Number(text) >= 0) return family !== 6;
  return family !== 4 && !text.includes('%') && net.isIPv6(text);
}

// Called only on text net.isIPv6 accepted: the grammar is known good, so this only places groups.
function parseIpv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let body = text;
  let tailBytes = 0;
  if (text.includes('.')) {
    const colon = text.lastIndexOf(':');
    out.writeUInt32BE(ipv4Number(text.slice(colon + 1)), 12);
    tailBytes = 4;
    body = text.slice(0, colon + 1);
    // "::1.2.3.4" / "1::1.2.3.4" end in "::" now; "1:2:3:4:5:6:1.2.3.4" ends in one ':' to drop.
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const gap = body.indexOf('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(gap < 0 ? body : body.slice(0, gap));
  const tail = gap < 0 ? [] : groups(body.slice(gap + 2));
  head.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  const tailStart = 16 - tailBytes - tail.length * 2;
  tail.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), tailStart + i * 2));
  return out;
}

/**
 * RFC 5952 text: lowercase hex, no leading zeros in a group, the longest run of two or more zero
 * groups (the first of equal runs) as "::". IPv4-mapped addresses print in hex (::ffff:a00:1),
 * as podwire always has; reservation file names depend on it.
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new AddressError(`cannot format a ${bytes.length}-byte address`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** The canonical text of an address text (throws AddressError when it is not one). */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text).bytes);
}

export function ipToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 4) return BigInt(((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
  return BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));
}

/** The address of `value` in `family`; RangeError when it does not fit (negative, or 2^32 for IPv4). */
export function bigIntToIp(family: Family, value: bigint): IpAddr {
  const width = bitsOf(family);
  if (value < 0n || value >> BigInt(width) !== 0n) throw new RangeError(`${value} is not an IPv${family} address value (0..2^${width}-1)`);
  if (family === 4) {
    const bytes = Buffer.allocUnsafe(4);
    bytes.writeUInt32BE(Number(value), 0);
    return { family, bytes };
  }
  return { family, bytes: Buffer.from(value.toString(16).padStart(32, '0'), 'hex') };
}

/** Canonical text of an address value (see bigIntToIp for the range). */
export function formatBigInt(family: Family, value: bigint): string {
  if (family === 4 && value >= 0n && value <= 0xffffffffn) return formatIpv4Number(Number(value));
  return formatIp(bigIntToIp(family, value).bytes);
}

/** Total order: IPv4 before IPv6, then numerically. */
export function compareIp(a: IpAddr, b: IpAddr): number {
  return a.family - b.family || Buffer.compare(a.bytes, b.bytes);
}

/** A string sort key: IPv4 before IPv6, each numerically (fixed-width hex), anything unparseable last, as text. */
export function ipSortKey(ip: string): string {
  const a = tryParseIp(ip);
  return a ? `${a.family}${a.bytes.toString('hex')}` : `9${ip}`;
}

const isMapped = (b: Uint8Array): boolean => b.length === 16 && b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0);

/** ::ffff:a.b.c.d as a.b.c.d (it reaches the IPv4 host, so IPv4 rules apply, as Go's Unmap); others unchanged. */
export function unmap4(a: IpAddr): IpAddr {
  return isMapped(a.bytes) ? { family: 4, bytes: Buffer.from(a.bytes.subarray(12)) } : a;
}

// Classes as Go's net/netip names them; callers unmap first when ::ffff:a.b.c.d should count as IPv4.

/** 0.0.0.0, :: */
export function isUnspecified(a: IpAddr): boolean {
  return a.bytes.every((x) => x === 0);
}

/** 127.0.0.0/8, ::1 */
export function isLoopback(a: IpAddr): boolean {
  const b = a.bytes;
  return a.family === 4 ? b[0] === 127 : b[15] === 1 && b.subarray(0, 15).every((x) => x === 0);
}

/** 169.254.0.0/16, fe80::/10 */
export function isLinkLocalUnicast(a: IpAddr): boolean {
  const b = a.bytes;
  return a.family === 4 ? b[0] === 169 && b[1] === 254 : b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

/** 224.0.0.0/4, ff00::/8 */
export function isMulticast(a: IpAddr): boolean {
  return a.family === 4 ? (a.bytes[0]! & 0xf0) === 0xe0 : a.bytes[0] === 0xff;
}

/** 224.0.0.0/24, ffX2::/16 (multicast with link-local scope) */
export function isLinkLocalMulticast(a: IpAddr): boolean {
  const b = a.bytes;
  return a.family === 4 ? b[0] === 224 && b[1] === 0 && b[2] === 0 : b[0] === 0xff && (b[1]! & 0x0f) === 2;
}
