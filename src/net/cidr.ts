// CIDRs (an address with a prefix length): strict parsing, network/broadcast, masks, host bits,
// containment, overlap, size and the nth address. Pure; byte-level on the 4 or 16 address bytes.
//
// The prefix length is decimal digits in one spelling: "/08" is 8 to some parsers (ip-cidr,
// ip-address, Go before 1.17) and an error to others (Go's netip), so it is refused. A CIDR may
// have host bits set (10.244.1.5/24 is an interface address); callers that want a network check
// hostBitsSet() and word their own error. ip-cidr is not used underneath: it accepts "/08", turns
// "::ffff:10.0.0.0/104" into a /32-sized IPv4 range and returns uncompressed IPv6 text (see
// ip.ts for ip-address); test/unit/net.test.ts compares these functions with it.
import { AddressError, bigIntToIp, bitsOf, formatIp, ipToBigInt, parseIp, tryParseIp, type Family, type IpAddr } from './ip.js';

export interface Cidr {
  addr: IpAddr;
  prefixLen: number;
}

function cidrError(text: string, reason: 'form' | 'prefix', detail: string): AddressError {
  return new AddressError(`invalid CIDR ${JSON.stringify(text)}: ${detail}`, { reason, detail, text });
}

/** ADDRESS/PREFIX, strict (see the top of this file and ip.ts); throws AddressError. */
export function parseCidr(text: string): Cidr {
  const slash = typeof text === 'string' ? text.indexOf('/') : -1;
  if (slash < 0) throw cidrError(String(text), 'form', 'expected ADDRESS/PREFIX, e.g. 10.244.1.0/24');
  const addr = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const max = bitsOf(addr.family);
  if (!/^\d{1,10}$/.test(prefixText)) throw cidrError(text, 'form', `prefix length must be 0-${max}`);
  const prefixLen = Number(prefixText);
  if (prefixLen > max) throw cidrError(text, 'prefix', `prefix length must be 0-${max}`);
  if (String(prefixLen) !== prefixText) {
    throw cidrError(text, 'prefix', `prefix length ${JSON.stringify(prefixText)}: write it without leading zeros (/${prefixLen})`);
  }
  return { addr, prefixLen };
}

/** The CIDR, or undefined for anything that is not one. */
export function tryParseCidr(text: unknown): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.addr.bytes)}/${c.prefixLen}`;
}

/** The netmask of a prefix: 4 or 16 bytes, prefixLen leading one bits. */
export function prefixMask(family: Family, prefixLen: number): Buffer {
  const out = Buffer.alloc(family === 4 ? 4 : 16);
  for (let i = 0; i < out.length; i++) out[i] = (0xff00 >> Math.max(0, Math.min(8, prefixLen - i * 8))) & 0xff;
  return out;
}

/** A copy of the address bytes with every bit after prefixLen cleared. */
export function maskBytes(bytes: Uint8Array, prefixLen: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) out[i]! &= (0xff00 >> Math.max(0, Math.min(8, prefixLen - i * 8))) & 0xff;
  return out;
}

/** Whether any bit after the prefix is set: 10.244.1.5/24 yes, 10.244.1.0/24 no. */
export function hostBitsSet(c: Cidr): boolean {
  return !maskBytes(c.addr.bytes, c.prefixLen).equals(c.addr.bytes);
}

/** The network: host bits cleared (10.244.1.5/24 → 10.244.1.0/24). */
export function networkOf(c: Cidr): Cidr {
  return { addr: { family: c.addr.family, bytes: maskBytes(c.addr.bytes, c.prefixLen) }, prefixLen: c.prefixLen };
}

/** Canonical network text of a CIDR text: "10.244.1.5/24" → "10.244.1.0/24" (throws AddressError). */
export function networkCidr(text: string): string {
  return formatCidr(networkOf(parseCidr(text)));
}

/** The last address of the CIDR: every host bit set (the IPv4 broadcast address). */
export function broadcastOf(c: Cidr): IpAddr {
  const out = Buffer.from(c.addr.bytes);
  for (let i = 0; i < out.length; i++) out[i]! |= ~(0xff00 >> Math.max(0, Math.min(8, c.prefixLen - i * 8))) & 0xff;
  return { family: c.addr.family, bytes: out };
}

/** Network and last address as BigInts, for allocators and range arithmetic. */
export function cidrBounds(c: Cidr): { first: bigint; last: bigint } {
  const host = (1n << BigInt(bitsOf(c.addr.family) - c.prefixLen)) - 1n;
  const first = ipToBigInt(c.addr.bytes) & ~host;
  return { first, last: first | host };
}

/** How many addresses: 2^(bits - prefixLen). */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.addr.family) - c.prefixLen);
}

/** The address n places after the network address; RangeError outside 0..size-1. */
export function nthAddress(c: Cidr, n: bigint | number): IpAddr {
  const offset = BigInt(n);
  if (offset < 0n || offset >= cidrSize(c)) throw new RangeError(`address #${offset} is outside ${formatCidr(c)} (${cidrSize(c)} addresses)`);
  return bigIntToIp(c.addr.family, cidrBounds(c).first + offset);
}

/** Whether the first prefixLen bits of a and b are equal (same family assumed). */
function samePrefix(a: Uint8Array, b: Uint8Array, prefixLen: number): boolean {
  const whole = prefixLen >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefixLen & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** Whether the address lies in the CIDR: same family (no unmapping) and the prefix bits equal. */
export function cidrContains(c: Cidr, a: IpAddr): boolean {
  return c.addr.family === a.family && samePrefix(c.addr.bytes, a.bytes, c.prefixLen);
}

/** Whether the two CIDRs share an address: same family and equal on the shorter prefix. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.addr.family === b.addr.family && samePrefix(a.addr.bytes, b.addr.bytes, Math.min(a.prefixLen, b.prefixLen));
}

/** Whether `inner` lies entirely in `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return inner.prefixLen >= outer.prefixLen && cidrOverlaps(outer, inner);
}

/** cidrContains on texts; false when either does not parse (for checks that refuse anything unknown). */
export function textCidrContains(cidr: string, ip: string): boolean {
  const c = tryParseCidr(cidr);
  const a = tryParseIp(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}
