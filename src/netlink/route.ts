// Routes (RTM_{NEW,DEL,GET}ROUTE): rtmsg + RTA_* attributes, with the defaults `ip route` applies,
// so `routeAdd(sock, { dst, gateway, ifindex })` sends the same bytes as `ip route add DST via GW dev IF`.
import { Attrs, CodecError, encodePayload, nla, type Attr } from './codec.js';
import {
  AF_INET, AF_INET6, AF_UNSPEC, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTA_DST, RTA_GATEWAY, RTA_OIF,
  RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, RTN_BROADCAST, RTN_LOCAL,
  RTN_UNICAST, RTN_UNSPEC, RTNH_F_ONLINK, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE,
  RT_TABLE_LOCAL, RT_TABLE_MAIN, RTPROT_BOOT, RTN_ANYCAST, RTN_MULTICAST, RTN_NAT, RTMSG_LEN,
  RTA_SRC, RTA_IIF, RTA_MARK, RTA_IP_PROTO, RTA_SPORT, RTA_DPORT, RTM_F_LOOKUP_TABLE, RTM_F_FIB_MATCH,
} from './constants.js';
import { NetlinkError } from './errors.js';
import { formatCidr, hostBitsSet, networkOf, parseCidr } from '../net/cidr.js';
import { AddressError, formatIp, parseIp, type Family } from '../net/ip.js';
import { afOf } from './ip.js';
import type { NetlinkSocket } from './socket.js';
import { checkInt, parseField } from './validate.js';

// Not (yet) in constants.ts: route types whose default scope/table differ (rtnetlink.h).

export interface RouteSpec {
  family?: 4 | 6;
  /** CIDR; undefined or 'default' = the default route. */
  dst?: string;
  gateway?: string;
  ifindex?: number;
  onlink?: boolean;
  /** Default 254 (main); tables above 255 travel in RTA_TABLE. */
  table?: number;
  /** Default RTPROT_BOOT, like `ip route`. */
  protocol?: number;
  /** Default like iproute2: link when there is no gateway, universe otherwise (always universe for IPv6). */
  scope?: number;
  /** Default RTN_UNICAST. */
  type?: number;
  priority?: number;
  prefsrc?: string;
}

export interface Route {
  family: 4 | 6;
  /** Always a CIDR, e.g. 0.0.0.0/0 for the default route. */
  dst: string;
  gateway?: string;
  ifindex?: number;
  onlink: boolean;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  priority?: number;
  prefsrc?: string;
}

export interface RouteFilter {
  family?: 4 | 6;
  /** Default main (254); 0 = all tables. */
  table?: number;
  ifindex?: number;
  protocol?: number;
}

export function routeAdd(sock: NetlinkSocket, r: RouteSpec): void {
  sock.exec(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, encodeRouteMsg(r, false), { op: 'route add', object: describeRoute(r) });
}

export function routeReplace(sock: NetlinkSocket, r: RouteSpec): void {
  sock.exec(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, encodeRouteMsg(r, false), { op: 'route replace', object: describeRoute(r) });
}

/** Fields left out match any route (like `ip route del`): give gateway/ifindex/… to pick one of several. */
export function routeDel(sock: NetlinkSocket, r: RouteSpec): void {
  sock.exec(RTM_DELROUTE, 0, encodeRouteMsg(r, true), { op: 'route del', object: describeRoute(r) });
}

/** Routes of the main table by default. The kernel filters by family only; the rest is done here. */
export function routeList(sock: NetlinkSocket, filter: RouteFilter = {}): Route[] {
  const table = filter.table ?? RT_TABLE_MAIN;
  const header = Buffer.alloc(RTMSG_LEN);
  header.writeUInt8(filter.family === undefined ? AF_UNSPEC : afOf(filter.family), 0);
  const what = `routes${filter.family ? ` (IPv${filter.family})` : ''}${table ? ` of table ${table}` : ''}`;
  const replies = sock.dump(RTM_GETROUTE, header, { op: 'route list', object: what });
  const routes: Route[] = [];
  for (const msg of replies) {
    if (msg.type !== RTM_NEWROUTE || msg.payload.length < RTMSG_LEN) continue;
    // An AF_UNSPEC dump also walks multicast routing families (RTNL_FAMILY_IPMR, …): not routes here.
    const af = msg.payload.readUInt8(0);
    if (af !== AF_INET && af !== AF_INET6) continue;
    const route = decodeRoute(msg.payload);
    if (table && route.table !== table) continue;
    if (filter.family && route.family !== filter.family) continue;
    if (filter.ifindex !== undefined && route.ifindex !== filter.ifindex) continue;
    if (filter.protocol !== undefined && route.protocol !== filter.protocol) continue;
    routes.push(route);
  }
  return routes;
}

