// IPVS over generic netlink (family "IPVS"): typed virtual services, real servers (destinations)
// and timeouts, and the request payloads (genlmsghdr + IPVS_CMD_ATTR_*) the client sends. Pure:
// no socket here (ipvs-client.ts sends them). Requests are byte for byte what ipvsadm 1.31 (libnl)
// sends for the same operation (test/fixtures/netlink/ipvs-*.hex), except that commands which only
// name a service or a real server carry just the identifying attributes: the kernel reads nothing
// else there (ip_vs_genl_parse_service/_dest with full_entry false), and ipvsadm itself sends that
// form for its GET_DEST dumps. Replies are decoded in ipvs-decode.ts.
import { encodePayload, nla, type Attr } from './codec.js';
import { encodeGenlHeader } from './genl.js';
import {
  IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IP_VS_CONN_F_BYPASS, IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_LOCALNODE,
  IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_TUNNEL_TYPE_GRE, IP_VS_CONN_F_TUNNEL_TYPE_GUE,
  IP_VS_CONN_F_TUNNEL_TYPE_IPIP, IP_VS_PENAME_MAXLEN, IP_VS_SCHEDNAME_MAXLEN, IP_VS_SVC_F_HASHED,
  IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2,
  IP_VS_TUNNEL_ENCAP_FLAG_CSUM, IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM, IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
  IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_TIMEOUT_TCP, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
  IPVS_CMD_ATTR_TIMEOUT_UDP, IPVS_CMD_DEL_DEST, IPVS_CMD_DEL_SERVICE, IPVS_CMD_FLUSH, IPVS_CMD_GET_CONFIG,
  IPVS_CMD_GET_DEST, IPVS_CMD_GET_INFO, IPVS_CMD_GET_SERVICE, IPVS_CMD_NEW_DEST, IPVS_CMD_NEW_SERVICE,
  IPVS_CMD_SET_CONFIG, IPVS_CMD_SET_DEST, IPVS_CMD_SET_SERVICE, IPVS_DEST_ATTR_ADDR, IPVS_DEST_ATTR_ADDR_FAMILY,
  IPVS_DEST_ATTR_FWD_METHOD, IPVS_DEST_ATTR_L_THRESH, IPVS_DEST_ATTR_PORT, IPVS_DEST_ATTR_TUN_FLAGS,
  IPVS_DEST_ATTR_TUN_PORT, IPVS_DEST_ATTR_TUN_TYPE, IPVS_DEST_ATTR_U_THRESH, IPVS_DEST_ATTR_WEIGHT,
  IPVS_GENL_VERSION, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_FLAGS, IPVS_SVC_ATTR_FWMARK,
  IPVS_SVC_ATTR_NETMASK, IPVS_SVC_ATTR_PE_NAME, IPVS_SVC_ATTR_PORT, IPVS_SVC_ATTR_PROTOCOL,
  IPVS_SVC_ATTR_SCHED_NAME, IPVS_SVC_ATTR_TIMEOUT,
} from './ipvs-constants.js';
import { prefixMask } from '../net/cidr.js';
import { AddressError, parseIp, type Family } from '../net/ip.js';
import { afOf } from './ip.js';
import { checkInt, parseField } from './validate.js';

export type IpvsProtocol = 'tcp' | 'udp' | 'sctp';
export type IpvsForward = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
export type IpvsTunnelType = 'ipip' | 'gue' | 'gre';
export type IpvsTunnelChecksum = 'none' | 'csum' | 'remcsum';

/** A virtual service named by protocol, address and port (family from the address). */
export interface IpvsAddressKey {
  family?: Family;
  protocol: IpvsProtocol;
  address: string;
  port: number;
  fwmark?: undefined;
}
/** A virtual service named by firewall mark (all protocols, addresses and ports the mark selects). */
export interface IpvsFwmarkKey {
  family: Family;
  fwmark: number;
  protocol?: undefined;
  address?: undefined;
  port?: undefined;
}
export type IpvsServiceKey = IpvsAddressKey | IpvsFwmarkKey;

/** ipvsadm -b flags; the sh- and mh- ones share bits, so each is valid only with its scheduler. */
export interface IpvsServiceFlagsSpec {
  persistent?: boolean;
  onePacket?: boolean;
  shFallback?: boolean;
  shPort?: boolean;
  mhFallback?: boolean;
  mhPort?: boolean;
}
export interface IpvsServiceFlags extends Required<IpvsServiceFlagsSpec> {
  /** Set by the kernel on every service in its table. */
  hashed: boolean;
  /** IP_VS_SVC_F_* as the kernel holds them (scheduler flags of other schedulers included). */
  raw: number;
}

