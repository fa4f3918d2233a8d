// Decoding of the IPVS family's replies: NEW_SERVICE and NEW_DEST messages (dumps and GET_SERVICE),
// SET_CONFIG (the GET_CONFIG answer) and SET_INFO. Defensive: a reply without an attribute the
// kernel always sends, of the wrong size, of another command, or with broken nesting is a
// CodecError naming what is wrong; nothing here reads past a buffer.
import { Attrs, CodecError } from './codec.js';
import { AF_INET, AF_INET6 } from './constants.js';
import { GENL_HDRLEN } from './genl.js';
import {
  IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_TIMEOUT_TCP, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
  IPVS_CMD_ATTR_TIMEOUT_UDP, IPVS_CMD_NEW_DEST, IPVS_CMD_NEW_SERVICE, IPVS_CMD_SET_CONFIG, IPVS_CMD_SET_INFO,
  IPVS_DEST_ATTR_ACTIVE_CONNS, IPVS_DEST_ATTR_ADDR, IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_FWD_METHOD,
  IPVS_DEST_ATTR_INACT_CONNS, IPVS_DEST_ATTR_L_THRESH, IPVS_DEST_ATTR_PERSIST_CONNS, IPVS_DEST_ATTR_PORT,
  IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_TUN_FLAGS, IPVS_DEST_ATTR_TUN_PORT,
  IPVS_DEST_ATTR_TUN_TYPE, IPVS_DEST_ATTR_U_THRESH, IPVS_DEST_ATTR_WEIGHT, IPVS_INFO_ATTR_CONN_TAB_SIZE,
  IPVS_INFO_ATTR_VERSION, IPVS_STATS_ATTR_CONNS, IPVS_STATS_ATTR_CPS, IPVS_STATS_ATTR_INBPS,
  IPVS_STATS_ATTR_INBYTES, IPVS_STATS_ATTR_INPKTS, IPVS_STATS_ATTR_INPPS, IPVS_STATS_ATTR_OUTBPS,
  IPVS_STATS_ATTR_OUTBYTES, IPVS_STATS_ATTR_OUTPKTS, IPVS_STATS_ATTR_OUTPPS, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_AF,
  IPVS_SVC_ATTR_FLAGS, IPVS_SVC_ATTR_FWMARK, IPVS_SVC_ATTR_NETMASK, IPVS_SVC_ATTR_PE_NAME, IPVS_SVC_ATTR_PORT,
  IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_SCHED_NAME, IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64,
  IPVS_SVC_ATTR_TIMEOUT, IP_VS_CONN_F_FWD_MASK,
} from './ipvs-constants.js';
import {
  IPVS_FORWARDS, IPVS_PROTOCOLS, ipvsServiceFlags, IPVS_TUNNEL_CHECKSUMS, IPVS_TUNNEL_TYPES, type IpvsConfig, type IpvsDestination,
  type IpvsForward, type IpvsInfo, type IpvsProtocol, type IpvsService, type IpvsStats, type IpvsTunnelChecksum,
  type IpvsTunnelType,
} from './ipvs.js';
import { formatIp, type Family } from '../net/ip.js';

const CMD_NAMES: Record<number, string> = {
  [IPVS_CMD_NEW_SERVICE]: 'IPVS_CMD_NEW_SERVICE', [IPVS_CMD_NEW_DEST]: 'IPVS_CMD_NEW_DEST',
  [IPVS_CMD_SET_CONFIG]: 'IPVS_CMD_SET_CONFIG', [IPVS_CMD_SET_INFO]: 'IPVS_CMD_SET_INFO',
};

/** The attributes after the genlmsghdr of a reply that must carry command `cmd`. */
function replyAttrs(payload: Buffer, cmd: number, what: string): Attrs {
  if (payload.length < GENL_HDRLEN) {
    throw new CodecError(`IPVS ${what} reply too short: ${payload.length} bytes, genlmsghdr needs ${GENL_HDRLEN}`);
  }
  const got = payload.readUInt8(0);
  if (got !== cmd) throw new CodecError(`IPVS ${what} reply has command ${got}, expected ${cmd} (${CMD_NAMES[cmd]})`);
  return new Attrs(payload.subarray(GENL_HDRLEN));
}

