// ICMP echo (IPv4 only for now) for `podwire ping`: encoding a request, parsing what a raw
// IPPROTO_ICMP socket reads (the IPv4 header, then the ICMP message), matching replies by
// identifier + sequence, and the summary (sent, received, loss, RTT min/avg/max). Pure.
import { isIp } from '../../net/ip.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

/** The Internet checksum (RFC 1071) of `buf`: ones' complement of the ones' complement sum. */
export function inetChecksum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An echo request: type 8, code 0, checksum, identifier, sequence, then `payloadLen` bytes. */
export function encodeEchoRequest(id: number, seq: number, payloadLen = 48): Buffer {
  const buf = Buffer.alloc(8 + payloadLen);
  buf[0] = ICMP_ECHO_REQUEST;
  buf[1] = 0;
  buf.writeUInt16BE(id & 0xffff, 4);
  buf.writeUInt16BE(seq & 0xffff, 6);
  for (let i = 0; i < payloadLen; i++) buf[8 + i] = i & 0xff;
  buf.writeUInt16BE(inetChecksum(buf), 2);
  return buf;
}

export interface EchoReply {
  /** The IPv4 source of the reply. */
  from: string;
  id: number;
  seq: number;
}

/**
 * An echo reply in what a raw IPv4 ICMP socket reads (IPv4 header + ICMP), when it is one for
 * identifier `id` with a valid checksum; undefined for anything else (other pings' replies, our
 * own requests seen on loopback, errors, truncated or non-IPv4 data).
 */
export function parseEchoReply(packet: Uint8Array, id: number): EchoReply | undefined {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return undefined;
  const ihl = (packet[0]! & 0x0f) * 4;
  if (ihl < 20 || packet[9] !== 1 || packet.length < ihl + 8) return undefined;
  const icmp = packet.subarray(ihl);
  if (icmp[0] !== ICMP_ECHO_REPLY || icmp[1] !== 0) return undefined;
  if (inetChecksum(icmp) !== 0) return undefined;
  const replyId = (icmp[4]! << 8) | icmp[5]!;
  if (replyId !== (id & 0xffff)) return undefined;
  return { from: `${packet[12]}.${packet[13]}.${packet[14]}.${packet[15]}`, id: replyId, seq: (icmp[6]! << 8) | icmp[7]! };
}

export interface PingResult {
  src: string;
  dst: string;
  sent: number;
  received: number;
  lossPct: number;
  rttMs: { min: number; avg: number; max: number } | null;
  replies: { seq: number; rttMs: number }[];
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** The summary of a run: `replies` are the matched ones (one per seq, in any order). */
export function summarizePing(src: string, dst: string, sent: number, replies: { seq: number; rttMs: number }[]): PingResult {
  const sorted = [...replies].sort((a, b) => a.seq - b.seq).map((r) => ({ seq: r.seq, rttMs: round3(r.rttMs) }));
  const received = sorted.length;
  const lossPct = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 1000) / 10;
  const rtts = sorted.map((r) => r.rttMs);
  const rttMs = rtts.length ? { min: Math.min(...rtts), avg: round3(rtts.reduce((a, b) => a + b, 0) / rtts.length), max: Math.max(...rtts) } : null;
  return { src, dst, sent, received, lossPct, rttMs, replies: sorted };
}

export interface PingRequest {
  srcIp: string;
  netnsHint?: string;
  dst: string;
  count: number;
  intervalMs: number;
  timeoutMs: number;
}

/** The longest a run may take: count × interval + the last reply's timeout. */
export const MAX_PING_MS = 30_000;

/** The body of POST /v1/debug/ping checked; a string saying what is wrong otherwise. */
export function validatePingRequest(body: unknown): PingRequest | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object {srcIp, netnsHint?, dst, count, intervalMs, timeoutMs}';
  const b = body as Record<string, unknown>;
  const known = ['srcIp', 'netnsHint', 'dst', 'count', 'intervalMs', 'timeoutMs'];
  const extra = Object.keys(b).filter((k) => !known.includes(k));
  if (extra.length) return `unknown field(s) ${extra.join(', ')}; expected ${known.join(', ')}`;
  if (typeof b.srcIp !== 'string' || !isIp(b.srcIp, 4)) return `srcIp ${JSON.stringify(b.srcIp)} is not an IPv4 address (ping is IPv4 only for now)`;
  if (typeof b.dst !== 'string' || !isIp(b.dst, 4)) return `dst ${JSON.stringify(b.dst)} is not an IPv4 address (ping is IPv4 only for now)`;
  if (b.netnsHint !== undefined && (typeof b.netnsHint !== 'string' || !b.netnsHint.startsWith('/') || b.netnsHint.length > 4096)) return `netnsHint ${JSON.stringify(b.netnsHint)} must be an absolute path`;
  const int = (k: string, min: number, max: number): number | string => {
    const v = b[k];
    return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : `${k} ${JSON.stringify(v)} must be an integer ${min}-${max}`;
  };
  const count = int('count', 1, 100);
  if (typeof count === 'string') return count;
  const intervalMs = int('intervalMs', 10, 10_000);
  if (typeof intervalMs === 'string') return intervalMs;
  const timeoutMs = int('timeoutMs', 10, 10_000);
  if (typeof timeoutMs === 'string') return timeoutMs;
  const total = (count - 1) * intervalMs + timeoutMs;
  if (total > MAX_PING_MS) return `count ${count} × intervalMs ${intervalMs} + timeoutMs ${timeoutMs} is ${total} ms, over the ${MAX_PING_MS} ms a ping may take; send fewer or faster`;
  return { srcIp: b.srcIp, ...(b.netnsHint !== undefined ? { netnsHint: b.netnsHint as string } : {}), dst: b.dst, count, intervalMs, timeoutMs };
}
