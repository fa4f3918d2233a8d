// The allocator (pure): which address each range set gives an owner, from a snapshot of the
// reservations and the round-robin cursors. No I/O: FileIpam reads the snapshot under the network's
// lock, calls chooseAddresses, then reserves the fresh ones it chose.
import { IpamError, type Allocation, type Owner } from './types.js';
import {
  describeRangeSet, formatAddress, isAllocatable, parseAddress, rangeFor,
  type Address, type ParsedRange, type ParsedRangeSet,
} from './range.js';

/** A reservation as read from the store; `owner` undefined when its record is malformed. */
export interface HeldIp {
  ip: string;
  owner: Owner | undefined;
}

export interface ChosenAddress {
  rangeSetIndex: number;
  range: ParsedRange;
  ip: string; // canonical text
  /** true: this call must reserve it; false: the owner already holds it (idempotent ADD). */
  fresh: boolean;
}

export function sameOwner(a: Owner | undefined, b: Owner): boolean {
  return a !== undefined && a.containerId === b.containerId && a.ifname === b.ifname;
}

/**
 * host-local's round robin: the first allocatable address after `cursor` (the set's last reserved
 * address) that `isTaken` does not claim, walking the set's ranges in order and wrapping around, so a
 * just-released address is the last to be reused. Without a usable cursor (absent, other family,
 * outside the set) the walk starts at the first range's start. undefined when every address is taken.
 * The walk visits each address at most once and stops at the first free one, so it ends after at
 * most (taken + gateways + 1) steps even in an IPv6 /64.
 */
export function nextFree(set: ParsedRangeSet, isTaken: (value: bigint) => boolean, cursor?: Address): bigint | undefined {
  const ranges = set.ranges;
  let ri = 0;
  let cand = ranges[0]!.start;
  const at = cursor ? ranges.findIndex((r) => cursor.family === r.family && cursor.value >= r.start && cursor.value <= r.end) : -1;
  if (at >= 0) {
    ri = at;
    cand = cursor!.value + 1n;
    if (cand > ranges[ri]!.end) {
      ri = (ri + 1) % ranges.length;
      cand = ranges[ri]!.start;
    }
  }
  const firstRi = ri;
  const first = cand;
  for (;;) {
    if (!set.gateways.has(cand) && !isTaken(cand)) return cand;
    if (cand === ranges[ri]!.end) {
      ri = (ri + 1) % ranges.length;
      cand = ranges[ri]!.start;
    } else {
      cand++;
    }
    if (ri === firstRi && cand === first) return undefined;
  }
}

/**
 * Map requested IPs (CNI `ips`) to range sets: each must be an allocatable address of exactly one
 * set, and a set takes at most one. Duplicates of the same address collapse.
 */
export function matchRequested(sets: ParsedRangeSet[], requested: unknown, field = 'ips'): Map<number, Address> {
  const out = new Map<number, Address>();
  if (requested === undefined) return out;
  if (!Array.isArray(requested)) throw new IpamError('invalid', `${field}: must be an array of IP addresses`);
  const fieldOf = new Map<number, string>();
  for (const [i, text] of requested.entries()) {
    const f = `${field}[${i}]`;
    const a = parseAddress(text, f);
    const quoted = `${f} ${JSON.stringify(text)}`;
    const set = sets.find((s) => rangeFor(s, a) !== undefined);
    if (!set) {
      const where = sets.map((s) => `${s.field}: ${describeRangeSet(s)}`).join('; ');
      throw new IpamError('invalid', `${quoted}: not in any range set (${where})`);
    }
    if (!isAllocatable(set, a)) throw new IpamError('invalid', `${quoted}: is a gateway, never allocated`);
    const prior = out.get(set.index);
    if (prior && prior.value === a.value) continue;
    if (prior) {
      throw new IpamError('invalid', `${quoted}: range set ${set.field} already has requested ${fieldOf.get(set.index)} ${formatAddress(prior.family, prior.value)} (one address per range set)`);
    }
    out.set(set.index, a);
    fieldOf.set(set.index, f);
  }
  return out;
}

