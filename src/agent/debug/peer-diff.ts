// peerDiff(): for each peer of the node, its desired route (and, for vxlan peers, neighbour and
// FDB entry) next to what the kernel holds, each present | missing | stale. Pure: the desired side
// is desiredNetwork()'s, the kernel side observeNetwork()'s (only objects the agent owns: routes
// with protocol 158, permanent neighbours and remote FDB entries on podwire.1), so it sees exactly
// what plan() sees. The JSON is `podwire peers`' contract (src/cli/README.md).
import { networkCidr } from '../../net/cidr.js';
import type { DesiredNetwork, NetworkInput, ObservedNetwork, PeerNode } from '../network/types.js';

export type EntryStatus = 'present' | 'missing' | 'stale';

export interface RouteView { dst: string; gateway: string | null; dev: string | null; onlink: boolean }
export interface NeighView { ip: string; lladdr: string | null; dev: string }
export interface FdbView { mac: string; dst: string; dev: string }

export interface Entry<T> {
  status: EntryStatus;
  desired: T;
  /** What the kernel has for the same key (dst, IP, MAC); null when missing. */
  present: T | null;
  /** Why it is stale (what differs), null otherwise. */
  detail: string | null;
}

export interface PeerEntry {
  name: string;
  podCidr: string;
  underlayIp: string;
  vtepMac: string | null;
  mode: 'vxlan' | 'direct';
  route: Entry<RouteView>;
  /** null for direct (host-gw) peers. */
  neighbour: Entry<NeighView> | null;
  fdb: Entry<FdbView> | null;
}

export interface PeersAnswer {
  node: string;
  backend: string;
  peers: PeerEntry[];
  /** Peers that get no route at all, and why (desiredNetwork()'s unreachable). */
  unreachable: { name: string; why: string }[];
}

const diffs = (pairs: [string, unknown, unknown][]): string | null => {
  const d = pairs.filter(([, want, have]) => want !== have).map(([what, want, have]) => `${what} ${String(have ?? 'none')} (want ${String(want)})`);
  return d.length ? d.join(', ') : null;
};

function entry<T>(desired: T, present: T | null, detail: string | null): Entry<T> {
  return { status: present === null ? 'missing' : detail === null ? 'present' : 'stale', desired, present, detail: present === null ? null : detail };
}

function routeEntry(want: RouteView, observed: ObservedNetwork['routes']): Entry<RouteView> {
  const have = observed.filter((r) => r.dst === want.dst).map((r): RouteView => ({ dst: r.dst, gateway: r.gateway ?? null, dev: r.ifname ?? null, onlink: r.onlink }));
  if (have.length === 0) return entry(want, null, null);
  const first = have[0]!;
  if (have.length > 1) return entry(want, first, `${have.length} routes to ${want.dst} (want one)`);
  return entry(want, first, diffs([['via', want.gateway, first.gateway], ['dev', want.dev, first.dev], ['onlink', want.onlink, first.onlink]]));
}

function neighEntry(want: NeighView, observed: ObservedNetwork['neighs']): Entry<NeighView> {
  const have = observed.find((n) => n.ip === want.ip);
  if (!have) return entry(want, null, null);
  const present: NeighView = { ip: have.ip, lladdr: have.mac?.toLowerCase() ?? null, dev: have.ifname };
  return entry(want, present, diffs([['lladdr', want.lladdr, present.lladdr]]));
}

function fdbEntry(want: FdbView, observed: ObservedNetwork['fdb']): Entry<FdbView> {
  const same = observed.filter((e) => e.mac.toLowerCase() === want.mac).map((e): FdbView => ({ mac: e.mac.toLowerCase(), dst: e.dst, dev: e.ifname }));
  if (same.length === 0) return entry(want, null, null);
  const exact = same.find((e) => e.dst === want.dst);
  const others = same.filter((e) => e.dst !== want.dst);
  if (exact && others.length === 0) return entry(want, exact, null);
  return entry(want, exact ?? others[0]!, `dst ${others.map((e) => e.dst).join(', ')} (want ${want.dst}${exact ? ' only' : ''})`);
}

export function peerDiff(input: Pick<NetworkInput, 'nodeName' | 'backend' | 'peers'>, desired: DesiredNetwork, observed: ObservedNetwork): PeersAnswer {
  const byName = new Map<string, PeerNode>(input.peers.map((p) => [p.name, p]));
  const peers: PeerEntry[] = [];
  for (const name of Object.keys(desired.peerModes).sort()) {
    const peer = byName.get(name);
    if (!peer) continue; // desiredNetwork() only names peers it was given
    const mode = desired.peerModes[name]!;
    const dst = networkCidr(peer.podCidr);
    const route = desired.routes.find((r) => r.dst === dst);
    if (!route) continue;
    const out: PeerEntry = {
      name, podCidr: peer.podCidr, underlayIp: peer.publicIp, vtepMac: peer.vtepMac?.toLowerCase() ?? null,
      mode: mode === 'host-gw' ? 'direct' : 'vxlan',
      route: routeEntry({ dst: route.dst, gateway: route.gateway, dev: route.ifname, onlink: route.onlink }, observed.routes),
      neighbour: null, fdb: null,
    };
    if (mode === 'vxlan') {
      const neigh = desired.neighs.find((n) => n.ip === route.gateway)!;
      const fdb = desired.fdb.find((f) => f.mac === neigh.mac)!;
      out.neighbour = neighEntry({ ip: neigh.ip, lladdr: neigh.mac, dev: neigh.ifname }, observed.neighs);
      out.fdb = fdbEntry({ mac: fdb.mac, dst: fdb.dst, dev: fdb.ifname }, observed.fdb);
    }
    peers.push(out);
  }
  return { node: input.nodeName, backend: input.backend, peers, unreachable: desired.unreachable.map((u) => ({ ...u })) };
}