/** A nested attribute that must be there. */
function nest(attrs: Attrs, type: number, what: string, name: string): Attrs {
  const raw = attrs.raw(type);
  if (raw === undefined) throw new CodecError(`IPVS ${what} reply without ${name}`);
  try {
    return new Attrs(raw);
  } catch (err) {
    throw new CodecError(`IPVS ${what} reply: ${name} is not a valid nest (${(err as Error).message})`);
  }
}

/** A fixed-size attribute that must be there (with at least `size` bytes). */
function need(attrs: Attrs, type: number, size: number, what: string, name: string): Buffer {
  const raw = attrs.raw(type);
  if (raw === undefined) throw new CodecError(`IPVS ${what} without ${name}`);
  if (raw.length < size) throw new CodecError(`IPVS ${what}: ${name} is ${raw.length} bytes, expected ${size}`);
  return raw;
}

const u32 = (a: Attrs, type: number, what: string, name: string): number => need(a, type, 4, what, name).readUInt32LE(0);

function family(af: number, what: string): Family {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  throw new CodecError(`IPVS ${what}: address family ${af} is neither AF_INET nor AF_INET6`);
}

function address(raw: Buffer, fam: Family, what: string): string {
  const len = fam === 4 ? 4 : 16;
  if (raw.length < len) throw new CodecError(`IPVS ${what}: a ${raw.length}-byte address for IPv${fam}`);
  return formatIp(raw.subarray(0, len));
}

function byValue<K extends string>(table: Record<K, number>, value: number): K | undefined {
  return (Object.keys(table) as K[]).find((k) => table[k] === value);
}

export function decodeService(payload: Buffer): IpvsService {
  const svc = nest(replyAttrs(payload, IPVS_CMD_NEW_SERVICE, 'service'), IPVS_CMD_ATTR_SERVICE, 'service', 'IPVS_CMD_ATTR_SERVICE');
  const what = 'service';
  const fam = family(need(svc, IPVS_SVC_ATTR_AF, 2, what, 'IPVS_SVC_ATTR_AF').readUInt16LE(0), what);
  const scheduler = svc.str(IPVS_SVC_ATTR_SCHED_NAME);
  if (scheduler === undefined) throw new CodecError('IPVS service without IPVS_SVC_ATTR_SCHED_NAME');
  const flagsRaw = need(svc, IPVS_SVC_ATTR_FLAGS, 4, what, 'IPVS_SVC_ATTR_FLAGS').readUInt32LE(0);
  const netmaskRaw = need(svc, IPVS_SVC_ATTR_NETMASK, 4, what, 'IPVS_SVC_ATTR_NETMASK');
  const state = {
    family: fam,
    scheduler,
    flags: ipvsServiceFlags(flagsRaw, scheduler),
    timeout: u32(svc, IPVS_SVC_ATTR_TIMEOUT, what, 'IPVS_SVC_ATTR_TIMEOUT'),
    netmask: fam === 4 ? ipv4Netmask(netmaskRaw) : netmaskRaw.readUInt32LE(0),
    ...optionalStats(svc, IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64, what),
  };
  const pe = svc.str(IPVS_SVC_ATTR_PE_NAME);
  const withPe = pe ? { ...state, persistenceEngine: pe } : state;
  if (svc.has(IPVS_SVC_ATTR_FWMARK)) {
    return { fwmark: u32(svc, IPVS_SVC_ATTR_FWMARK, what, 'IPVS_SVC_ATTR_FWMARK'), ...withPe };
  }
  const protoNumber = need(svc, IPVS_SVC_ATTR_PROTOCOL, 2, what, 'IPVS_SVC_ATTR_PROTOCOL').readUInt16LE(0);
  const protocol: IpvsProtocol | undefined = byValue(IPVS_PROTOCOLS, protoNumber);
  if (!protocol) throw new CodecError(`IPVS service: protocol ${protoNumber} is not tcp, udp or sctp`);
  return {
    protocol,
    address: address(need(svc, IPVS_SVC_ATTR_ADDR, 4, what, 'IPVS_SVC_ATTR_ADDR'), fam, what),
    port: need(svc, IPVS_SVC_ATTR_PORT, 2, what, 'IPVS_SVC_ATTR_PORT').readUInt16BE(0),
    ...withPe,
  };
}

