// What the nftables and iptables packet tracers (nft/trace.ts, iptables/trace.ts) share: the
// packet, the options, the result, and IPv4 CIDR matching. Pure.
import { cidrContains, parseCidr } from '../net/cidr.js';
import { tryParseIp } from '../net/ip.js';

export interface TracePacket {
  srcIp: string;
  dstIp: string;
  protocol: string;
  dstPort: number;
  hook: 'prerouting' | 'output';
  /** The node's own addresses: "is local" matches and the routing decision use them. */
  localAddresses: string[];
}

export interface TraceOptions {
  /** Which arm of a random pick to take (modulo the number of arms); 0 by default. */
  randomPick?: number;
  /** Initial affinity state (client IPs already recorded), by set or recent-list name. */
  affinity?: Record<string, string[]>;
}

export interface TraceResult {
  verdict: 'dnat' | 'reject' | 'drop' | 'accept';
  /** IP:PORT the packet was DNATed to. */
  dnatTo?: string;
  masquerade: boolean;
  /** Chains entered, in order. */
  path: string[];
  /** Every endpoint (IP:PORT) the random pick could have chosen; absent when none was evaluated. */
  candidates?: string[];
  /** Rules whose matches were evaluated: the per-packet cost. */
  rulesEvaluated: number;
  /**
   * nftables: the counter the DNAT bumped, `CHAIN IP:PORT` (a counted DNAT rule of that chain) or
   * `MAP KEY` (a counted element of a shared pick); `CHAIN *` for a counted numgen map pick (one
   * counter for the port). What `podwire services` reads back per endpoint.
   */
  counted?: string;
}

export class TraceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceError';
  }
}

/**
 * The packet as either tracer walks it: the fields NAT rewrites, what happened to it, and the named
 * address sets it is matched against and adds to (nft sets, iptables recent lists), seeded with
 * opts.affinity.
 */
export class PacketState {
  saddr: string;
  daddr: string;
  dport: number;
  readonly proto: string;
  mark = 0;
  masquerade = false;
  dnatTo?: string;
  candidates?: string[];
  counted?: string;
  rulesEvaluated = 0;
  readonly path: string[] = [];
  private readonly named = new Map<string, Set<string>>();

  constructor(protected readonly pkt: TracePacket, protected readonly opts: TraceOptions, initialSets: Iterable<readonly [string, readonly string[]]> = []) {
    this.saddr = pkt.srcIp;
    this.daddr = pkt.dstIp;
    this.dport = pkt.dstPort;
    this.proto = pkt.protocol.toLowerCase();
    for (const [name, elements] of initialSets) this.named.set(name, new Set(elements));
    for (const [name, ips] of Object.entries(opts.affinity ?? {})) for (const ip of ips) this.namedSet(name).add(ip);
  }

  protected namedSet(name: string): Set<string> {
    let s = this.named.get(name);
    if (!s) this.named.set(name, (s = new Set()));
    return s;
  }

  /** Which of n arms of a random pick this trace takes (opts.randomPick, modulo n). */
  protected pickOf(n: number): number {
    return (((this.opts.randomPick ?? 0) % n) + n) % n;
  }
}

/** IPv4 address in CIDR (or equal to a bare address). IPv6 never matches: the IRs are IPv4 only. */
export function inCidr(ip: string, cidr: string): boolean {
  const addr = tryParseIp(ip);
  if (addr?.family !== 4) return false;
  if (!cidr.includes('/')) return ip === cidr;
  return cidrContains(parseCidr(cidr), addr);
}