interface ParsedRoute {
  family: Family;
  dst?: { bytes: Buffer; prefixLen: number };
  gateway?: Buffer;
  prefsrc?: Buffer;
}

/** rtmsg + attributes. Deletes leave protocol/type/scope as wildcards unless given, like `ip route del`. */
export function encodeRouteMsg(r: RouteSpec, forDelete: boolean): Buffer {
  const p = parseRouteSpec(r);
  const type = r.type ?? (forDelete ? RTN_UNSPEC : RTN_UNICAST);
  const table = r.table ?? defaultTable(type);
  const header = Buffer.alloc(RTMSG_LEN);
  header.writeUInt8(afOf(p.family), 0);
  header.writeUInt8(p.dst?.prefixLen ?? 0, 1);
  header.writeUInt8(table > 255 ? 0 : table, 4); // RT_TABLE_UNSPEC: the kernel reads RTA_TABLE instead
  header.writeUInt8(r.protocol ?? (forDelete ? 0 : RTPROT_BOOT), 5);
  header.writeUInt8(r.scope ?? defaultScope(p.family, type, p.gateway !== undefined, forDelete), 6);
  header.writeUInt8(type, 7);
  header.writeUInt32LE(r.onlink ? RTNH_F_ONLINK : 0, 8);
  // Same attribute order as iproute2 for `ip route add DST via GW metric N src S table T dev IF`.
  const attrs: Attr[] = [];
  if (p.dst) attrs.push(nla.bytes(RTA_DST, p.dst.bytes));
  if (p.gateway) attrs.push(nla.bytes(RTA_GATEWAY, p.gateway));
  if (r.priority !== undefined) attrs.push(nla.u32(RTA_PRIORITY, r.priority));
  if (p.prefsrc) attrs.push(nla.bytes(RTA_PREFSRC, p.prefsrc));
  if (table > 255) attrs.push(nla.u32(RTA_TABLE, table));
  if (r.ifindex !== undefined) attrs.push(nla.u32(RTA_OIF, r.ifindex));
  return encodePayload(header, attrs);
}

