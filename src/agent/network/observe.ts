// observeNetwork(): dump the kernel objects the agent may own, through a netlink Handle, into the
// plain ObservedNetwork plan() compares against. Only cni0 and podwire.1, their addresses, main-table
// routes with protocol ROUTE_PROTOCOL, permanent neighbours and remote FDB entries on podwire.1:
// anything else on the node is invisible here, so plan() can never propose to touch it.
import type { Handle } from '../../netlink/handle.js';
import type { Link } from '../../netlink/link.js';
import { NUD_PERMANENT } from '../../netlink/constants.js';
import { BRIDGE_NAME, ROUTE_PROTOCOL, VXLAN_NAME, type ObservedNetwork, type UnderlayInfo } from './types.js';

type ObservedLink = ObservedNetwork['links'][number];

/** Resolves ifindexes to names, asking the kernel only for indexes it has not seen yet. */
class IfNames {
  private readonly names = new Map<number, string | undefined>();
  constructor(private readonly h: Handle, known: { index: number; name: string }[]) {
    for (const k of known) this.names.set(k.index, k.name);
  }
  name(index: number | undefined): string | undefined {
    if (index === undefined) return undefined;
    if (!this.names.has(index)) this.names.set(index, this.h.linkFind(index)?.name);
    return this.names.get(index);
  }
}

function toObservedLink(link: Link, names: IfNames): ObservedLink {
  const out: ObservedLink = { name: link.name, index: link.index, mtu: link.mtu, up: link.up };
  if (link.kind !== undefined) out.kind = link.kind;
  if (link.mac !== undefined) out.mac = link.mac;
  if (link.vxlan) {
    const { vni, port, learning, local, devIndex } = link.vxlan;
    out.vxlan = { vni, port, learning };
    if (local !== undefined) out.vxlan.local = local;
    if (devIndex !== undefined) {
      out.vxlan.devIndex = devIndex;
      const devIfname = names.name(devIndex);
      if (devIfname !== undefined) out.vxlan.devIfname = devIfname;
    }
  }
  return out;
}

/**
 * `underlay` (optional) only saves a lookup: its ifindex → name is known without asking the kernel.
 */
export function observeNetwork(h: Handle, underlay?: Pick<UnderlayInfo, 'ifname' | 'ifindex'>): ObservedNetwork {
  const found = [h.linkFind(BRIDGE_NAME), h.linkFind(VXLAN_NAME)].filter((l): l is Link => l !== undefined);
  const names = new IfNames(h, [...found, ...(underlay ? [{ index: underlay.ifindex, name: underlay.ifname }] : [])]);
  const observed: ObservedNetwork = { links: found.map((l) => toObservedLink(l, names)), addrs: [], routes: [], neighs: [], fdb: [] };
  for (const link of found) {
    for (const a of h.addrList({ ifindex: link.index })) observed.addrs.push({ ifname: link.name, cidr: a.cidr });
  }
  for (const r of h.routeList({ protocol: ROUTE_PROTOCOL })) {
    // The filter is applied by routeList; checked again because a foreign route must never leak in.
    if (r.protocol !== ROUTE_PROTOCOL) continue;
    const route: ObservedNetwork['routes'][number] = { dst: r.dst, onlink: r.onlink };
    if (r.gateway !== undefined) route.gateway = r.gateway;
    const ifname = names.name(r.ifindex);
    if (ifname !== undefined) route.ifname = ifname;
    observed.routes.push(route);
  }
  const vx = found.find((l) => l.name === VXLAN_NAME);
  if (vx) {
    for (const n of h.neighList({ ifindex: vx.index })) {
      if ((n.state & NUD_PERMANENT) === 0) continue;
      observed.neighs.push(n.mac === undefined ? { ifname: VXLAN_NAME, ip: n.ip } : { ifname: VXLAN_NAME, ip: n.ip, mac: n.mac });
    }
    for (const e of h.fdbList({ ifindex: vx.index })) {
      if (e.dst !== undefined) observed.fdb.push({ ifname: VXLAN_NAME, mac: e.mac, dst: e.dst });
    }
  }
  return observed;
}