// A contiguous mask as its prefix length; anything else (the kernel accepts it) as dotted text.
function ipv4Netmask(raw: Buffer): number | string {
  const mask = raw.readUInt32BE(0);
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) === 0) return 32 - Math.log2(inverted + 1);
  return formatIp(raw.subarray(0, 4));
}

/** `serviceFamily` stands in for IPVS_DEST_ATTR_ADDR_FAMILY, which kernels before 4.x leave out. */
export function decodeDestination(payload: Buffer, serviceFamily?: Family): IpvsDestination {
  const dest = nest(replyAttrs(payload, IPVS_CMD_NEW_DEST, 'destination'), IPVS_CMD_ATTR_DEST, 'destination', 'IPVS_CMD_ATTR_DEST');
  const what = 'destination';
  const af = dest.u16(IPVS_DEST_ATTR_ADDR_FAMILY);
  if (af === undefined && serviceFamily === undefined) throw new CodecError('IPVS destination without IPVS_DEST_ATTR_ADDR_FAMILY');
  const fam = af === undefined ? serviceFamily! : family(af, what);
  const fwd = u32(dest, IPVS_DEST_ATTR_FWD_METHOD, what, 'IPVS_DEST_ATTR_FWD_METHOD') & IP_VS_CONN_F_FWD_MASK;
  const forward: IpvsForward | undefined = byValue(IPVS_FORWARDS, fwd);
  if (!forward) throw new CodecError(`IPVS destination: forwarding method ${fwd} is unknown`);
  const out: IpvsDestination = {
    address: address(need(dest, IPVS_DEST_ATTR_ADDR, 4, what, 'IPVS_DEST_ATTR_ADDR'), fam, what),
    port: need(dest, IPVS_DEST_ATTR_PORT, 2, what, 'IPVS_DEST_ATTR_PORT').readUInt16BE(0),
    addressFamily: fam,
    forward,
    weight: need(dest, IPVS_DEST_ATTR_WEIGHT, 4, what, 'IPVS_DEST_ATTR_WEIGHT').readInt32LE(0),
    upperThreshold: u32(dest, IPVS_DEST_ATTR_U_THRESH, what, 'IPVS_DEST_ATTR_U_THRESH'),
    lowerThreshold: u32(dest, IPVS_DEST_ATTR_L_THRESH, what, 'IPVS_DEST_ATTR_L_THRESH'),
    activeConns: u32(dest, IPVS_DEST_ATTR_ACTIVE_CONNS, what, 'IPVS_DEST_ATTR_ACTIVE_CONNS'),
    inactiveConns: u32(dest, IPVS_DEST_ATTR_INACT_CONNS, what, 'IPVS_DEST_ATTR_INACT_CONNS'),
    persistConns: u32(dest, IPVS_DEST_ATTR_PERSIST_CONNS, what, 'IPVS_DEST_ATTR_PERSIST_CONNS'),
    ...optionalStats(dest, IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64, what),
  };
  if (forward === 'tunnel') Object.assign(out, tunnel(dest));
  return out;
}