export function decodeRoute(payload: Buffer): Route {
  if (payload.length < RTMSG_LEN) throw new CodecError(`route message too short: ${payload.length} bytes`);
  const af = payload.readUInt8(0);
  if (af !== AF_INET && af !== AF_INET6) throw new CodecError(`not an IPv4/IPv6 route: address family ${af}`);
  const family: Family = af === AF_INET ? 4 : 6;
  const attrs = new Attrs(payload.subarray(RTMSG_LEN));
  const dstBytes = attrs.raw(RTA_DST) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const route: Route = {
    family,
    dst: `${formatIp(dstBytes)}/${payload.readUInt8(1)}`,
    onlink: (payload.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
    table: attrs.u32(RTA_TABLE) ?? payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: payload.readUInt8(6),
    type: payload.readUInt8(7),
  };
  const gateway = attrs.raw(RTA_GATEWAY);
  if (gateway) route.gateway = formatIp(gateway);
  const oif = attrs.u32(RTA_OIF);
  if (oif !== undefined) route.ifindex = oif;
  const priority = attrs.u32(RTA_PRIORITY);
  if (priority !== undefined) route.priority = priority;
  const prefsrc = attrs.raw(RTA_PREFSRC);
  if (prefsrc) route.prefsrc = formatIp(prefsrc);
  return route;
}

/** Validate everything before a byte is sent; errors name the field and the value. */
function parseRouteSpec(r: RouteSpec): ParsedRoute {
  checkInt('route', 'ifindex', r.ifindex, 1, 0x7fffffff);
  checkInt('route', 'table', r.table, 0, 0xffffffff);
  checkInt('route', 'priority', r.priority, 0, 0xffffffff);
  for (const field of ['protocol', 'scope', 'type'] as const) checkInt('route', field, r[field], 0, 255);
  if (r.family !== undefined && r.family !== 4 && r.family !== 6) {
    throw new RangeError(`route family ${JSON.stringify(r.family)}: must be 4 or 6`);
  }
  const dst = r.dst === undefined || r.dst === 'default' ? undefined : parseDst(r.dst);
  const gateway = r.gateway === undefined ? undefined : parseField('route', 'gateway', r.gateway, parseIp);
  const prefsrc = r.prefsrc === undefined ? undefined : parseField('route', 'prefsrc', r.prefsrc, parseIp);
  const family = r.family ?? dst?.family ?? gateway?.family ?? prefsrc?.family ?? 4;
  for (const [field, addr] of [['dst', dst], ['gateway', gateway], ['prefsrc', prefsrc]] as const) {
    if (addr && addr.family !== family) {
      throw new AddressError(`route ${field} ${JSON.stringify(r[field])} is IPv${addr.family} but the route is IPv${family}`);
    }
  }
  const parsed: ParsedRoute = { family };
  if (dst) parsed.dst = { bytes: dst.bytes, prefixLen: dst.prefixLen };
  if (gateway) parsed.gateway = gateway.bytes;
  if (prefsrc) parsed.prefsrc = prefsrc.bytes;
  return parsed;
}

function parseDst(text: string): { family: Family; bytes: Buffer; prefixLen: number } {
  let cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    throw new AddressError(`route dst: ${(err as Error).message} (or 'default')`);
  }
  // The kernel rejects IPv4 prefixes with host bits set and silently masks IPv6 ones: refuse both
  // here so the route that exists is always the one that was asked for.
  if (hostBitsSet(cidr)) {
    throw new AddressError(`route dst ${JSON.stringify(text)} has host bits set: did you mean ${formatCidr(networkOf(cidr))}?`);
  }
  return { family: cidr.addr.family, bytes: cidr.addr.bytes, prefixLen: cidr.prefixLen };
}

// iproute2 puts local/broadcast/nat/anycast routes in the local table when none is given.
function defaultTable(type: number): number {
  return [RTN_LOCAL, RTN_BROADCAST, RTN_NAT, RTN_ANYCAST].includes(type) ? RT_TABLE_LOCAL : RT_TABLE_MAIN;
}

// iproute2's iproute_modify(): scope from family, type and whether there is a gateway. For deletes
// RT_SCOPE_NOWHERE is the kernel's "any scope" wildcard.
function defaultScope(family: Family, type: number, hasGateway: boolean, forDelete: boolean): number {
  if (family === 6) return RT_SCOPE_UNIVERSE;
  if (type === RTN_LOCAL || type === RTN_NAT) return RT_SCOPE_HOST;
  if (type === RTN_BROADCAST || type === RTN_MULTICAST || type === RTN_ANYCAST) return RT_SCOPE_LINK;
  if (forDelete) return RT_SCOPE_NOWHERE;
  if (type === RTN_UNICAST || type === RTN_UNSPEC) return hasGateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  return RT_SCOPE_UNIVERSE;
}

/** For error messages, in `ip route` words: route 10.244.2.0/24 via 10.244.2.0 dev #5 table 100. */
export function describeRoute(r: RouteSpec): string {
  const parts = [`route ${r.dst ?? 'default'}`];
  if (r.gateway !== undefined) parts.push(`via ${r.gateway}`);
  if (r.ifindex !== undefined) parts.push(`dev #${r.ifindex}`);
  if (r.onlink) parts.push('onlink');
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) parts.push(`table ${r.table}`);
  if (r.priority !== undefined) parts.push(`metric ${r.priority}`);
  if (r.prefsrc !== undefined) parts.push(`src ${r.prefsrc}`);
  return parts.join(' ');
}

/** A route lookup's packet: what `ip route get DST [from SRC] [iif IF] [oif IF] [mark M] [ipproto P sport S dport D]` gives. */
export interface RouteQuery {
  dst: string;
  src?: string;
  /** Input interface: a forwarding lookup as for a packet arriving there (needs src; rp_filter applies). */
  iif?: number;
  oif?: number;
  mark?: number;
  /** IP protocol number (6 tcp, 17 udp, 132 sctp) and ports, for policy routing on them. */
  ipProto?: number;
  sport?: number;
  dport?: number;
  /** The FIB entry that matched (e.g. 10.244.2.0/24 via ...) instead of the resolved host route. */
  fibMatch?: boolean;
}