interface Snapshot {
  taken: Map<string, Owner | undefined>; // "family:value" → owner
  byOwner: Address[]; // addresses the owner holds, ascending
}

const key = (family: number, value: bigint): string => `${family}:${value}`;

function snapshot(reservations: readonly HeldIp[], owner: Owner): Snapshot {
  const taken = new Map<string, Owner | undefined>();
  const byOwner: Address[] = [];
  for (const r of reservations) {
    let a: Address;
    try {
      a = parseAddress(r.ip, 'ip');
    } catch {
      continue; // not an address: not a reservation
    }
    taken.set(key(a.family, a.value), r.owner);
    if (sameOwner(r.owner, owner)) byOwner.push(a);
  }
  byOwner.sort((x, y) => x.family - y.family || (x.value < y.value ? -1 : x.value > y.value ? 1 : 0));
  return { taken, byOwner };
}

function parseCursor(text: string | undefined): Address | undefined {
  if (text === undefined) return undefined;
  try {
    return parseAddress(text.trim(), 'cursor');
  } catch {
    return undefined; // a garbled cursor only costs round robin once
  }
}

function chooseInSet(set: ParsedRangeSet, snap: Snapshot, owner: Owner, cursor: Address | undefined, requested: Address | undefined): ChosenAddress {
  // A held address the config has since turned into a gateway is not handed out again.
  const held = snap.byOwner.find((a) => isAllocatable(set, a));
  const chosen = (a: Address, fresh: boolean): ChosenAddress => ({
    rangeSetIndex: set.index, range: rangeFor(set, a)!, ip: formatAddress(a.family, a.value), fresh,
  });
  if (requested) {
    const text = formatAddress(requested.family, requested.value);
    if (held && held.value === requested.value) return chosen(held, false);
    if (held) {
      throw new IpamError('unavailable', `requested IP ${text}: ${describeOwner(owner)} already holds ${formatAddress(held.family, held.value)} in range set ${set.field}`);
    }
    const k = key(requested.family, requested.value);
    if (snap.taken.has(k)) {
      throw new IpamError('unavailable', `requested IP ${text} is not available: reserved by ${describeOwner(snap.taken.get(k))}`);
    }
    return chosen(requested, true);
  }
  if (held) return chosen(held, false);
  const value = nextFree(set, (v) => snap.taken.has(key(set.family, v)), cursor);
  if (value === undefined) {
    throw new IpamError('exhausted', `range set ${set.field} (${describeRangeSet(set)}) is exhausted: no free address`);
  }
  return chosen({ family: set.family, value }, true);
}

export function describeOwner(owner: Owner | undefined): string {
  return owner ? `container ${JSON.stringify(owner.containerId)} ifname ${JSON.stringify(owner.ifname)}` : 'an unreadable reservation';
}

export interface AllocationInput {
  rangeSets: ParsedRangeSet[];
  reservations: readonly HeldIp[];
  owner: Owner;
  /** cursors[k]: last reserved IP text of range set k (undefined when none). */
  cursors: ReadonlyArray<string | undefined>;
  /** From matchRequested: range set index → requested address. */
  requested?: ReadonlyMap<number, Address>;
}

/**
 * One address per range set, all decided before anything is written: an exhausted or unavailable
 * set throws here, so a failing ADD normally reserves nothing at all. Range sets never overlap
 * (parseRangeSets), so the choice for one set cannot take an address another set wants.
 */
export function chooseAddresses(input: AllocationInput): ChosenAddress[] {
  const snap = snapshot(input.reservations, input.owner);
  return input.rangeSets.map((set) =>
    chooseInSet(set, snap, input.owner, parseCursor(input.cursors[set.index]), input.requested?.get(set.index)));
}

export function toAllocation(p: ChosenAddress): Allocation {
  return {
    address: `${p.ip}/${p.range.prefixLen}`,
    gateway: formatAddress(p.range.family, p.range.gateway),
    rangeSetIndex: p.rangeSetIndex,
  };
}
