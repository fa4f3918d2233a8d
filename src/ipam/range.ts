// Parsing and validation of host-local style ranges (pure). Addresses are BigInts so IPv6 ranges
// count and step like IPv4 ones. Every error is an IpamError('invalid') naming the config field.
import { cidrBounds, cidrOverlaps, formatCidr, hostBitsSet, networkOf, parseCidr, type Cidr } from '../net/cidr.js';
import { AddressError, bitsOf, formatBigInt, ipToBigInt, parseIp, tryParseIp, type Family } from '../net/ip.js';
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
  /** The same gateways, ascending (counting those inside a range is a binary search). */
  sortedGateways: readonly bigint[];
  /** The ranges by start address (they never overlap): rangeFor is a binary search. */
  byStart: readonly ParsedRange[];
}

/** Ranges of one network, all sets together: every /24 of a /8, ~1 s to parse; more is a mistake. */
export const MAX_RANGES = 65_536;

function invalid(message: string): IpamError {
  return new IpamError('invalid', message);
}

/** "10.1.2.3" → { family: 4, value: 0x0a010203n }; throws IpamError naming `field`. */
export function parseAddress(text: unknown, field: string): Address {
  if (typeof text !== 'string') throw invalid(`${field}: must be a string, got ${describeType(text)}`);
  let family: Family;
  let bytes: Buffer;
  try {
    ({ family, bytes } = parseIp(text));
  } catch {
    throw invalid(`${field} ${JSON.stringify(text)}: not an IP address`);
  }
  return { family, value: ipToBigInt(bytes) };
}

/** Canonical text (RFC 5952 for IPv6), also the reservation's file name. */
export const formatAddress: (family: Family, value: bigint) => string = formatBigInt;

/** Canonical text of any parseable address, or undefined (for names read back from disk). */
export function canonicalIp(text: string): string | undefined {
  const a = tryParseIp(text);
  return a && formatBigInt(a.family, ipToBigInt(a.bytes));
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
  const quoted = `${field} ${JSON.stringify(text)}`;
  let cidr: Cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    const e = err as AddressError;
    if (e.reason === 'address') throw invalid(`${field} ${JSON.stringify(e.text)}: not an IP address`);
    throw invalid(`${quoted}: ${e.reason === 'form' ? 'not a CIDR (expected ADDRESS/PREFIX, e.g. 10.244.1.0/24)' : e.detail}`);
  }
  const { family } = cidr.addr;
  const { prefixLen } = cidr;
  const bits = bitsOf(family);
  if (prefixLen === 0) throw invalid(`${quoted}: prefix length 0 covers every address, the node's own included; use the pod subnet`);
  // Like host-local: a /31 or /32 (/127, /128) has no address left once network and gateway are out.
  if (prefixLen > bits - 2) throw invalid(`${quoted}: too small to allocate from (prefix must be at most /${bits - 2})`);
  if (hostBitsSet(cidr)) throw invalid(`${quoted}: host bits set (the network address is ${formatCidr(networkOf(cidr))})`);
  const special = SPECIAL_BLOCKS.find((b) => cidrOverlaps(b.cidr, cidr));
  if (special) throw invalid(`${quoted}: overlaps ${special.name}, which no pod address may come from`);
  const { first, last } = cidrBounds(cidr);
  return { family, network: first, prefixLen, last };
}