export interface IpvsServiceOptions {
  /** Scheduler module name without ip_vs_ (rr, wrr, lc, wlc, sh, mh, ...). */
  scheduler: string;
  flags?: IpvsServiceFlagsSpec;
  /** Persistence timeout in seconds: needs flags.persistent (and is needed by it). */
  timeout?: number;
  /**
   * Persistence granularity: a prefix length (IPv4 0-32, IPv6 1-128; default the whole address),
   * or for IPv4 a dotted mask (the kernel takes non-contiguous ones too).
   */
  netmask?: number | string;
  /** Persistence engine (e.g. sip). */
  persistenceEngine?: string;
}
export type IpvsServiceSpec = IpvsServiceKey & IpvsServiceOptions;

export interface IpvsStats {
  conns: number;
  inPackets: number;
  outPackets: number;
  inBytes: number;
  outBytes: number;
  /** Rates the kernel estimates every 2 s: connections, packets and bytes per second. */
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

interface IpvsServiceState {
  family: Family;
  scheduler: string;
  flags: IpvsServiceFlags;
  timeout: number;
  /** A prefix length; a dotted mask only for a non-contiguous IPv4 one. */
  netmask: number | string;
  persistenceEngine?: string;
  /** 32-bit counters (IPVS_SVC_ATTR_STATS); wrap on long-lived services. */
  stats?: IpvsStats;
  /** 64-bit counters (IPVS_SVC_ATTR_STATS64, Linux 4.1+); numbers lose precision above 2^53. */
  stats64?: IpvsStats;
}
/** A virtual service as the kernel reports it. */
export type IpvsService =
  | (Omit<IpvsAddressKey, 'family'> & IpvsServiceState)
  | (Omit<IpvsFwmarkKey, 'family'> & IpvsServiceState);

export interface IpvsDestinationKey {
  address: string;
  port: number;
}
export interface IpvsDestinationSpec extends IpvsDestinationKey {
  forward: IpvsForward;
  /** Default 1 (ipvsadm's); 0 quiesces it: no new connections, existing ones stay. */
  weight?: number;
  /** Connection thresholds: 0 = none; lower ≤ upper. */
  upperThreshold?: number;
  lowerThreshold?: number;
  /** forward 'tunnel' only: encapsulation (default ipip), UDP port for gue, checksum mode. */
  tunnelType?: IpvsTunnelType;
  tunnelPort?: number;
  tunnelChecksum?: IpvsTunnelChecksum;
}
/** A real server as the kernel reports it. */
export interface IpvsDestination extends IpvsDestinationKey {
  addressFamily: Family;
  forward: IpvsForward;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  activeConns: number;
  inactiveConns: number;
  persistConns: number;
  tunnelType?: IpvsTunnelType;
  tunnelPort?: number;
  tunnelChecksum?: IpvsTunnelChecksum;
  stats?: IpvsStats;
  stats64?: IpvsStats;
}

/** Connection timeouts in seconds (ipvsadm --set tcp tcpfin udp). */
export interface IpvsConfig {
  tcp: number;
  tcpFin: number;
  udp: number;
}

export interface IpvsInfo {
  /** e.g. "1.2.1" */
  version: string;
  connTableSize: number;
}

export const IPVS_PROTOCOLS: Record<IpvsProtocol, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP };
export const IPVS_FORWARDS: Record<IpvsForward, number> = {
  masq: IP_VS_CONN_F_MASQ, local: IP_VS_CONN_F_LOCALNODE, tunnel: IP_VS_CONN_F_TUNNEL, route: IP_VS_CONN_F_DROUTE,
  bypass: IP_VS_CONN_F_BYPASS,
};
export const IPVS_TUNNEL_TYPES: Record<IpvsTunnelType, number> = {
  ipip: IP_VS_CONN_F_TUNNEL_TYPE_IPIP, gue: IP_VS_CONN_F_TUNNEL_TYPE_GUE, gre: IP_VS_CONN_F_TUNNEL_TYPE_GRE,
};
export const IPVS_TUNNEL_CHECKSUMS: Record<IpvsTunnelChecksum, number> = {
  none: IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM, csum: IP_VS_TUNNEL_ENCAP_FLAG_CSUM, remcsum: IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
};
/** The kernel multiplies seconds by HZ into an int: INT_MAX / 1000 is safe for every HZ. */
export const IPVS_MAX_TIMEOUT_S = Math.floor(0x7fffffff / 1000);
/** union nf_inet_addr: every address travels as 16 bytes, IPv4 in the first 4. */
export const IPVS_ADDR_LEN = 16;

