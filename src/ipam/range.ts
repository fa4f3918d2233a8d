// Parsing and validation of host-local style ranges (pure). Addresses are BigInts so IPv6 ranges
// count and step like IPv4 ones. Every error is an IpamError('invalid') naming the config field.
import { formatIp, parseIp, type Family } from '../netlink/ip.js';
import { IpamError, type IpRange } from './types.js';

export interface Address {
  family: Family;
  value: bigint;
}

/** A validated range: allocatable addresses are start..end (inclusive) minus the set's gateways. */
export interface ParsedRange {
  field: string; // "ipam.ranges[0][1]"
  family: Family;
  subnet: string; // canonical CIDR
  prefixLen: number;
  network: bigint;
  last: bigint; // last address of the subnet (IPv4: broadcast)
  start: bigint;
  end: bigint;
  gateway: bigint;
}

export interface ParsedRangeSet {
  field: string; // "ipam.ranges[0]"
  index: number;
  family: Family;
  ranges: ParsedRange[];
  /** Never allocated: every gateway of every range (of this family) in the parsed config. */
  gateways: ReadonlySet<bigint>;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function invalid(message: string): IpamError {
  return new IpamError('invalid', message);
}

/** "10.1.2.3" → { family: 4, value: 0x0a010203n }; throws IpamError naming `field`. */
export function parseAddress(text: unknown, field: string): Address {
  if (typeof text !== 'string') throw invalid(`${field}: must be a string, got ${describeType(text)}`);
  // net.isIP accepts a zone ("fe80::1%eth0") that parseIp would silently drop.
  if (text.includes('%') || text.includes('/')) throw invalid(`${field} ${JSON.stringify(text)}: not an IP address`);
  let bytes: Buffer;
  let family: Family;
  try {
    ({ bytes, family } = parseIp(text));
  } catch {
    throw invalid(`${field} ${JSON.stringify(text)}: not an IP address`);
  }
  return { family, value: BigInt('0x' + bytes.toString('hex')) };
}

/** Canonical text (RFC 5952 for IPv6), also the reservation's file name. */
export function formatAddress(family: Family, value: bigint): string {
  const size = family === 4 ? 4 : 16;
  const hex = value.toString(16).padStart(size * 2, '0');
  return formatIp(Buffer.from(hex, 'hex'));
}

/** Canonical text of any parseable address, or undefined (for names read back from disk). */
export function canonicalIp(text: string): string | undefined {
  try {
    const a = parseAddress(text, 'ip');
    return formatAddress(a.family, a.value);
  } catch {
    return undefined;
  }
}

function describeType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function familyName(f: Family): string {
  return f === 4 ? 'IPv4' : 'IPv6';
}

function parseSubnet(text: unknown, field: string): { family: Family; network: bigint; prefixLen: number; last: bigint } {
  if (text === undefined) throw invalid(`${field}: required (a CIDR, e.g. "10.244.1.0/24")`);
  if (typeof text !== 'string') throw invalid(`${field}: must be a string, got ${describeType(text)}`);
  const slash = text.indexOf('/');
  const prefixText = text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(prefixText)) {
    throw invalid(`${field} ${JSON.stringify(text)}: not a CIDR (expected ADDRESS/PREFIX, e.g. 10.244.1.0/24)`);
  }
  const addr = parseAddress(text.slice(0, slash), field);
  const bits = BITS[addr.family];
  const prefixLen = Number(prefixText);
  if (prefixLen > bits) throw invalid(`${field} ${JSON.stringify(text)}: prefix length must be 0-${bits}`);
  // Like host-local: a /31 or /32 (/127, /128) has no address left once network and gateway are out.
  if (prefixLen > bits - 2) {
    throw invalid(`${field} ${JSON.stringify(text)}: too small to allocate from (prefix must be at most /${bits - 2})`);
  }
  const hostMask = (1n << BigInt(bits - prefixLen)) - 1n;
  const network = addr.value & ~hostMask;
  if (network !== addr.value) {
    throw invalid(`${field} ${JSON.stringify(text)}: host bits set (the network address is ${formatAddress(addr.family, network)}/${prefixLen})`);
  }
  return { family: addr.family, network, prefixLen, last: network | hostMask };
}

/** One address field of a range: same family, inside the subnet, not the network or IPv4 broadcast. */
function parseHost(text: unknown, field: string, s: { family: Family; network: bigint; last: bigint }, subnet: string): bigint {
  const a = parseAddress(text, field);
  const quoted = `${field} ${JSON.stringify(text)}`;
  if (a.family !== s.family) throw invalid(`${quoted}: ${familyName(a.family)} address in ${familyName(s.family)} subnet ${subnet}`);
  if (a.value < s.network || a.value > s.last) throw invalid(`${quoted}: not in subnet ${subnet}`);
  if (a.value === s.network) throw invalid(`${quoted}: is the network address of ${subnet}`);
  if (s.family === 4 && a.value === s.last) throw invalid(`${quoted}: is the broadcast address of ${subnet}`);
  return a.value;
}

/**
 * Validate one range and fill in host-local's defaults: start = network + 1, end = broadcast - 1
 * (IPv4) or the last address (IPv6), gateway = network + 1.
 */
