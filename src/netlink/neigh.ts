// IPv4/IPv6 neighbours (ARP/NDP entries, RTM_{NEW,DEL,GET}NEIGH): ndmsg + NDA_* attributes, sent
// the way `ip neigh replace|del IP [lladdr MAC] dev IF` sends them.
import { Attrs, CodecError, encodePayload, nla, type Attr } from './codec.js';
import {
  AF_INET, AF_INET6, NDA_DST, NDA_LLADDR, NLM_F_CREATE, NLM_F_REPLACE, NUD_PERMANENT, RTM_DELNEIGH,
  RTM_GETNEIGH, RTM_NEWNEIGH, NDMSG_LEN,
} from './constants.js';
import { formatIp, parseIp, type Family } from '../net/ip.js';
import { afOf, formatMac, parseMac } from './ip.js';
import type { NetlinkSocket } from './socket.js';
import { checkInt, parseField } from './validate.js';


export interface NeighSpec {
  ifindex: number;
  ip: string;
  mac?: string;
  /** NUD_* state; default NUD_PERMANENT, like `ip neigh replace`. */
  state?: number;
  /** NTF_* flags; default none. */
  flags?: number;
}

export interface Neigh {
  family: 4 | 6;
  ifindex: number;
  ip: string;
  mac?: string;
  state: number;
  flags: number;
}

export interface NeighFilter {
  ifindex?: number;
  family?: 4 | 6;
}

export function neighReplace(sock: NetlinkSocket, n: NeighSpec): void {
  sock.exec(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, encodeNeighMsg(n), { op: 'neigh replace', object: describeNeigh(n) });
}

/** Deleting an entry that does not exist fails with ENOENT (a NetlinkError naming the entry). */
export function neighDel(sock: NetlinkSocket, n: NeighSpec): void {
  sock.exec(RTM_DELNEIGH, 0, encodeNeighMsg(n), { op: 'neigh del', object: describeNeigh(n) });
}

/**
 * All IPv4/IPv6 neighbours in every NUD state (unlike `ip neigh show`, which hides NOARP ones).
 * One dump per family: an AF_UNSPEC dump would also walk the bridge FDB, which can be large.
 */
export function neighList(sock: NetlinkSocket, filter: NeighFilter = {}): Neigh[] {
  const families: Family[] = filter.family ? [filter.family] : [4, 6];
  const out: Neigh[] = [];
  for (const family of families) {
    const header = Buffer.alloc(NDMSG_LEN);
    header.writeUInt8(afOf(family), 0);
    const replies = sock.dump(RTM_GETNEIGH, header, { op: 'neigh list', object: `IPv${family} neighbours` });
    for (const msg of replies) {
      if (msg.type !== RTM_NEWNEIGH) continue;
      const neigh = decodeNeigh(msg.payload);
      if (!neigh) continue;
      if (filter.ifindex !== undefined && neigh.ifindex !== filter.ifindex) continue;
      out.push(neigh);
    }
  }
  return out;
}

/** ndmsg + NDA_DST [+ NDA_LLADDR]; the same message serves replace and delete, as in iproute2. */
export function encodeNeighMsg(n: NeighSpec): Buffer {
  if (n.ifindex === undefined) throw new RangeError('neigh ifindex: required');
  checkInt('neigh', 'ifindex', n.ifindex, 1, 0x7fffffff);
  checkInt('neigh', 'state', n.state, 0, 0xffff);
  checkInt('neigh', 'flags', n.flags, 0, 0xff);
  const ip = parseField('neigh', 'ip', n.ip, parseIp);
  const mac = n.mac === undefined ? undefined : parseField('neigh', 'mac', n.mac, parseMac);
  const header = Buffer.alloc(NDMSG_LEN);
  header.writeUInt8(afOf(ip.family), 0);
  header.writeInt32LE(n.ifindex, 4);
  header.writeUInt16LE(n.state ?? NUD_PERMANENT, 8);
  header.writeUInt8(n.flags ?? 0, 10);
  const attrs: Attr[] = [nla.bytes(NDA_DST, ip.bytes)];
  if (mac) attrs.push(nla.bytes(NDA_LLADDR, mac));
  return encodePayload(header, attrs);
}

/** undefined for messages that are not IPv4/IPv6 neighbours (e.g. AF_BRIDGE FDB entries). */
export function decodeNeigh(payload: Buffer): Neigh | undefined {
  if (payload.length < NDMSG_LEN) throw new CodecError(`neighbour message too short: ${payload.length} bytes`);
  const af = payload.readUInt8(0);
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const attrs = new Attrs(payload.subarray(NDMSG_LEN));
  const dst = attrs.raw(NDA_DST);
  if (!dst) return undefined;
  const neigh: Neigh = {
    family: af === AF_INET ? 4 : 6,
    ifindex: payload.readInt32LE(4),
    ip: formatIp(dst),
    state: payload.readUInt16LE(8),
    flags: payload.readUInt8(10),
  };
  // Entries still resolving (INCOMPLETE/FAILED) carry no, or an empty, link-layer address.
  const lladdr = attrs.raw(NDA_LLADDR);
  if (lladdr && lladdr.length > 0) neigh.mac = formatMac(lladdr);
  return neigh;
}



/** For error messages, in `ip neigh` words: neigh 10.1.0.9 lladdr 02:… dev #2. */
export function describeNeigh(n: NeighSpec): string {
  return `neigh ${n.ip}${n.mac ? ` lladdr ${n.mac}` : ''} dev #${n.ifindex}`;
}