/** The answer: the route the kernel would use (type RTN_UNICAST, RTN_LOCAL, …) or the errno it gives. */
export type RouteLookup = { ok: true; route: Route; iif?: number } | { ok: false; errno: number; message: string };

/** RTM_GETROUTE for one packet, byte for byte as iproute2's `ip route get` sends it. */
export function encodeRouteQuery(q: RouteQuery): Buffer {
  const dst = parseField('route get', 'dst', q.dst, parseIp);
  const src = q.src === undefined ? undefined : parseField('route get', 'src', q.src, parseIp);
  if (src && src.family !== dst.family) throw new AddressError(`route get: src ${q.src} is IPv${src.family} but dst ${q.dst} is IPv${dst.family}`);
  checkInt('route get', 'iif', q.iif, 1, 0x7fffffff);
  checkInt('route get', 'oif', q.oif, 1, 0x7fffffff);
  checkInt('route get', 'mark', q.mark, 0, 0xffffffff);
  checkInt('route get', 'ipProto', q.ipProto, 0, 255);
  checkInt('route get', 'sport', q.sport, 0, 0xffff);
  checkInt('route get', 'dport', q.dport, 0, 0xffff);
  if (q.iif !== undefined && !src) throw new RangeError('route get: iif needs src (the kernel looks the packet up as arriving on iif from src)');
  const bits = dst.family === 4 ? 32 : 128;
  const header = Buffer.alloc(RTMSG_LEN);
  header.writeUInt8(afOf(dst.family), 0);
  header.writeUInt8(bits, 1);
  header.writeUInt8(src ? bits : 0, 2);
  header.writeUInt32LE((dst.family === 4 ? RTM_F_LOOKUP_TABLE : 0) | (q.fibMatch ? RTM_F_FIB_MATCH : 0), 8);
  const attrs: Attr[] = [nla.bytes(RTA_DST, dst.bytes)];
  if (src) attrs.push(nla.bytes(RTA_SRC, src.bytes));
  if (q.ipProto !== undefined) attrs.push(nla.u8(RTA_IP_PROTO, q.ipProto));
  if (q.sport !== undefined) attrs.push(nla.be16(RTA_SPORT, q.sport));
  if (q.dport !== undefined) attrs.push(nla.be16(RTA_DPORT, q.dport));
  if (q.iif !== undefined) attrs.push(nla.u32(RTA_IIF, q.iif));
  if (q.oif !== undefined) attrs.push(nla.u32(RTA_OIF, q.oif));
  if (q.mark !== undefined) attrs.push(nla.u32(RTA_MARK, q.mark));
  return encodePayload(header, attrs);
}

/**
 * The kernel's route for one packet (`ip route get`). No route, an unreachable/prohibit/blackhole
 * route, or a forwarding lookup the kernel refuses (a martian source under rp_filter, forwarding off) are answers,
 * not exceptions: { ok: false, errno }. Bad input and netlink failures still throw.
 */
export function routeGet(sock: NetlinkSocket, q: RouteQuery): RouteLookup {
  const payload = encodeRouteQuery(q);
  let replies;
  try {
    replies = sock.exec(RTM_GETROUTE, 0, payload, { op: 'route get', object: `${q.dst}${q.src ? ` from ${q.src}` : ''}${q.iif ? ` iif #${q.iif}` : ''}` });
  } catch (err) {
    if (err instanceof NetlinkError && LOOKUP_ERRNOS.has(err.errno)) return { ok: false, errno: err.errno, message: err.message };
    throw err;
  }
  const msg = replies.find((m) => m.type === RTM_NEWROUTE && m.payload.length >= RTMSG_LEN);
  if (!msg) throw new CodecError(`route get ${q.dst}: the kernel answered without a route`);
  const route = decodeRoute(msg.payload);
  const iif = new Attrs(msg.payload.subarray(RTMSG_LEN)).u32(RTA_IIF);
  return { ok: true, route, ...(iif !== undefined ? { iif } : {}) };
}

// ENETUNREACH, EHOSTUNREACH, EACCES (prohibit), EINVAL (blackhole; a martian source on input), EXDEV,
// ESRCH (no route in a table), EPERM: what a lookup can answer for a packet that would be dropped.
const LOOKUP_ERRNOS = new Set([101, 113, 13, 22, 18, 3, 1]);
