// Response assembly on top of dns-packet: header flags and rcodes as numbers (dns-packet's
// encoder takes them packed in `flags`), EDNS0's OPT record, and fitting a response into the
// transport's size limit (RFC 1035 4.2.1 / RFC 6891 7: drop the additional section first, then
// set TC with an empty answer so the client retries over TCP). dns-packet has no name
// compression, so compressOwnerNames (the one hand-written wire pass here) points each record's
// owner name that repeats the question's or an earlier owner's at its first copy (RFC 1035 4.1.4):
// 40 A records of a headless service then take 16 bytes each, not 42.
import dnsPacket from 'dns-packet';
import type { Answer, OptAnswer, Packet, Question } from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
export type RcodeName = keyof typeof RCODE;
export const FLAG = { AA: 0x400, TC: 0x200, RD: 0x100, RA: 0x80, CD: 0x10 } as const;

/** The smallest UDP payload every resolver takes (RFC 1035), and TCP's 16-bit length. */
export const CLASSIC_UDP_SIZE = 512;
export const TCP_MAX_SIZE = 65535;

export interface ResponseParts {
  id: number;
  opcode?: number;
  rcode: RcodeName;
  flags: number; // AA | RD | RA | CD as wanted; TC is set here when needed
  question?: Question;
  answers?: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
  /** The OPT record to send (the request had one), with our own UDP size. */
  edns?: { udpPayloadSize: number };
}

function toPacket(p: ResponseParts, tc: boolean, sections: 'all' | 'no-additional' | 'none'): Packet {
  const rcode = RCODE[p.rcode];
  const flags = ((p.opcode ?? 0) << 11) | (p.flags & ~FLAG.TC) | (tc ? FLAG.TC : 0) | (rcode & 0xf);
  const opt: OptAnswer[] = p.edns
    ? [{ type: 'OPT', name: '.', udpPayloadSize: p.edns.udpPayloadSize, extendedRcode: rcode >> 4, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    : [];
  return {
    type: 'response',
    id: p.id,
    flags,
    questions: p.question ? [p.question] : [],
    answers: sections === 'none' ? [] : p.answers ?? [],
    authorities: sections === 'none' ? [] : p.authorities ?? [],
    additionals: [...(sections === 'all' ? p.additionals ?? [] : []), ...opt],
  };
}

function nameEnd(buf: Buffer, off: number): number {
  for (let len = buf[off]; len !== 0; len = buf[off]) {
    if (len === undefined || len & 0xc0) return -1; // dns-packet never writes pointers; give up if it did
    off += len + 1;
  }
  return off + 1;
}

/** dns-packet's encoding with repeated owner names replaced by pointers; the input when unsure. */
export function compressOwnerNames(buf: Buffer): Buffer {
  if (buf.length < 12 || buf.readUInt16BE(4) !== 1) return buf;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  const qEnd = nameEnd(buf, 12);
  if (qEnd < 0 || qEnd + 4 > buf.length) return buf;
  const seen = new Map<string, number>([[buf.toString('latin1', 12, qEnd), 12]]);
  const out: Buffer[] = [buf.subarray(0, qEnd + 4)];
  let written = qEnd + 4;
  let off = qEnd + 4;
  for (let i = 0; i < records; i++) {
    const end = nameEnd(buf, off);
    if (end < 0 || end + 10 > buf.length) return buf;
    const rdEnd = end + 10 + buf.readUInt16BE(end + 8);
    if (rdEnd > buf.length) return buf;
    const key = buf.toString('latin1', off, end);
    const at = end - off > 2 ? seen.get(key) : undefined;
    if (at !== undefined) {
      out.push(Buffer.from([0xc0 | (at >> 8), at & 0xff]));
      written += 2;
    } else {
      if (end - off > 2 && written < 0x3fff) seen.set(key, written);
      out.push(buf.subarray(off, end));
      written += end - off;
    }
    out.push(buf.subarray(end, rdEnd));
    written += rdEnd - end;
    off = rdEnd;
  }
  return off === buf.length ? Buffer.concat(out) : buf;
}

/**
 * dns-packet encodes a class it has no name for (`UNKNOWN_n`) as 0: the echoed question's class
 * is written back here, so a REFUSED to class 42 says class 42.
 */
export function withQuestionClass(buf: Buffer, qclass: string | undefined): Buffer {
  const n = /^UNKNOWN_(\d+)$/.exec(qclass ?? '')?.[1];
  const end = n !== undefined && buf.length >= 12 && buf.readUInt16BE(4) === 1 ? nameEnd(buf, 12) : -1;
  if (end < 0 || end + 4 > buf.length) return buf;
  buf.writeUInt16BE(Number(n) & 0xffff, end + 2);
  return buf;
}

/** Encodes the response within `limit` bytes: whole, else without additionals, else TC and no records. */
export function encodeResponse(p: ResponseParts, limit: number): { bytes: Buffer; truncated: boolean } {
  for (const sections of ['all', 'no-additional'] as const) {
    const bytes = compressOwnerNames(dnsPacket.encode(toPacket(p, false, sections)));
    if (bytes.length <= limit) return { bytes, truncated: false };
  }
  return { bytes: compressOwnerNames(dnsPacket.encode(toPacket(p, true, 'none'))), truncated: true };
}
