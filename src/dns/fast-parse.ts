// The common query read without dns-packet: the header, one question and at most one OPT record,
// nothing else. Anything unusual (another count, a name with a pointer or a byte outside
// [A-Za-z0-9_-], an OPT option dns-packet decodes specially, bytes after the last record, ...) is
// left to the full decoder (undefined here), so FORMERR and NOTIMP stay exactly dns-packet's. For
// a packet accepted here, dns-packet.decode gives the same question and OPT (the handler test
// compares the two over random and mutated packets).
import { createRequire } from 'node:module';

const dnsTypes = createRequire(import.meta.url)('dns-packet/types.js') as { toString(type: number): string };

export interface FastQuery {
  id: number;
  flags: number;
  /** The name's wire bytes lowercased, as latin1 (a cache key: what the answer depends on, besides the spelling's case). */
  lowerName: string;
  /** The name had no upper-case letter (answers then may point at the question for lowercase owners). */
  lowercase: boolean;
  /** Offset just after the question name's terminating zero: the name is bytes [12, nameEnd). */
  nameEnd: number;
  qtype: number;
  /** dns-packet's name for qtype (e.g. 'A', 'UNKNOWN_300'). */
  qtypeName: string;
  /** The OPT record, when there was one. */
  opt?: { udpPayloadSize: number; ednsVersion: number };
}

/** Option codes dns-packet decodes beyond code/length/data (ECS, TCP keepalive, key tag): left to it. */
const DECODED_OPTIONS = new Set([8, 11, 14]);

/** 1: a letter, digit, '-' or '_'; 2: an upper-case letter. Everything else: the full decoder. */
const NAME_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[a-z0-9_-]/.test(ch)) NAME_BYTE[c] = 1;
  else if (/[A-Z]/.test(ch)) NAME_BYTE[c] = 2;
}

/** The question name's end offset, or -1 for anything but plain labels of NAME_BYTE bytes. */
function plainNameEnd(buf: Buffer): { end: number; upper: boolean } | undefined {
  let off = 12;
  let total = 0;
  let upper = false;
  for (;;) {
    if (off >= buf.length) return undefined;
    const len = buf[off];
    if (len === 0) break;
    if (len > 63) return undefined; // a pointer or a reserved label type
    total += len + 1;
    if (total > 254 || off + 1 + len > buf.length) return undefined; // dns-packet's own limit
    for (let i = off + 1; i <= off + len; i++) {
      const kind = NAME_BYTE[buf[i]];
      if (kind === 0) return undefined;
      if (kind === 2) upper = true;
    }
    off += len + 1;
  }
  return off === 12 ? undefined : { end: off + 1, upper }; // the root name: not a name we answer from the index
}

/** The OPT record at `off`, which must end the packet; undefined when anything is unusual. */
function plainOpt(buf: Buffer, off: number): FastQuery['opt'] | undefined {
  if (off + 11 > buf.length || buf[off] !== 0 || buf.readUInt16BE(off + 1) !== 41) return undefined;
  const udpPayloadSize = buf.readUInt16BE(off + 3);
  const ednsVersion = buf[off + 6];
  const rdEnd = off + 11 + buf.readUInt16BE(off + 9);
  if (rdEnd !== buf.length) return undefined;
  for (let o = off + 11; o < rdEnd; ) {
    if (o + 4 > rdEnd || DECODED_OPTIONS.has(buf.readUInt16BE(o))) return undefined;
    o += 4 + buf.readUInt16BE(o + 2);
    if (o > rdEnd) return undefined;
  }
  return { udpPayloadSize, ednsVersion };
}

/** The question's name as the client spelled it, as text (no trailing dot), of a request fastParse read. */
export function questionName(buf: Buffer, q: FastQuery): string {
  const labels: string[] = [];
  for (let off = 12; off < q.nameEnd - 1; off += buf[off] + 1) labels.push(buf.toString('latin1', off + 1, off + 1 + buf[off]));
  return labels.join('.');
}

export function fastParse(buf: Buffer): FastQuery | undefined {
  if (buf.length < 17) return undefined;
  const flags = buf.readUInt16BE(2);
  if (flags & 0xf800) return undefined; // a response, or an opcode other than QUERY
  if (buf.readUInt16BE(4) !== 1 || buf.readUInt16BE(6) !== 0 || buf.readUInt16BE(8) !== 0) return undefined;
  const additionals = buf.readUInt16BE(10);
  if (additionals > 1) return undefined;
  const parsed = plainNameEnd(buf);
  if (!parsed) return undefined;
  const { end, upper } = parsed;
  if (end + 4 > buf.length || buf.readUInt16BE(end + 2) !== 1) return undefined; // class IN only
  const qtype = buf.readUInt16BE(end);
  let opt: FastQuery['opt'];
  if (additionals === 1) {
    opt = plainOpt(buf, end + 4);
    if (!opt) return undefined;
  } else if (end + 4 !== buf.length) return undefined;
  const wire = buf.toString('latin1', 12, end - 1); // length bytes are 1..63: untouched by toLowerCase
  return {
    id: buf.readUInt16BE(0), flags, lowerName: upper ? wire.toLowerCase() : wire, lowercase: !upper, nameEnd: end,
    qtype, qtypeName: dnsTypes.toString(qtype), ...(opt ? { opt } : {}),
  };
}
