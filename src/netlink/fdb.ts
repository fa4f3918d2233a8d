// Bridge forwarding database entries (AF_BRIDGE neighbour messages), as `bridge fdb` handles them:
// on a vxlan device they map a MAC to the remote VTEP IP (NDA_DST); the all-zero MAC with several
// dsts, added with NLM_F_APPEND, is the flood list (head-end replication, as flannel uses).
import { Attrs, CodecError, encodePayload, nla, type Attr } from './codec.js';
import {
  AF_BRIDGE, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_PORT, NDA_VNI, NLM_F_APPEND, NLM_F_CREATE, NTF_MASTER,
  NTF_SELF, NUD_NOARP, NUD_PERMANENT, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH, NDA_VLAN, IFINFOMSG_LEN, NDMSG_LEN,
} from './constants.js';
import { formatIp, parseIp } from '../net/ip.js';
import { formatMac, parseMac } from './ip.js';
import type { NetlinkSocket } from './socket.js';
import { checkInt, parseField } from './validate.js';

// Not (yet) in constants.ts (include/uapi/linux/neighbour.h, rtnetlink.h).

export interface FdbSpec {
  ifindex: number;
  mac: string;
  /** Remote VTEP IP, for vxlan devices. */
  dst?: string;
  /** NUD_* state; default NUD_NOARP|NUD_PERMANENT, what `bridge fdb append` sends without a state keyword. */
  state?: number;
  /** Entry in the device's own table (NTF_SELF): default true unless master is set, like `bridge fdb`. */
  self?: boolean;
  /** Entry in the master bridge's table (NTF_MASTER), for bridge ports. */
  master?: boolean;
}

export interface FdbEntry {
  ifindex: number;
  mac: string;
  dst?: string;
  state: number;
  flags: number;
  masterIndex?: number;
  vlan?: number;
  vni?: number;
  port?: number;
}

/** `bridge fdb append`: adds a dst even when the MAC already has one (vxlan flood list). */
export function fdbAppend(sock: NetlinkSocket, e: FdbSpec): void {
  sock.exec(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, encodeFdbMsg(e), { op: 'fdb append', object: describeFdb(e) });
}

/** With dst, only that remote of a vxlan entry goes; without, the whole entry. */
export function fdbDel(sock: NetlinkSocket, e: FdbSpec): void {
  sock.exec(RTM_DELNEIGH, 0, encodeFdbMsg(e), { op: 'fdb del', object: describeFdb(e) });
}

/**
 * FDB entries (of one device with filter.ifindex). The request is the ifinfomsg header iproute2
 * sends on non-strict sockets: the kernel then only walks that port (ifi_index). The filter is
 * applied here too, so the result does not depend on which dump parser the kernel picks.
 */
export function fdbList(sock: NetlinkSocket, filter: { ifindex?: number } = {}): FdbEntry[] {
  checkInt('fdb', 'ifindex', filter.ifindex, 1, 0x7fffffff);
  const header = Buffer.alloc(IFINFOMSG_LEN);
  header.writeUInt8(AF_BRIDGE, 0);
  header.writeInt32LE(filter.ifindex ?? 0, 4);
  const what = filter.ifindex === undefined ? 'all devices' : `dev #${filter.ifindex}`;
  const out: FdbEntry[] = [];
  for (const msg of sock.dump(RTM_GETNEIGH, header, { op: 'fdb list', object: what })) {
    if (msg.type !== RTM_NEWNEIGH) continue;
    const entry = decodeFdb(msg.payload);
    if (!entry) continue;
    if (filter.ifindex !== undefined && entry.ifindex !== filter.ifindex) continue;
    out.push(entry);
  }
  return out;
}

/** ndmsg(AF_BRIDGE) + NDA_LLADDR [+ NDA_DST]; the same message serves append and delete, as in bridge(8). */
export function encodeFdbMsg(e: FdbSpec): Buffer {
  if (e.ifindex === undefined) throw new RangeError('fdb ifindex: required');
  checkInt('fdb', 'ifindex', e.ifindex, 1, 0x7fffffff);
  checkInt('fdb', 'state', e.state, 0, 0xffff);
  const mac = parseField('fdb', 'mac', e.mac, parseMac);
  const dst = e.dst === undefined ? undefined : parseField('fdb', 'dst', e.dst, parseIp);
  const self = e.self ?? !e.master;
  const header = Buffer.alloc(NDMSG_LEN);
  header.writeUInt8(AF_BRIDGE, 0);
  header.writeInt32LE(e.ifindex, 4);
  header.writeUInt16LE(e.state ?? NUD_NOARP | NUD_PERMANENT, 8);
  header.writeUInt8((self ? NTF_SELF : 0) | (e.master ? NTF_MASTER : 0), 10);
  const attrs: Attr[] = [nla.bytes(NDA_LLADDR, mac)];
  if (dst) attrs.push(nla.bytes(NDA_DST, dst.bytes));
  return encodePayload(header, attrs);
}

/** undefined for messages that are not bridge FDB entries (IPv4/IPv6 neighbours) or carry no MAC. */
export function decodeFdb(payload: Buffer): FdbEntry | undefined {
  if (payload.length < NDMSG_LEN) throw new CodecError(`fdb message too short: ${payload.length} bytes`);
  if (payload.readUInt8(0) !== AF_BRIDGE) return undefined;
  const attrs = new Attrs(payload.subarray(NDMSG_LEN));
  const lladdr = attrs.raw(NDA_LLADDR);
  if (!lladdr) return undefined;
  const entry: FdbEntry = {
    ifindex: payload.readInt32LE(4),
    mac: formatMac(lladdr),
    state: payload.readUInt16LE(8),
    flags: payload.readUInt8(10),
  };
  const dst = attrs.raw(NDA_DST);
  if (dst) entry.dst = formatIp(dst);
  const master = attrs.u32(NDA_MASTER);
  if (master !== undefined) entry.masterIndex = master;
  const vlan = attrs.u16(NDA_VLAN);
  if (vlan !== undefined) entry.vlan = vlan;
  const vni = attrs.u32(NDA_VNI);
  if (vni !== undefined) entry.vni = vni;
  const port = attrs.be16(NDA_PORT); // network byte order on the wire
  if (port !== undefined) entry.port = port;
  return entry;
}



/** For error messages, in `bridge fdb` words: fdb 00:00:00:00:00:00 dev #3 dst 192.168.50.2 self. */
export function describeFdb(e: FdbSpec): string {
  const where = [e.self ?? !e.master ? 'self' : '', e.master ? 'master' : ''].filter(Boolean).join(' ');
  return `fdb ${e.mac} dev #${e.ifindex}${e.dst ? ` dst ${e.dst}` : ''}${where ? ` ${where}` : ''}`;
}