/** Blocks that are never a host's unicast address: a pod subnet must not touch them. */
const SPECIAL_BLOCKS = ([
  ['0.0.0.0/8', '"this network"'],
  ['127.0.0.0/8', 'loopback'],
  ['224.0.0.0/4', 'multicast'],
  ['::/8', 'unspecified, loopback, IPv4-mapped'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
] as const).map(([cidr, what]) => ({ cidr: parseCidr(cidr), name: `${cidr} (${what})` }));

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

type BaseRangeSet = Omit<ParsedRangeSet, 'gateways' | 'sortedGateways' | 'byStart'>;

/** A range with its position in the config, to name the later of two overlapping ranges. */
interface Placed {
  range: ParsedRange;
  set: number;
  pos: number;
}

const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const later = (a: Placed, b: Placed): boolean => a.set > b.set || (a.set === b.set && a.pos > b.pos);

/**
 * Two overlapping ranges, the later one (in config order) first; undefined when none overlap.
 * Sorted by start, a range overlaps an earlier one exactly when it starts before the largest end
 * so far, so one sweep finds an overlap in O(n log n) (pairwise checks took minutes at 50,000).
 */
function findOverlap(placed: Placed[]): [Placed, Placed] | undefined {
  const sorted = [...placed].sort((a, b) => a.range.family - b.range.family || cmp(a.range.start, b.range.start));
  let reach: Placed | undefined; // the range reaching furthest so far, in this family
  for (const p of sorted) {
    if (reach && reach.range.family === p.range.family && p.range.start <= reach.range.end) {
      return later(p, reach) ? [p, reach] : [reach, p];
    }
    if (!reach || reach.range.family !== p.range.family || p.range.end > reach.range.end) reach = p;
  }
  return undefined;
}

function parseRangeSetOnly(set: unknown, index: number, field: string): BaseRangeSet {
  if (!Array.isArray(set)) throw invalid(`${field}: must be an array of ranges, got ${describeType(set)}`);
  if (set.length === 0) throw invalid(`${field}: empty range set (needs at least one range)`);
  const ranges: ParsedRange[] = [];
  for (const [i, item] of set.entries()) {
    const r = parseRange(item, `${field}[${i}]`);
    const first = ranges[0];
    if (first && r.family !== first.family) {
      throw invalid(`${r.field}.subnet ${JSON.stringify(r.subnet)}: ${familyName(r.family)} range in a range set of ${familyName(first.family)} ranges (${first.field})`);
    }
    ranges.push(r);
  }
  const clash = findOverlap(ranges.map((range, pos) => ({ range, set: index, pos })));
  if (clash) {
    const [r, o] = clash.map((p) => p.range) as [ParsedRange, ParsedRange];
    throw invalid(`${r.field}: ${describeRange(r)} overlaps ${o.field} (${describeRange(o)})`);
  }
  return { field, index, family: ranges[0]!.family, ranges };
}

/** How many of the ascending `sorted` lie in lo..hi. */
function countBetween(sorted: readonly bigint[], lo: bigint, hi: bigint): number {
  const firstAtLeast = (v: bigint): number => {
    let [a, b] = [0, sorted.length];
    while (a < b) {
      const m = (a + b) >> 1;
      if (sorted[m]! < v) a = m + 1;
      else b = m;
    }
    return a;
  };
  return firstAtLeast(hi + 1n) - firstAtLeast(lo);
}

function finish(sets: BaseRangeSet[]): ParsedRangeSet[] {
  const gateways: Record<Family, Set<bigint>> = { 4: new Set(), 6: new Set() };
  for (const s of sets) for (const r of s.ranges) gateways[r.family].add(r.gateway);
  const sorted: Record<Family, bigint[]> = { 4: [...gateways[4]].sort(cmp), 6: [...gateways[6]].sort(cmp) };
  const out = sets.map((s) => ({
    ...s, gateways: gateways[s.family], sortedGateways: sorted[s.family], byStart: [...s.ranges].sort((a, b) => cmp(a.start, b.start)),
  }));
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
  const count = sets.reduce((n: number, s: unknown) => n + (Array.isArray(s) ? s.length : 1), 0);
  if (count > MAX_RANGES) {
    throw invalid(`${field}: ${count} ranges, more than the ${MAX_RANGES} podwire accepts in one network; merge adjacent ranges into larger subnets`);
  }
  const parsed = sets.map((s, i) => parseRangeSetOnly(s, i, `${field}[${i}]`));
  // Each set is free of overlaps now, so any overlap found is between two sets.
  const clash = findOverlap(parsed.flatMap((s) => s.ranges.map((range, pos) => ({ range, set: s.index, pos }))));
  if (clash) {
    const [r, o] = clash.map((p) => p.range) as [ParsedRange, ParsedRange];
    throw invalid(`${r.field}: ${describeRange(r)} overlaps ${o.field} (${describeRange(o)}) of another range set`);
  }
  return finish(parsed);
}

/** The range of the set whose start..end holds the address (gateways included), if any. */
export function rangeFor(set: ParsedRangeSet, a: Address): ParsedRange | undefined {
  if (a.family !== set.family) return undefined;
  // The last range starting at or before the address is the only one that can hold it.
  const ranges = set.byStart;
  let [lo, hi] = [0, ranges.length];
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (ranges[m]!.start <= a.value) lo = m + 1;
    else hi = m;
  }
  const r = ranges[lo - 1];
  return r !== undefined && a.value <= r.end ? r : undefined;
}

export function isAllocatable(set: ParsedRangeSet, a: Address): boolean {
  return rangeFor(set, a) !== undefined && !set.gateways.has(a.value);
}

function allocatableInRange(set: Pick<ParsedRangeSet, 'sortedGateways'>, r: ParsedRange): bigint {
  return r.end - r.start + 1n - BigInt(countBetween(set.sortedGateways, r.start, r.end));
}

/** How many addresses the set can hand out in total (BigInt: an IPv6 /64 has 2^64). */
export function allocatableCount(set: ParsedRangeSet): bigint {
  return set.ranges.reduce((sum, r) => sum + allocatableInRange(set, r), 0n);
}
