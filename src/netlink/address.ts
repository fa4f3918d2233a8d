// rtnetlink addresses: add/replace/del/list, as `ip addr` does (IFA_LOCAL + IFA_ADDRESS; IPv4
// broadcast derived from the prefix, like `brd +`, unless told otherwise).
import { Attrs, encodePayload, nla, type Attr } from './codec.js';
import * as K from './constants.js';
import { broadcastOf, parseCidr } from '../net/cidr.js';
import { familyOf, formatIp, parseIp, type Family } from '../net/ip.js';
import { afOf } from './ip.js';
import type { NetlinkSocket } from './socket.js';

export interface AddressSpec {
  ifindex: number;
  /** Address with prefix, e.g. 10.244.1.1/24. */
  cidr: string;
  /** IPv4 broadcast: 'auto' (default) derives it from the prefix; 'none' leaves it unset. */
  broadcast?: string | 'auto' | 'none';
  label?: string;
  scope?: number;
  /** IFA_F_* flags, e.g. IFA_F_NODAD (0x02) for IPv6. */
  flags?: number;
}

export interface Address {
  family: Family;
  ifindex: number;
  /** local/prefix, e.g. 10.244.1.1/24 */
  cidr: string;
  local: string;
  prefixLen: number;
  scope: number;
  flags: number;
  broadcast?: string;
  label?: string;
}

/** ifaddrmsg + attributes (pure; used by the operations and golden tests). */
export function encodeAddressMsg(a: AddressSpec): Buffer {
  if (!Number.isInteger(a.ifindex) || a.ifindex <= 0) throw new Error(`address ${a.cidr}: invalid ifindex ${a.ifindex}`);
  const cidr = parseCidr(a.cidr);
  const { addr, prefixLen } = cidr;
  const flags = a.flags ?? 0;
  const hdr = Buffer.alloc(K.IFADDRMSG_LEN);
  hdr.writeUInt8(afOf(addr.family), 0);
  hdr.writeUInt8(prefixLen, 1);
  hdr.writeUInt8(flags & 0xff, 2);
  hdr.writeUInt8(a.scope ?? K.RT_SCOPE_UNIVERSE, 3);
  hdr.writeUInt32LE(a.ifindex, 4);
  const attrs: Attr[] = [nla.bytes(K.IFA_LOCAL, addr.bytes), nla.bytes(K.IFA_ADDRESS, addr.bytes)];
  if (addr.family === 4 && a.broadcast !== 'none') {
    if (a.broadcast === undefined || a.broadcast === 'auto') {
      if (prefixLen < 31) attrs.push(nla.bytes(K.IFA_BROADCAST, broadcastOf(cidr).bytes));
    } else {
      attrs.push(nla.bytes(K.IFA_BROADCAST, parseIp(a.broadcast).bytes));
    }
  }
  if (a.label !== undefined) attrs.push(nla.str(K.IFA_LABEL, a.label));
  if (flags > 0xff) attrs.push(nla.u32(K.IFA_FLAGS, flags));
  return encodePayload(hdr, attrs);
}

export function decodeAddress(payload: Buffer): Address {
  const prefixLen = payload.readUInt8(1);
  const a = new Attrs(payload.subarray(K.IFADDRMSG_LEN));
  const local = a.raw(K.IFA_LOCAL) ?? a.raw(K.IFA_ADDRESS) ?? Buffer.alloc(payload.readUInt8(0) === K.AF_INET ? 4 : 16);
  const out: Address = {
    family: familyOf(local),
    ifindex: payload.readUInt32LE(4),
    cidr: `${formatIp(local)}/${prefixLen}`,
    local: formatIp(local),
    prefixLen,
    scope: payload.readUInt8(3),
    flags: a.u32(K.IFA_FLAGS) ?? payload.readUInt8(2),
  };
  const brd = a.raw(K.IFA_BROADCAST);
  if (brd) out.broadcast = formatIp(brd);
  const label = a.str(K.IFA_LABEL);
  if (label !== undefined) out.label = label;
  return out;
}

const ctx = (op: string, a: AddressSpec) => ({ op, object: `address ${a.cidr} dev #${a.ifindex}` });

export function addrAdd(sock: NetlinkSocket, a: AddressSpec): void {
  sock.exec(K.RTM_NEWADDR, K.NLM_F_CREATE | K.NLM_F_EXCL, encodeAddressMsg(a), ctx('address add', a));
}

export function addrReplace(sock: NetlinkSocket, a: AddressSpec): void {
  sock.exec(K.RTM_NEWADDR, K.NLM_F_CREATE | K.NLM_F_REPLACE, encodeAddressMsg(a), ctx('address replace', a));
}

export function addrDel(sock: NetlinkSocket, a: AddressSpec): void {
  sock.exec(K.RTM_DELADDR, 0, encodeAddressMsg({ ...a, broadcast: 'none' }), ctx('address del', a));
}

/** Many addresses replaced (added, or kept when there) and deleted in one batch (NetlinkSocket.execBatch): the first failure is thrown after all were tried. */
export function addrBatch(sock: NetlinkSocket, changes: { replace?: readonly AddressSpec[]; del?: readonly AddressSpec[] }): void {
  const reqs = [
    ...(changes.replace ?? []).map((a) => ({ type: K.RTM_NEWADDR, flags: K.NLM_F_CREATE | K.NLM_F_REPLACE, payload: encodeAddressMsg(a), ctx: ctx('address replace', a) })),
    ...(changes.del ?? []).map((a) => ({ type: K.RTM_DELADDR, flags: 0, payload: encodeAddressMsg({ ...a, broadcast: 'none' }), ctx: ctx('address del', a) })),
  ];
  const errors = sock.execBatch(reqs).filter((e) => e !== undefined);
  if (errors.length) {
    const first = errors[0]!;
    if (errors.length > 1) first.message += ` (and ${errors.length - 1} more of the ${reqs.length} address changes failed)`;
    throw first;
  }
}

export function addrList(sock: NetlinkSocket, filter: { ifindex?: number; family?: Family } = {}): Address[] {
  const hdr = Buffer.alloc(K.IFADDRMSG_LEN);
  hdr.writeUInt8(filter.family ? afOf(filter.family) : K.AF_UNSPEC, 0);
  const all = sock.dump(K.RTM_GETADDR, hdr, { op: 'address list', object: filter.ifindex ? `dev #${filter.ifindex}` : 'all' });
  return all
    .map((m) => decodeAddress(m.payload))
    .filter((a) => (filter.ifindex === undefined || a.ifindex === filter.ifindex) && (!filter.family || a.family === filter.family));
}