// ---- encoders: one per request ------------------------------------------------------------

export const encodeNewService = (s: IpvsServiceSpec): Buffer => request(IPVS_CMD_NEW_SERVICE, [fullService(s)]);
/** Replaces every option of the service (flags included), as ipvsadm -E does. */
export const encodeSetService = (s: IpvsServiceSpec): Buffer => request(IPVS_CMD_SET_SERVICE, [fullService(s)]);
export const encodeDelService = (k: IpvsServiceKey): Buffer => request(IPVS_CMD_DEL_SERVICE, [serviceKey(k)]);
export const encodeGetService = (k: IpvsServiceKey): Buffer => request(IPVS_CMD_GET_SERVICE, [serviceKey(k)]);
/** The dump request: every service of the netns. */
export const encodeGetServices = (): Buffer => request(IPVS_CMD_GET_SERVICE, []);
export const encodeGetDestinations = (k: IpvsServiceKey): Buffer => request(IPVS_CMD_GET_DEST, [serviceKey(k)]);
export const encodeFlush = (): Buffer => request(IPVS_CMD_FLUSH, []);
export const encodeGetConfig = (): Buffer => request(IPVS_CMD_GET_CONFIG, []);
export const encodeGetInfo = (): Buffer => request(IPVS_CMD_GET_INFO, []);

export function encodeNewDestination(k: IpvsServiceKey, d: IpvsDestinationSpec): Buffer {
  return request(IPVS_CMD_NEW_DEST, [serviceKey(k), fullDestination(k, d)]);
}
export function encodeSetDestination(k: IpvsServiceKey, d: IpvsDestinationSpec): Buffer {
  return request(IPVS_CMD_SET_DEST, [serviceKey(k), fullDestination(k, d)]);
}
export function encodeDelDestination(k: IpvsServiceKey, d: IpvsDestinationKey): Buffer {
  const key = serviceKey(k);
  const dest = destinationAddress(d);
  return request(IPVS_CMD_DEL_DEST, [key, nla.nested(IPVS_CMD_ATTR_DEST, dest.attrs)]);
}

/** Timeouts left out keep their value (the kernel reads 0 as "unchanged"). */
export function encodeSetConfig(c: Partial<IpvsConfig>): Buffer {
  const attrs: Attr[] = [];
  for (const [field, type] of [['tcp', IPVS_CMD_ATTR_TIMEOUT_TCP], ['tcpFin', IPVS_CMD_ATTR_TIMEOUT_TCP_FIN], ['udp', IPVS_CMD_ATTR_TIMEOUT_UDP]] as const) {
    const value = c[field];
    if (value === undefined) continue;
    checkInt('ipvs config', `${field} timeout`, value, 1, IPVS_MAX_TIMEOUT_S);
    attrs.push(nla.u32(type, value));
  }
  if (attrs.length === 0) throw new RangeError('ipvs config: give at least one of tcp, tcpFin, udp (seconds)');
  return request(IPVS_CMD_SET_CONFIG, attrs);
}

function request(cmd: number, attrs: Attr[]): Buffer {
  return encodePayload(encodeGenlHeader(cmd, IPVS_GENL_VERSION), attrs);
}

// ---- services -----------------------------------------------------------------------------

interface ParsedKey {
  family: Family;
  attrs: Attr[];
}

