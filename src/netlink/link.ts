// rtnetlink links: list/get/add/del/set. A link spec is a tagged union by kernel kind, like
// vishvananda/netlink's Link: bridge, veth (peer optionally created straight into another netns),
// vxlan (VNI, local, underlay dev, port, learning), dummy. Requests mirror what `ip link` sends.
import { Attrs, encodePayload, nla, type Attr } from './codec.js';
import * as K from './constants.js';
import { formatIp, formatMac, parseIp, parseMac } from './ip.js';
import { KERNEL_IFNAME_RULE, kernelIfnameProblem } from './names.js';
import type { NetlinkSocket } from './socket.js';

export interface LinkCommon {
  name: string;
  mtu?: number;
  mac?: string;
  up?: boolean;
  masterIndex?: number;
  /** Create the link directly inside the netns behind this open fd (see openNetns). */
  netnsFd?: number;
}
export interface BridgeSpec extends LinkCommon {
  kind: 'bridge';
}
/** A dummy link (kernel module `dummy`): holds addresses no interface answers ARP for, e.g. IPVS service IPs. */
export interface DummySpec extends LinkCommon {
  kind: 'dummy';
}
export interface VethPeerSpec {
  name: string;
  mtu?: number;
  mac?: string;
  /** Create the peer directly inside this netns (an open netns fd), never passing through ours. */
  netnsFd?: number;
}
export interface VethSpec extends LinkCommon {
  kind: 'veth';
  peer: VethPeerSpec;
}
export interface VxlanSpec extends LinkCommon {
  kind: 'vxlan';
  vni: number;
  local?: string;
  /** Underlay device ifindex. */
  devIndex?: number;
  /** UDP destination port (flannel/podwire: 8472). */
  port?: number;
  learning?: boolean;
}
export type LinkSpec = BridgeSpec | DummySpec | VethSpec | VxlanSpec;

export interface VxlanInfo {
  vni: number;
  local?: string;
  devIndex?: number;
  port: number;
  learning: boolean;
}

export interface Link {
  index: number;
  name: string;
  kind?: string;
  mtu: number;
  mac?: string;
  flags: number;
  up: boolean;
  operState: number;
  masterIndex?: number;
  /** IFLA_LINK: e.g. a veth's peer ifindex (in the peer's netns). */
  linkIndex?: number;
  linkNetnsId?: number;
  /** IFLA_GROUP: the link group (0, the default, is left out). */
  group?: number;
  vxlan?: VxlanInfo;
  /** Set when the link is a bridge port (IFLA_INFO_SLAVE_KIND "bridge"). */
  bridgePort?: BridgePortInfo;
}

export interface BridgePortInfo {
  hairpin: boolean;
}

export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** ifindex of the new master, or null to detach (nomaster). */
  masterIndex?: number | null;
  /** Move the link into the netns behind this open fd. */
  netnsFd?: number;
  name?: string;
  /** IFLA_GROUP: move the link to this group (`ip link set dev X group N`). */
  group?: number;
}

/** The kernel's interface-name rule (names.ts); the error names the field and says why. */
export function validateIfName(name: string, field = 'name'): void {
  const problem = kernelIfnameProblem(name);
  if (problem) throw new Error(`invalid interface ${field} ${JSON.stringify(name)}: ${problem} (${KERNEL_IFNAME_RULE})`);
}

function validateMtu(mtu: number | undefined, field: string): void {
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) {
    throw new Error(`invalid ${field} ${mtu}: must be an integer in 68-65535`);
  }
}

