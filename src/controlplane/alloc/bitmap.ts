// Shared by the three allocators: the error type, the JSON-safe bitmap (base64 of a bit array,
// bit i = byte i>>3, mask 0x80>>(i&7)) and the allocators' view of a network, on BigInts (from
// src/net) so IPv4 and IPv6 step alike. Everything here is pure; a bitmap is copied before it is changed, so an old state object
// is never mutated (callers may keep it for a compare-and-swap retry).
import { cidrBounds, formatCidr, hostBitsSet, networkOf, parseCidr, type Cidr } from '../../net/cidr.js';
import { ipToBigInt, tryParseIp, type Family } from '../../net/ip.js';

/**
 * config: the allocator's configuration is unusable; exhausted: nothing free; invalid: a requested
 * value is outside the range or reserved; taken: a requested value is already allocated;
 * state: a stored state does not match the configuration or is corrupt.
 */
export type AllocErrorCode = 'config' | 'exhausted' | 'invalid' | 'taken' | 'state';

export class AllocError extends Error {
  constructor(
    readonly code: AllocErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AllocError';
  }
}

export function emptyBitmap(size: number): Uint8Array {
  return new Uint8Array(Math.ceil(size / 8));
}

export function encodeBitmap(bits: Uint8Array): string {
  return Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength).toString('base64');
}

/** Strict: the length must fit `size` and the padding bits past `size` must be clear. */
export function decodeBitmap(text: unknown, size: number, what: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new AllocError('state', `${what}: bitmap must be a base64 string`);
  }
  const bits = new Uint8Array(Buffer.from(text, 'base64'));
  if (bits.length !== Math.ceil(size / 8)) {
    throw new AllocError('state', `${what}: bitmap has ${bits.length} bytes, expected ${Math.ceil(size / 8)} for ${size} entries`);
  }
  for (let i = size; i < bits.length * 8; i++) {
    if (testBit(bits, i)) throw new AllocError('state', `${what}: bitmap has bit ${i} set past the last entry ${size - 1}`);
  }
  return bits;
}

export function testBit(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3] & (0x80 >> (i & 7))) !== 0;
}

/** A copy with bit i set (or cleared): states stay immutable. */
export function withBit(bits: Uint8Array, i: number, on: boolean): Uint8Array {
  const next = new Uint8Array(bits);
  if (on) next[i >> 3] |= 0x80 >> (i & 7);
  else next[i >> 3] &= ~(0x80 >> (i & 7));
  return next;
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  return n;
});

export function countBits(bits: Uint8Array): number {
  let n = 0;
  for (const b of bits) n += POPCOUNT[b];
  return n;
}

/**
 * The first clear index in [from, size) then [lo, from), or -1: round robin from a cursor.
 * Whole 0xff bytes are skipped so a nearly full /12 (1M entries) scans in about a millisecond.
 */
export function findFree(bits: Uint8Array, size: number, from: number, lo: number): number {
  const scan = (start: number, end: number): number => {
    for (let i = start; i < end; ) {
      if ((i & 7) === 0 && bits[i >> 3] === 0xff) i += 8;
      else if (!testBit(bits, i)) return i;
      else i++;
    }
    return -1;
  };
  const start = Math.min(Math.max(from, lo), size);
  const hit = scan(start, size);
  return hit >= 0 ? hit : scan(lo, start);
}

export interface Network {
  family: Family;
  /** The network address (host bits zero). */
  base: bigint;
  prefixLen: number;
  /** Address width in bits: 32 or 128. */
  width: number;
  /** Canonical text, e.g. "10.244.0.0/16". */
  text: string;
  cidr: Cidr;
}

/**
 * Parses a network CIDR for a config field. Host bits must be zero: "10.244.1.0/16" is more likely
 * a typo than a wish for 10.244.0.0/16, so it is refused with the network it would mean.
 */
export function parseNetwork(text: unknown, field: string): Network {
  if (typeof text !== 'string') throw new AllocError('config', `${field}: must be a CIDR string, e.g. "10.244.0.0/16"`);
  let cidr: Cidr;
  try {
    cidr = parseCidr(text);
  } catch {
    throw new AllocError('config', `${field} ${JSON.stringify(text)}: not a CIDR (expected ADDRESS/PREFIX, e.g. "10.244.0.0/16")`);
  }
  const canonical = formatCidr(networkOf(cidr));
  if (hostBitsSet(cidr)) throw new AllocError('config', `${field} ${JSON.stringify(text)}: host bits are set; did you mean ${canonical}?`);
  const family = cidr.addr.family;
  return { family, base: cidrBounds(cidr).first, prefixLen: cidr.prefixLen, width: family === 4 ? 32 : 128, text: canonical, cidr };
}

/** An address text as a BigInt of the given family, or undefined when it is not one. */
export function parseAddressOf(family: Family, text: unknown): bigint | undefined {
  const ip = tryParseIp(text);
  return ip?.family === family ? ipToBigInt(ip.bytes) : undefined;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-negative safe integer below `limit`, for cursors and indexes read back from storage. */
export function checkIndex(v: unknown, limit: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= limit) {
    throw new AllocError('state', `${what}: must be an integer in 0..${limit - 1}, got ${JSON.stringify(v)}`);
  }
  return v;
}