function parseServiceKey(k: IpvsServiceKey): ParsedKey {
  const given = k as unknown as Record<string, unknown>; // for messages about input the types rule out
  if (k.fwmark !== undefined) {
    checkInt('ipvs service', 'fwmark', k.fwmark, 1, 0xffffffff);
    if (k.family !== 4 && k.family !== 6) throw new RangeError(`ipvs service FWM ${given.fwmark}: family ${JSON.stringify(k.family)} must be 4 or 6`);
    if (k.address !== undefined || k.port !== undefined || k.protocol !== undefined) {
      throw new RangeError(`ipvs service FWM ${given.fwmark}: a fwmark service has no protocol, address or port`);
    }
    return { family: k.family, attrs: [nla.u16(IPVS_SVC_ATTR_AF, afOf(k.family)), nla.u32(IPVS_SVC_ATTR_FWMARK, k.fwmark)] };
  }
  const protocol = IPVS_PROTOCOLS[k.protocol];
  if (protocol === undefined || !Object.hasOwn(IPVS_PROTOCOLS, k.protocol)) {
    throw new RangeError(`ipvs service protocol ${JSON.stringify(k.protocol)}: must be tcp, udp or sctp (or give a fwmark)`);
  }
  const addr = parseField('ipvs service', 'address', k.address, parseIp);
  if (k.family !== undefined && k.family !== addr.family) {
    throw new AddressError(`ipvs service address ${k.address} is IPv${addr.family} but family is ${JSON.stringify(k.family)}`);
  }
  checkInt('ipvs service', 'port', k.port, 0, 0xffff);
  if (k.port === undefined) throw new RangeError(`ipvs service ${given.address}: port is required (0 with persistence = every port)`);
  return {
    family: addr.family,
    attrs: [
      nla.u16(IPVS_SVC_ATTR_AF, afOf(addr.family)), nla.u16(IPVS_SVC_ATTR_PROTOCOL, protocol),
      nla.bytes(IPVS_SVC_ATTR_ADDR, inetAddr(addr.bytes)), nla.be16(IPVS_SVC_ATTR_PORT, k.port),
    ],
  };
}

/** The address family of a service key (from its address when not given); throws on a bad key. */
export function ipvsServiceFamily(k: IpvsServiceKey): Family {
  return parseServiceKey(k).family;
}

function serviceKey(k: IpvsServiceKey): Attr {
  return nla.nested(IPVS_CMD_ATTR_SERVICE, parseServiceKey(k).attrs);
}

// ipvsadm's order: key, SCHED_NAME, PE_NAME, FLAGS {flags, mask ~0}, TIMEOUT, NETMASK.
function fullService(s: IpvsServiceSpec): Attr {
  const key = parseServiceKey(s);
  const what = `ipvs service ${describeIpvsService(s)}`;
  checkName(what, 'scheduler', s.scheduler, IP_VS_SCHEDNAME_MAXLEN);
  const flags = serviceFlagBits(what, s.scheduler, s.flags ?? {});
  const persistent = (flags & IP_VS_SVC_F_PERSISTENT) !== 0;
  if (persistent && s.timeout === undefined) throw new RangeError(`${what}: persistent needs a timeout (seconds, 1-${IPVS_MAX_TIMEOUT_S})`);
  if (!persistent && s.timeout !== undefined) throw new RangeError(`${what}: timeout ${s.timeout} is the persistence timeout: set flags.persistent too`);
  checkInt(what, 'timeout', s.timeout, 1, IPVS_MAX_TIMEOUT_S);
  const attrs = [...key.attrs, nla.str(IPVS_SVC_ATTR_SCHED_NAME, s.scheduler)];
  if (s.persistenceEngine !== undefined) {
    checkName(what, 'persistenceEngine', s.persistenceEngine, IP_VS_PENAME_MAXLEN);
    attrs.push(nla.str(IPVS_SVC_ATTR_PE_NAME, s.persistenceEngine));
  }
  const flagsValue = Buffer.alloc(8);
  flagsValue.writeUInt32LE(flags, 0);
  flagsValue.writeUInt32LE(0xffffffff, 4);
  attrs.push(nla.bytes(IPVS_SVC_ATTR_FLAGS, flagsValue), nla.u32(IPVS_SVC_ATTR_TIMEOUT, s.timeout ?? 0));
  attrs.push(nla.bytes(IPVS_SVC_ATTR_NETMASK, netmaskValue(what, key.family, s.netmask)));
  return nla.nested(IPVS_CMD_ATTR_SERVICE, attrs);
}