// Tunnel attributes (Linux 5.2+/5.3+) only mean something for tunnel real servers.
function tunnel(dest: Attrs): Partial<IpvsDestination> {
  const out: Partial<IpvsDestination> = {};
  const type = dest.u8(IPVS_DEST_ATTR_TUN_TYPE);
  if (type !== undefined) {
    const name: IpvsTunnelType | undefined = byValue(IPVS_TUNNEL_TYPES, type);
    if (!name) throw new CodecError(`IPVS destination: tunnel type ${type} is unknown`);
    out.tunnelType = name;
  }
  const port = dest.be16(IPVS_DEST_ATTR_TUN_PORT);
  if (port !== undefined && out.tunnelType === 'gue') out.tunnelPort = port;
  const flags = dest.u16(IPVS_DEST_ATTR_TUN_FLAGS);
  if (flags !== undefined) {
    const name: IpvsTunnelChecksum | undefined = byValue(IPVS_TUNNEL_CHECKSUMS, flags);
    if (!name) throw new CodecError(`IPVS destination: tunnel flags ${flags} are unknown`);
    out.tunnelChecksum = name;
  }
  return out;
}

const STATS_FIELDS: Array<[keyof IpvsStats, number]> = [
  ['conns', IPVS_STATS_ATTR_CONNS], ['inPackets', IPVS_STATS_ATTR_INPKTS], ['outPackets', IPVS_STATS_ATTR_OUTPKTS],
  ['inBytes', IPVS_STATS_ATTR_INBYTES], ['outBytes', IPVS_STATS_ATTR_OUTBYTES], ['cps', IPVS_STATS_ATTR_CPS],
  ['inPps', IPVS_STATS_ATTR_INPPS], ['outPps', IPVS_STATS_ATTR_OUTPPS], ['inBps', IPVS_STATS_ATTR_INBPS],
  ['outBps', IPVS_STATS_ATTR_OUTBPS],
];

function optionalStats(attrs: Attrs, statsType: number, stats64Type: number, what: string): { stats?: IpvsStats; stats64?: IpvsStats } {
  const out: { stats?: IpvsStats; stats64?: IpvsStats } = {};
  if (attrs.has(statsType)) out.stats = decodeStats(nest(attrs, statsType, what, 'STATS'), `${what} STATS`);
  if (attrs.has(stats64Type)) out.stats64 = decodeStats(nest(attrs, stats64Type, what, 'STATS64'), `${what} STATS64`);
  return out;
}

// Counters are u32 or u64 by attribute size (STATS mixes both, STATS64 is all u64; PAD is skipped).
function decodeStats(attrs: Attrs, what: string): IpvsStats {
  const out = {} as IpvsStats;
  for (const [field, type] of STATS_FIELDS) {
    const raw = attrs.raw(type);
    if (raw === undefined) throw new CodecError(`IPVS ${what} without counter ${field}`);
    if (raw.length === 8) out[field] = Number(raw.readBigUInt64LE(0));
    else if (raw.length === 4) out[field] = raw.readUInt32LE(0);
    else throw new CodecError(`IPVS ${what}: counter ${field} is ${raw.length} bytes, expected 4 or 8`);
  }
  return out;
}

/** The GET_CONFIG answer (command SET_CONFIG with the three timeouts). */
export function decodeConfig(payload: Buffer): IpvsConfig {
  const attrs = replyAttrs(payload, IPVS_CMD_SET_CONFIG, 'config');
  return {
    tcp: u32(attrs, IPVS_CMD_ATTR_TIMEOUT_TCP, 'config', 'IPVS_CMD_ATTR_TIMEOUT_TCP'),
    tcpFin: u32(attrs, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, 'config', 'IPVS_CMD_ATTR_TIMEOUT_TCP_FIN'),
    udp: u32(attrs, IPVS_CMD_ATTR_TIMEOUT_UDP, 'config', 'IPVS_CMD_ATTR_TIMEOUT_UDP'),
  };
}

/** The GET_INFO answer: IPVS version (0x010201 → "1.2.1") and connection table size. */
export function decodeInfo(payload: Buffer): IpvsInfo {
  const attrs = replyAttrs(payload, IPVS_CMD_SET_INFO, 'info');
  const v = u32(attrs, IPVS_INFO_ATTR_VERSION, 'info', 'IPVS_INFO_ATTR_VERSION');
  return {
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    connTableSize: u32(attrs, IPVS_INFO_ATTR_CONN_TAB_SIZE, 'info', 'IPVS_INFO_ATTR_CONN_TAB_SIZE'),
  };
}