export function encodeIfinfomsg(index: number, flags = 0, change = 0, family = K.AF_UNSPEC): Buffer {
  const b = Buffer.alloc(K.IFINFOMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

// Attribute order follows iproute2 (options, then IFLA_IFNAME, then IFLA_LINKINFO) so requests are
// byte-identical to what `ip link` sends (see test/fixtures/netlink/link-*.hex).
function optionAttrs(s: { mtu?: number; mac?: string; netnsFd?: number; masterIndex?: number | null }): Attr[] {
  const attrs: Attr[] = [];
  if (s.mtu !== undefined) attrs.push(nla.u32(K.IFLA_MTU, s.mtu));
  if (s.mac !== undefined) attrs.push(nla.bytes(K.IFLA_ADDRESS, parseMac(s.mac)));
  if (s.netnsFd !== undefined) attrs.push(nla.u32(K.IFLA_NET_NS_FD, s.netnsFd));
  if (s.masterIndex !== undefined) attrs.push(nla.u32(K.IFLA_MASTER, s.masterIndex ?? 0));
  return attrs;
}

function namedAttrs(s: { name: string; mtu?: number; mac?: string; netnsFd?: number; masterIndex?: number }): Attr[] {
  return [...optionAttrs(s), nla.str(K.IFLA_IFNAME, s.name)];
}

/** Nested without NLA_F_NESTED, as iproute2 sends IFLA_LINKINFO and IFLA_INFO_DATA. */
const plainNest = (type: number, attrs: Attr[]): Attr => ({ type, value: attrs, nestedFlag: false });

function kindData(spec: LinkSpec): Attr[] {
  switch (spec.kind) {
    case 'bridge':
    case 'dummy':
      return [];
    case 'veth': {
      const peer = encodePayload(encodeIfinfomsg(0), namedAttrs(spec.peer));
      return [nla.bytes(K.VETH_INFO_PEER, peer)];
    }
    case 'vxlan': {
      const data: Attr[] = [];
      if (spec.devIndex !== undefined) data.push(nla.u32(K.IFLA_VXLAN_LINK, spec.devIndex));
      data.push(nla.u32(K.IFLA_VXLAN_ID, spec.vni));
      if (spec.local !== undefined) {
        const local = parseIp(spec.local);
        data.push(nla.bytes(local.family === 4 ? K.IFLA_VXLAN_LOCAL : K.IFLA_VXLAN_LOCAL6, local.bytes));
      }
      if (spec.learning !== undefined) data.push(nla.u8(K.IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0));
      if (spec.port !== undefined) data.push(nla.be16(K.IFLA_VXLAN_PORT, spec.port));
      return data;
    }
  }
}

export function validateLinkSpec(spec: LinkSpec): void {
  validateIfName(spec.name);
  validateMtu(spec.mtu, 'mtu');
  if (spec.mac !== undefined) parseMac(spec.mac);
  if (spec.kind === 'veth') {
    if (!spec.peer) throw new Error(`veth ${spec.name}: peer is required`);
    validateIfName(spec.peer.name, 'peer name');
    validateMtu(spec.peer.mtu, 'peer mtu');
    if (spec.peer.mac !== undefined) parseMac(spec.peer.mac);
  } else if (spec.kind === 'vxlan') {
    if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni > 0xffffff) {
      throw new Error(`vxlan ${spec.name}: invalid vni ${spec.vni}: must be 0-16777215`);
    }
    if (spec.port !== undefined && (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535)) {
      throw new Error(`vxlan ${spec.name}: invalid port ${spec.port}: must be 1-65535`);
    }
    if (spec.local !== undefined) parseIp(spec.local);
  } else if ((spec as { kind: string }).kind !== 'bridge' && (spec as { kind: string }).kind !== 'dummy') {
    throw new Error(`link ${spec.name}: unsupported kind ${JSON.stringify((spec as { kind: string }).kind)} (bridge, dummy, veth, vxlan)`);
  }
}

/** RTM_NEWLINK payload creating `spec` (pure; used by linkAdd and golden tests). */
export function encodeLinkAdd(spec: LinkSpec): Buffer {
  validateLinkSpec(spec);
  const flags = spec.up ? K.IFF_UP : 0;
  const attrs = namedAttrs(spec);
  // The kind goes without a trailing NUL, as iproute2 sends it (NLA_STRING accepts both).
  const info: Attr[] = [nla.bytes(K.IFLA_INFO_KIND, Buffer.from(spec.kind))];
  const data = kindData(spec);
  if (data.length) info.push(plainNest(K.IFLA_INFO_DATA, data));
  attrs.push(plainNest(K.IFLA_LINKINFO, info));
  return encodePayload(encodeIfinfomsg(0, flags, spec.up ? K.IFF_UP : 0), attrs);
}

/** RTM_NEWLINK payload changing an existing link (pure). */
export function encodeLinkSet(index: number, ch: LinkChanges): Buffer {
  validateMtu(ch.mtu, 'mtu');
  if (ch.name !== undefined) validateIfName(ch.name);
  const flags = ch.up ? K.IFF_UP : 0;
  const change = ch.up !== undefined ? K.IFF_UP : 0;
  const attrs = optionAttrs(ch);
  if (ch.group !== undefined) {
    validateGroup(ch.group);
    attrs.push(nla.u32(K.IFLA_GROUP, ch.group));
  }
  if (ch.name !== undefined) attrs.push(nla.str(K.IFLA_IFNAME, ch.name));
  return encodePayload(encodeIfinfomsg(index, flags, change), attrs);
}

function validateGroup(group: number): void {
  if (!Number.isInteger(group) || group < 0 || group > 0xffffffff) throw new Error(`invalid link group ${group}: must be an integer in 0-4294967295`);
}

/** RTM_DELLINK of every link in a group (`ip link del group N`): ifindex 0 and IFLA_GROUP (pure). */
export function encodeLinkDelGroup(group: number): Buffer {
  validateGroup(group);
  if (group === 0) throw new Error('refusing to delete link group 0: it is every link\'s default group');
  return encodePayload(encodeIfinfomsg(0), [nla.u32(K.IFLA_GROUP, group)]);
}

export function decodeLink(payload: Buffer): Link {
  const index = payload.readInt32LE(4);
  const flags = payload.readUInt32LE(8);
  const a = new Attrs(payload.subarray(K.IFINFOMSG_LEN));
  const info = a.nested(K.IFLA_LINKINFO);
  const kind = info?.str(K.IFLA_INFO_KIND);
  const mac = a.raw(K.IFLA_ADDRESS);
  const link: Link = {
    index,
    name: a.str(K.IFLA_IFNAME) ?? '',
    mtu: a.u32(K.IFLA_MTU) ?? 0,
    flags,
    up: (flags & K.IFF_UP) !== 0,
    operState: a.u8(K.IFLA_OPERSTATE) ?? 0,
  };
  if (kind !== undefined) link.kind = kind;
  if (mac && mac.length === 6) link.mac = formatMac(mac);
  const master = a.u32(K.IFLA_MASTER);
  if (master) link.masterIndex = master;
  const peer = a.u32(K.IFLA_LINK);
  if (peer !== undefined && peer !== index) link.linkIndex = peer;
  const nsid = a.i32(K.IFLA_LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = nsid;
  const group = a.u32(K.IFLA_GROUP);
  if (group) link.group = group;
  if (kind === 'vxlan') {
    const data = info?.nested(K.IFLA_INFO_DATA);
    if (data) link.vxlan = decodeVxlan(data);
  }
  if (info?.str(K.IFLA_INFO_SLAVE_KIND) === 'bridge') {
    const port = info.nested(K.IFLA_INFO_SLAVE_DATA);
    link.bridgePort = { hairpin: (port?.u8(K.IFLA_BRPORT_MODE) ?? 0) !== 0 };
  }
  return link;
}

function decodeVxlan(d: Attrs): VxlanInfo {
  const info: VxlanInfo = {
    vni: d.u32(K.IFLA_VXLAN_ID) ?? 0,
    port: d.be16(K.IFLA_VXLAN_PORT) ?? 0,
    learning: (d.u8(K.IFLA_VXLAN_LEARNING) ?? 0) !== 0,
  };
  const local = d.raw(K.IFLA_VXLAN_LOCAL) ?? d.raw(K.IFLA_VXLAN_LOCAL6);
  if (local) info.local = formatIp(local);
  const dev = d.u32(K.IFLA_VXLAN_LINK);
  if (dev) info.devIndex = dev;
  return info;
}

export type LinkRef = string | number;
const describe = (ref: LinkRef) => (typeof ref === 'number' ? `link #${ref}` : `link ${JSON.stringify(ref)}`);

function refPayload(ref: LinkRef): Buffer {
  if (typeof ref === 'number') return encodeIfinfomsg(ref);
  validateIfName(ref);
  return encodePayload(encodeIfinfomsg(0), [nla.str(K.IFLA_IFNAME, ref)]);
}

export function linkList(sock: NetlinkSocket): Link[] {
  return sock.dump(K.RTM_GETLINK, encodeIfinfomsg(0), { op: 'link list', object: 'all links' }).map((m) => decodeLink(m.payload));
}

export function linkGet(sock: NetlinkSocket, ref: LinkRef): Link {
  const replies = sock.exec(K.RTM_GETLINK, 0, refPayload(ref), { op: 'link get', object: describe(ref) });
  if (replies.length === 0) throw new Error(`netlink link get ${describe(ref)}: no reply from the kernel`);
  return decodeLink(replies[0].payload);
}

/** Like linkGet, but undefined when the link does not exist. */
export function linkFind(sock: NetlinkSocket, ref: LinkRef): Link | undefined {
  try {
    return linkGet(sock, ref);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENODEV') return undefined;
    throw err;
  }
}

export function linkAdd(sock: NetlinkSocket, spec: LinkSpec): void {
  const payload = encodeLinkAdd(spec);
  const peer = spec.kind === 'veth' ? ` peer ${JSON.stringify(spec.peer.name)}` : '';
  sock.exec(K.RTM_NEWLINK, K.NLM_F_CREATE | K.NLM_F_EXCL, payload, {
    op: 'link add',
    object: `${spec.kind} ${JSON.stringify(spec.name)}${peer}`,
  });
}

export function linkDel(sock: NetlinkSocket, ref: LinkRef): void {
  sock.exec(K.RTM_DELLINK, 0, refPayload(ref), { op: 'link del', object: describe(ref) });
}

/**
 * Deletes every link in the group in one request: the kernel unregisters them together, so they
 * share one RCU grace period instead of waiting one each. ENODEV when the group has no link.
 */
export function linkDelGroup(sock: NetlinkSocket, group: number): void {
  sock.exec(K.RTM_DELLINK, 0, encodeLinkDelGroup(group), { op: 'link del group', object: `group ${group}` });
}

/** linkDelGroup without blocking this thread while the kernel waits (NetlinkSocket.execAsync). */
export async function linkDelGroupAsync(sock: NetlinkSocket, group: number): Promise<void> {
  await sock.execAsync(K.RTM_DELLINK, 0, encodeLinkDelGroup(group), { op: 'link del group', object: `group ${group}` });
}

export function linkSet(sock: NetlinkSocket, ref: LinkRef, ch: LinkChanges): void {
  const index = typeof ref === 'number' ? ref : linkGet(sock, ref).index;
  sock.exec(K.RTM_NEWLINK, 0, encodeLinkSet(index, ch), { op: 'link set', object: `${describe(ref)} ${JSON.stringify(ch)}` });
}

/**
 * RTM_SETLINK payload changing bridge port options, as `bridge link set dev X hairpin on` sends it:
 * an AF_BRIDGE ifinfomsg with IFLA_PROTINFO (nested) holding IFLA_BRPORT_* attributes (pure).
 */
export function encodeBridgePortSet(index: number, ch: { hairpin?: boolean }): Buffer {
  const port: Attr[] = [];
  if (ch.hairpin !== undefined) port.push(nla.u8(K.IFLA_BRPORT_MODE, ch.hairpin ? 1 : 0));
  return encodePayload(encodeIfinfomsg(index, 0, 0, K.AF_BRIDGE), [nla.nested(K.IFLA_PROTINFO, port)]);
}

/** Change options of a bridge port (the link must be enslaved to a bridge: else EOPNOTSUPP). */
export function linkSetBridgePort(sock: NetlinkSocket, ref: LinkRef, ch: { hairpin?: boolean }): void {
  const index = typeof ref === 'number' ? ref : linkGet(sock, ref).index;
  sock.exec(K.RTM_SETLINK, 0, encodeBridgePortSet(index, ch), { op: 'bridge port set', object: `${describe(ref)} ${JSON.stringify(ch)}` });
}