function serviceFlagBits(what: string, scheduler: string, f: IpvsServiceFlagsSpec): number {
  for (const [flag, sched] of [['shFallback', 'sh'], ['shPort', 'sh'], ['mhFallback', 'mh'], ['mhPort', 'mh']] as const) {
    if (f[flag] && scheduler !== sched) throw new RangeError(`${what}: flag ${flag} is for the ${sched} scheduler, not ${scheduler}`);
  }
  const known = new Set(['persistent', 'onePacket', 'shFallback', 'shPort', 'mhFallback', 'mhPort']);
  for (const name of Object.keys(f)) {
    if (!known.has(name)) throw new RangeError(`${what}: unknown flag ${JSON.stringify(name)} (known: ${[...known].join(', ')})`);
  }
  let bits = 0;
  if (f.persistent) bits |= IP_VS_SVC_F_PERSISTENT;
  if (f.onePacket) bits |= IP_VS_SVC_F_ONEPACKET;
  if (f.shFallback || f.mhFallback) bits |= IP_VS_SVC_F_SCHED1;
  if (f.shPort || f.mhPort) bits |= IP_VS_SVC_F_SCHED2;
  return bits;
}

/** Decoded flags; which names the scheduler bits get depends on the scheduler. */
export function ipvsServiceFlags(raw: number, scheduler: string): IpvsServiceFlags {
  const sched1 = (raw & IP_VS_SVC_F_SCHED1) !== 0;
  const sched2 = (raw & IP_VS_SVC_F_SCHED2) !== 0;
  return {
    persistent: (raw & IP_VS_SVC_F_PERSISTENT) !== 0,
    hashed: (raw & IP_VS_SVC_F_HASHED) !== 0,
    onePacket: (raw & IP_VS_SVC_F_ONEPACKET) !== 0,
    shFallback: scheduler === 'sh' && sched1,
    shPort: scheduler === 'sh' && sched2,
    mhFallback: scheduler === 'mh' && sched1,
    mhPort: scheduler === 'mh' && sched2,
    raw,
  };
}

// IPv4: the mask itself (be32); IPv6: the prefix length as a host-order u32 (ipvsadm and the
// kernel's ip_vs_add_service agree on this asymmetry).
function netmaskValue(what: string, family: Family, netmask: number | string | undefined): Buffer {
  const value = Buffer.alloc(4);
  if (typeof netmask === 'string') {
    if (family !== 4) throw new RangeError(`${what}: an IPv6 netmask is a prefix length (1-128), not ${JSON.stringify(netmask)}`);
    const mask = parseField(what, 'netmask', netmask, parseIp);
    if (mask.family !== 4) throw new AddressError(`${what} netmask ${JSON.stringify(netmask)}: not an IPv4 mask`);
    return Buffer.from(mask.bytes);
  }
  if (family === 4) {
    checkInt(what, 'netmask', netmask, 0, 32);
    return prefixMask(4, netmask ?? 32);
  }
  checkInt(what, 'netmask', netmask, 1, 128);
  value.writeUInt32LE(netmask ?? 128, 0);
  return value;
}

function checkName(what: string, field: string, name: unknown, maxLen: number): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(name) || name.length >= maxLen) {
    throw new RangeError(`${what} ${field} ${JSON.stringify(name)}: 1-${maxLen - 1} characters of A-Z a-z 0-9 _ . -`);
  }
}

// ---- destinations -------------------------------------------------------------------------

function destinationAddress(d: IpvsDestinationKey): { family: Family; attrs: Attr[] } {
  const addr = parseField('ipvs destination', 'address', d.address, parseIp);
  checkInt(`ipvs destination ${d.address}`, 'port', d.port, 0, 0xffff);
  if (d.port === undefined) throw new RangeError(`ipvs destination ${d.address}: port is required`);
  return {
    family: addr.family,
    attrs: [
      nla.u16(IPVS_DEST_ATTR_ADDR_FAMILY, afOf(addr.family)), nla.bytes(IPVS_DEST_ATTR_ADDR, inetAddr(addr.bytes)),
      nla.be16(IPVS_DEST_ATTR_PORT, d.port),
    ],
  };
}

