// The node network the agent reconciles: what it wants (DesiredNetwork, from the control plane's
// view of this node and its peers), what the kernel has (ObservedNetwork, a dump of the objects the
// agent owns), and the ordered steps between them (Step). plan.ts is the pure function
// (desired, observed) → steps; apply.ts runs steps through a netlink Handle.
import type { Backend } from '../../api/objects.js';

/** Route protocol number of every route the agent installs (unassigned in iproute2's rt_protos). */
export const ROUTE_PROTOCOL = 158;
export const BRIDGE_NAME = 'cni0';
export const VXLAN_NAME = 'podwire.1';
export const VXLAN_OVERHEAD = 50;

/** The node's underlay: the interface and address peers reach it at. */
export interface UnderlayInfo {
  ifname: string;
  ifindex: number;
  ip: string;
  /** ip/prefix of the underlay subnet, e.g. 192.0.2.11/24: peers inside it are on the same L2. */
  cidr: string;
  mtu: number;
}

export interface PeerNode {
  name: string;
  podCidr: string;
  /** Underlay address (annotation podwire.io/public-ip). */
  publicIp: string;
  /** MAC of the peer's podwire.1 (annotation podwire.io/vtep-mac); absent for host-gw-only peers. */
  vtepMac?: string;
}

/** Everything plan inputs are computed from (desiredNetwork() in desired.ts). */
export interface NetworkInput {
  nodeName: string;
  underlay: UnderlayInfo;
  podCidr: string;
  clusterCidr: string;
  backend: Backend;
  vni: number;
  vxlanPort: number;
  /** This node's VTEP MAC: pinned so peers' FDB/neigh entries stay valid across agent restarts. */
  vtepMac: string;
  peers: PeerNode[];
}

export type PeerMode = 'vxlan' | 'host-gw';

export interface DesiredRoute {
  dst: string;
  gateway: string;
  ifname: string;
  onlink: boolean;
}

export interface DesiredNetwork {
  bridge: { name: string; gatewayCidr: string; mtu: number };
  /** Absent with backend host-gw. */
  vxlan?: { name: string; vni: number; port: number; local: string; devIfname: string; mtu: number; mac: string; addressCidr: string };
  routes: DesiredRoute[];
  neighs: { ifname: string; ip: string; mac: string }[];
  fdb: { ifname: string; mac: string; dst: string }[];
  /** Which way each peer is reached (auto picks host-gw on the same L2 subnet). */
  peerModes: Record<string, PeerMode>;
  /** MTU for pod interfaces and cni0: underlay − 50 when any traffic may go through VXLAN. */
  podMtu: number;
  /** The cluster CIDR: plan() only removes stray cni0 addresses inside it (those were plausibly ours). */
  clusterCidr: string;
  /** Peers that get no route, and why (no podCIDR, no VTEP MAC, off-subnet with host-gw, …). */
  unreachable: { name: string; why: string }[];
}

/**
 * The kernel state plan() needs, as dumped by observe.ts. Only objects the agent may own.
 * vxlan.devIfname is devIndex resolved to a name by observe, so plan() (pure) can compare it with
 * the desired underlay device.
 */
export interface ObservedNetwork {
  links: { name: string; index: number; kind?: string; mtu: number; mac?: string; up: boolean; vxlan?: { vni: number; local?: string; devIndex?: number; port: number; learning: boolean; devIfname?: string } }[];
  /** Addresses on cni0 and podwire.1 (CIDR form, e.g. 10.244.1.1/24). */
  addrs: { ifname: string; cidr: string }[];
  /** Main-table routes with protocol ROUTE_PROTOCOL. */
  routes: { dst: string; gateway?: string; ifname?: string; onlink: boolean }[];
  /** Permanent neighbours on podwire.1. */
  neighs: { ifname: string; ip: string; mac?: string }[];
  /** FDB entries with a remote dst on podwire.1. */
  fdb: { ifname: string; mac: string; dst: string }[];
}

export type Step =
  | { op: 'bridgeAdd'; name: string; mtu: number }
  | { op: 'vxlanAdd'; name: string; vni: number; port: number; local: string; devIfname: string; mtu: number; mac: string }
  | { op: 'linkDel'; name: string; why: string }
  | { op: 'linkSet'; name: string; mtu?: number; mac?: string; up?: boolean }
  | { op: 'addrAdd'; ifname: string; cidr: string }
  | { op: 'addrDel'; ifname: string; cidr: string }
  | { op: 'routeReplace'; route: DesiredRoute }
  | { op: 'routeDel'; dst: string }
  | { op: 'neighReplace'; ifname: string; ip: string; mac: string }
  | { op: 'neighDel'; ifname: string; ip: string }
  | { op: 'fdbAppend'; ifname: string; mac: string; dst: string }
  | { op: 'fdbDel'; ifname: string; mac: string; dst: string };
