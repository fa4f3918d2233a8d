// A netlink Handle bound to one network namespace: the socket is opened while inside the target
// netns (then this thread returns at once), so every operation acts on that netns and the process
// never changes netns behind a caller's back. Reads like the kernel (vishvananda/netlink style).
import { NETLINK_GENERIC, NETLINK_ROUTE } from './constants.js';
import { NetlinkSocket } from './socket.js';
import type { SocketOptions } from './transport.js';
import { linkAdd, linkDel, linkDelGroup, linkDelGroupAsync, linkFind, linkGet, linkList, linkSet, linkSetBridgePort, type Link, type LinkChanges, type LinkRef, type LinkSpec } from './link.js';
import { addrAdd, addrBatch, addrDel, addrList, addrReplace, type Address, type AddressSpec } from './address.js';
import { routeAdd, routeDel, routeGet, routeList, routeReplace, type Route, type RouteFilter, type RouteLookup, type RouteQuery, type RouteSpec } from './route.js';
import { neighDel, neighList, neighReplace, type Neigh, type NeighSpec } from './neigh.js';
import { fdbAppend, fdbDel, fdbList, type FdbEntry, type FdbSpec } from './fdb.js';
import { genlListFamilies, genlResolveFamily, type GenlFamily } from './genl.js';
import { netnsIdOf } from './nsid.js';
import type { Family } from '../net/ip.js';

export class Handle {
  readonly route: NetlinkSocket;
  private generic?: NetlinkSocket;
  private readonly opts: SocketOptions;

  private constructor(route: NetlinkSocket, opts: SocketOptions) {
    this.route = route;
    this.opts = opts;
  }

  /** A handle on the netns given (name under /run/netns, path, or open NetnsRef); default: ours. */
  static open(opts: SocketOptions = {}): Handle {
    return new Handle(NetlinkSocket.open(NETLINK_ROUTE, opts), opts);
  }

  close(): void {
    this.route.close();
    this.generic?.close();
  }

  /** ifindex of a link given by name or index (names are resolved in this handle's netns). */
  ifindex(ref: LinkRef): number {
    return typeof ref === 'number' ? ref : linkGet(this.route, ref).index;
  }

  linkList(): Link[] { return linkList(this.route); }
  linkGet(ref: LinkRef): Link { return linkGet(this.route, ref); }
  linkFind(ref: LinkRef): Link | undefined { return linkFind(this.route, ref); }
  linkAdd(spec: LinkSpec): void { linkAdd(this.route, spec); }
  linkDel(ref: LinkRef): void { linkDel(this.route, ref); }
  linkDelGroup(group: number): void { linkDelGroup(this.route, group); }
  /** The group's deletion with the kernel's wait off this thread; nothing else may use this handle meanwhile. */
  linkDelGroupAsync(group: number): Promise<void> { return linkDelGroupAsync(this.route, group); }
  linkSet(ref: LinkRef, changes: LinkChanges): void { linkSet(this.route, ref, changes); }
  linkSetBridgePort(ref: LinkRef, changes: { hairpin?: boolean }): void { linkSetBridgePort(this.route, ref, changes); }

  addrAdd(a: AddressSpec): void { addrAdd(this.route, a); }
  addrReplace(a: AddressSpec): void { addrReplace(this.route, a); }
  addrDel(a: AddressSpec): void { addrDel(this.route, a); }
  /** Batched replaces and deletes (one datagram per few hundred): e.g. thousands of service IPs on one device. */
  addrBatch(changes: { replace?: readonly AddressSpec[]; del?: readonly AddressSpec[] }): void { addrBatch(this.route, changes); }
  addrList(filter?: { ifindex?: number; family?: Family }): Address[] { return addrList(this.route, filter); }

  routeAdd(r: RouteSpec): void { routeAdd(this.route, r); }
  routeReplace(r: RouteSpec): void { routeReplace(this.route, r); }
  routeDel(r: RouteSpec): void { routeDel(this.route, r); }
  routeList(filter?: RouteFilter): Route[] { return routeList(this.route, filter); }
  /** `ip route get`: the route the kernel would use for one packet, or why it has none. */
  routeGet(query: RouteQuery): RouteLookup { return routeGet(this.route, query); }

  neighReplace(n: NeighSpec): void { neighReplace(this.route, n); }
  neighDel(n: NeighSpec): void { neighDel(this.route, n); }
  neighList(filter?: { ifindex?: number; family?: Family }): Neigh[] { return neighList(this.route, filter); }

  fdbAppend(e: FdbSpec): void { fdbAppend(this.route, e); }
  fdbDel(e: FdbSpec): void { fdbDel(this.route, e); }
  fdbList(filter?: { ifindex?: number }): FdbEntry[] { return fdbList(this.route, filter); }

  /** The id this handle's netns gives the netns open at `fd` (IFLA_LINK_NETNSID of links with their peer there); undefined: none. */
  netnsId(fd: number): number | undefined { return netnsIdOf(this.route, fd); }

  /** Generic netlink family (e.g. "IPVS"), resolved through a lazily opened NETLINK_GENERIC socket. */
  genlFamily(name: string): GenlFamily { return genlResolveFamily(this.genericSocket(), name); }
  genlFamilies(): GenlFamily[] { return genlListFamilies(this.genericSocket()); }

  private genericSocket(): NetlinkSocket {
    this.generic ??= NetlinkSocket.open(NETLINK_GENERIC, this.opts);
    return this.generic;
  }
}
