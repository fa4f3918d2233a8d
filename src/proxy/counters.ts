// Per-endpoint DNAT counters of the live ruleset, whatever the mode: what the parsers
// (nft/counters.ts, iptables/counters.ts) read back, and how a service port's endpoints find
// theirs (pure). The counters sit on NAT rules, so they count the first packet of each
// connection (later packets follow the conntrack entry and never see a nat chain): `packets` is
// the number of connections DNATed to the endpoint, `bytes` those first packets' bytes.
import type { ServicePortEndpoints } from './types.js';

export interface DnatCounter {
  /** The chain (nft rule, iptables SEP rule) or map (nft shared-pick element) holding the counter. */
  in: string;
  /** A rule's service port key (from its chain's or rule's comment). */
  portKey?: string;
  /** A shared-pick element's destination: ClusterIP / external IP / LB IP . port, or node IP . NodePort. */
  dest?: { ip: string; port: number; proto: string };
  /** Where it DNATs to; absent for a numgen map pick (one counter for every endpoint of the port). */
  endpoint?: { ip: string; port: number };
  packets: number;
  bytes: number;
}

export interface EndpointCount {
  packets: number;
  bytes: number;
}

export interface PortCounts {
  /** By "IP:PORT". An endpoint of the port without an entry had no counter found: 0 when perEndpoint. */
  byEndpoint: Map<string, EndpointCount>;
  /** false when some DNAT of the port is a numgen map pick (nft, ≥ 8 endpoints in its own chain): its connections are not split by endpoint. */
  perEndpoint: boolean;
  /** Connections through such picks (not in byEndpoint). */
  unsplit: EndpointCount;
}

const epKey = (ip: string, port: number) => `${ip}:${port}`;

/** The part of a rule comment that is the service port key ("ns/name:port/PROTO", up to the first space). */
export const commentKey = (comment: string): string => comment.split(' ')[0]!;

/** Counters by rule port key and by shared-pick destination (PROTO IP:PORT): built once, so every port's lookup is O(its own counters). */
export interface CounterIndex {
  byKey: Map<string, DnatCounter[]>;
  byDest: Map<string, DnatCounter[]>;
}

const push = <V>(m: Map<string, V[]>, k: string, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};
const destKey = (proto: string, ip: string, port: number) => `${proto} ${ip}:${port}`;

export function indexCounters(counters: readonly DnatCounter[]): CounterIndex {
  const out: CounterIndex = { byKey: new Map(), byDest: new Map() };
  for (const c of counters) {
    if (c.portKey !== undefined) push(out.byKey, c.portKey, c);
    else if (c.dest !== undefined) push(out.byDest, destKey(c.dest.proto, c.dest.ip, c.dest.port), c);
  }
  return out;
}

/**
 * The counters of one service port: rules whose comment names its key, and shared-pick elements
 * whose destination is one of its addresses (ClusterIPs, external IPs, LB IPs on its port; the
 * node's addresses on its NodePort). An endpoint reached several ways (ClusterIP and NodePort)
 * gets the sum.
 */
export function portCounts(sp: ServicePortEndpoints, nodeIPs: readonly string[], counters: readonly DnatCounter[] | CounterIndex): PortCounts {
  const index = Array.isArray(counters) ? indexCounters(counters as readonly DnatCounter[]) : (counters as CounterIndex);
  const s = sp.svc;
  const proto = s.protocol.toLowerCase();
  const dests = new Set<string>();
  for (const ip of [...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs]) dests.add(destKey(proto, ip, s.port));
  if (s.nodePort !== undefined) for (const ip of nodeIPs) dests.add(destKey(proto, ip, s.nodePort));
  const mine = [...(index.byKey.get(s.key) ?? []), ...[...dests].flatMap((d) => index.byDest.get(d) ?? [])];
  const out: PortCounts = { byEndpoint: new Map(), perEndpoint: true, unsplit: { packets: 0, bytes: 0 } };
  for (const c of mine) {
    if (!c.endpoint) {
      out.perEndpoint = false;
      out.unsplit.packets += c.packets;
      out.unsplit.bytes += c.bytes;
      continue;
    }
    const k = epKey(c.endpoint.ip, c.endpoint.port);
    const have = out.byEndpoint.get(k) ?? { packets: 0, bytes: 0 };
    have.packets += c.packets;
    have.bytes += c.bytes;
    out.byEndpoint.set(k, have);
  }
  return out;
}

/** A counter value from a parser: a non-negative safe integer, else the input is refused. */
export function counterValue(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`${what}: counter value ${JSON.stringify(v)} is not a non-negative integer`);
  return n;
}