// ipvsadm's order: AF, ADDR, PORT, FWD_METHOD, WEIGHT, TUN_TYPE, TUN_PORT, TUN_FLAGS, U/L_THRESH.
function fullDestination(k: IpvsServiceKey, d: IpvsDestinationSpec): Attr {
  const serviceFamily = parseServiceKey(k).family;
  const dest = destinationAddress(d);
  const what = `ipvs destination ${describeIpvsDestination(k, d)}`;
  const forward = IPVS_FORWARDS[d.forward];
  if (forward === undefined || !Object.hasOwn(IPVS_FORWARDS, d.forward)) {
    throw new RangeError(`${what}: forward ${JSON.stringify(d.forward)} must be one of ${Object.keys(IPVS_FORWARDS).join(', ')}`);
  }
  if (dest.family !== serviceFamily && d.forward !== 'tunnel') {
    throw new RangeError(`${what}: an IPv${dest.family} real server in an IPv${serviceFamily} service needs forward 'tunnel'`);
  }
  checkInt(what, 'weight', d.weight, 0, 0x7fffffff);
  checkInt(what, 'upperThreshold', d.upperThreshold, 0, 0xffffffff);
  checkInt(what, 'lowerThreshold', d.lowerThreshold, 0, 0xffffffff);
  if ((d.lowerThreshold ?? 0) > (d.upperThreshold ?? 0)) {
    throw new RangeError(`${what}: lowerThreshold ${d.lowerThreshold} is above upperThreshold ${d.upperThreshold ?? 0}`);
  }
  const tunnel = tunnelValues(what, d);
  return nla.nested(IPVS_CMD_ATTR_DEST, [
    ...dest.attrs, nla.u32(IPVS_DEST_ATTR_FWD_METHOD, forward), nla.u32(IPVS_DEST_ATTR_WEIGHT, d.weight ?? 1),
    nla.u8(IPVS_DEST_ATTR_TUN_TYPE, tunnel.type), nla.be16(IPVS_DEST_ATTR_TUN_PORT, tunnel.port),
    nla.u16(IPVS_DEST_ATTR_TUN_FLAGS, tunnel.flags), nla.u32(IPVS_DEST_ATTR_U_THRESH, d.upperThreshold ?? 0),
    nla.u32(IPVS_DEST_ATTR_L_THRESH, d.lowerThreshold ?? 0),
  ]);
}

function tunnelValues(what: string, d: IpvsDestinationSpec): { type: number; port: number; flags: number } {
  const given = d.tunnelType !== undefined || d.tunnelPort !== undefined || d.tunnelChecksum !== undefined;
  if (given && d.forward !== 'tunnel') throw new RangeError(`${what}: tunnelType/tunnelPort/tunnelChecksum need forward 'tunnel'`);
  const type = IPVS_TUNNEL_TYPES[d.tunnelType ?? 'ipip'];
  if (type === undefined || !Object.hasOwn(IPVS_TUNNEL_TYPES, d.tunnelType ?? 'ipip')) {
    throw new RangeError(`${what}: tunnelType ${JSON.stringify(d.tunnelType)} must be ipip, gue or gre`);
  }
  const flags = IPVS_TUNNEL_CHECKSUMS[d.tunnelChecksum ?? 'none'];
  if (flags === undefined || !Object.hasOwn(IPVS_TUNNEL_CHECKSUMS, d.tunnelChecksum ?? 'none')) {
    throw new RangeError(`${what}: tunnelChecksum ${JSON.stringify(d.tunnelChecksum)} must be none, csum or remcsum`);
  }
  if (d.tunnelType === 'gue') checkInt(what, 'tunnelPort', d.tunnelPort ?? 0, 1, 0xffff);
  else if (d.tunnelPort !== undefined) throw new RangeError(`${what}: tunnelPort is for tunnelType gue only`);
  return { type, port: d.tunnelPort ?? 0, flags };
}

// ---- shared -------------------------------------------------------------------------------

function inetAddr(bytes: Buffer): Buffer {
  const out = Buffer.alloc(IPVS_ADDR_LEN);
  bytes.copy(out, 0);
  return out;
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** In ipvsadm -Ln words: "TCP 10.96.0.5:80", "UDP [fd00::5]:53", "FWM 7", "FWM 7 IPv6". */
export function describeIpvsService(k: IpvsServiceKey): string {
  if (k.fwmark !== undefined) return `FWM ${k.fwmark}${k.family === 6 ? ' IPv6' : ''}`;
  return `${String(k.protocol).toUpperCase()} ${hostPort(String(k.address), k.port)}`;
}

/** "TCP 10.96.0.5:80 -> 10.244.1.5:8080". */
export function describeIpvsDestination(k: IpvsServiceKey, d: IpvsDestinationKey): string {
  return `${describeIpvsService(k)} -> ${hostPort(String(d.address), d.port)}`;
}

/** The key of a decoded (or any) service: what the other commands take to name it. */
export function ipvsServiceKeyOf(s: IpvsService | IpvsServiceKey & { family: Family }): IpvsServiceKey {
  if (s.fwmark !== undefined) return { family: s.family, fwmark: s.fwmark };
  return { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
}