export function parseRange(range: unknown, field: string): ParsedRange {
  if (typeof range !== 'object' || range === null || Array.isArray(range)) {
    throw invalid(`${field}: must be an object with a subnet, got ${describeType(range)}`);
  }
  const r = range as Partial<Record<keyof IpRange, unknown>>;
  const s = parseSubnet(r.subnet, `${field}.subnet`);
  const subnet = `${formatAddress(s.family, s.network)}/${s.prefixLen}`;
  const defaultEnd = s.family === 4 ? s.last - 1n : s.last;
  const start = r.rangeStart === undefined ? s.network + 1n : parseHost(r.rangeStart, `${field}.rangeStart`, s, subnet);
  const end = r.rangeEnd === undefined ? defaultEnd : parseHost(r.rangeEnd, `${field}.rangeEnd`, s, subnet);
  const gateway = r.gateway === undefined ? s.network + 1n : parseHost(r.gateway, `${field}.gateway`, s, subnet);
  if (end < start) {
    const endText = r.rangeEnd === undefined ? formatAddress(s.family, end) : String(r.rangeEnd);
    throw invalid(`${field}.rangeEnd ${JSON.stringify(endText)}: before rangeStart ${formatAddress(s.family, start)}`);
  }
  return { field, family: s.family, subnet, prefixLen: s.prefixLen, network: s.network, last: s.last, start, end, gateway };
}

export function describeRange(r: ParsedRange): string {
  return `${formatAddress(r.family, r.start)}-${formatAddress(r.family, r.end)}`;
}

export function describeRangeSet(set: ParsedRangeSet): string {
  return set.ranges.map(describeRange).join(', ');
}

function overlaps(a: ParsedRange, b: ParsedRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

function parseRangeSetOnly(set: unknown, index: number, field: string): Omit<ParsedRangeSet, 'gateways'> {
  if (!Array.isArray(set)) throw invalid(`${field}: must be an array of ranges, got ${describeType(set)}`);
  if (set.length === 0) throw invalid(`${field}: empty range set (needs at least one range)`);
  const ranges: ParsedRange[] = [];
  for (const [i, item] of set.entries()) {
    const r = parseRange(item, `${field}[${i}]`);
    const first = ranges[0];
    if (first && r.family !== first.family) {
      throw invalid(`${r.field}.subnet ${JSON.stringify(r.subnet)}: ${familyName(r.family)} range in a range set of ${familyName(first.family)} ranges (${first.field})`);
    }
    const clash = ranges.find((o) => overlaps(o, r));
    if (clash) throw invalid(`${r.field}: ${describeRange(r)} overlaps ${clash.field} (${describeRange(clash)})`);
    ranges.push(r);
  }
  return { field, index, family: ranges[0]!.family, ranges };
}

function finish(sets: Array<Omit<ParsedRangeSet, 'gateways'>>): ParsedRangeSet[] {
  const gateways: Record<Family, Set<bigint>> = { 4: new Set(), 6: new Set() };
  for (const s of sets) for (const r of s.ranges) gateways[r.family].add(r.gateway);
  const out = sets.map((s) => ({ ...s, gateways: gateways[s.family] }));
  for (const s of out) {
    for (const r of s.ranges) {
      if (allocatableInRange(s, r) === 0n) throw invalid(`${r.field}: no allocatable address in ${describeRange(r)} (only a gateway)`);
    }
  }
  return out;
}

/** Validate a single range set (index names it in errors: ipam.ranges[index]). */
export function parseRangeSet(set: unknown, index = 0, field = `ipam.ranges[${index}]`): ParsedRangeSet {
  return finish([parseRangeSetOnly(set, index, field)])[0]!;
}

/** Validate host-local's `ranges`: at least one set, no range overlapping another in any set. */
export function parseRangeSets(sets: unknown, field = 'ipam.ranges'): ParsedRangeSet[] {
  if (!Array.isArray(sets)) throw invalid(`${field}: must be an array of range sets, got ${describeType(sets)}`);
  if (sets.length === 0) throw invalid(`${field}: no range sets (needs at least one)`);
  const parsed = sets.map((s, i) => parseRangeSetOnly(s, i, `${field}[${i}]`));
  for (const [i, a] of parsed.entries()) {
    for (const b of parsed.slice(i + 1)) {
      for (const rb of b.ranges) {
        const clash = a.ranges.find((ra) => overlaps(ra, rb));
        if (clash) throw invalid(`${rb.field}: ${describeRange(rb)} overlaps ${clash.field} (${describeRange(clash)}) of another range set`);
      }
    }
  }
  return finish(parsed);
}

/** The range of the set whose start..end holds the address (gateways included), if any. */
export function rangeFor(set: ParsedRangeSet, a: Address): ParsedRange | undefined {
  if (a.family !== set.family) return undefined;
  return set.ranges.find((r) => a.value >= r.start && a.value <= r.end);
}

export function isAllocatable(set: ParsedRangeSet, a: Address): boolean {
  return rangeFor(set, a) !== undefined && !set.gateways.has(a.value);
}

function allocatableInRange(set: Pick<ParsedRangeSet, 'gateways'>, r: ParsedRange): bigint {
  let n = r.end - r.start + 1n;
  for (const g of set.gateways) if (g >= r.start && g <= r.end) n--;
  return n;
}

/** How many addresses the set can hand out in total (BigInt: an IPv6 /64 has 2^64). */
export function allocatableCount(set: ParsedRangeSet): bigint {
  return set.ranges.reduce((sum, r) => sum + allocatableInRange(set, r), 0n);
}
