// Netlink wire codec: nlmsghdr framing and (nested) nlattr TLVs, 4-byte aligned, host byte order
// (little-endian: x86_64 and arm64, the platforms podwire targets) except where the kernel wants
// network order (ports, addresses).
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './constants.js';

export const align4 = (n: number): number => (n + 3) & ~3;

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

export function encodeMsg(msg: NlMsg): Buffer {
  const len = NLMSG_HDRLEN + msg.payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(msg.type, 4);
  out.writeUInt16LE(msg.flags, 6);
  out.writeUInt32LE(msg.seq >>> 0, 8);
  out.writeUInt32LE(msg.pid >>> 0, 12);
  msg.payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** Split a datagram into messages; throws on a malformed length (never reads past the buffer). */
export function decodeMsgs(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new CodecError(`malformed netlink message at offset ${off}: length ${len}, ${buf.length - off} bytes left`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  if (off < buf.length) {
    throw new CodecError(`truncated netlink message at offset ${off}: ${buf.length - off} trailing bytes`);
  }
  return out;
}

/** An attribute to encode: a raw value, or a list of attributes (encoded nested, NLA_F_NESTED set). */
export interface Attr {
  type: number;
  value: Buffer | Attr[];
  /** Set NLA_F_NESTED on nested attributes (default true); some old kernel paths ignore it either way. */
  nestedFlag?: boolean;
}

export function encodeAttrs(attrs: Attr[]): Buffer {
  return Buffer.concat(attrs.map(encodeAttr));
}

function encodeAttr(a: Attr): Buffer {
  const nested = Array.isArray(a.value);
  const body = nested ? encodeAttrs(a.value as Attr[]) : (a.value as Buffer);
  const len = NLA_HDRLEN + body.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(a.type | (nested && a.nestedFlag !== false ? NLA_F_NESTED : 0), 2);
  body.copy(out, NLA_HDRLEN);
  return out;
}

/** Decoded attributes of one level, by type (flags stripped). Later duplicates are kept in `all`. */
export class Attrs {
  readonly all: Array<{ type: number; data: Buffer }>;
  private readonly byType = new Map<number, Buffer>();

  constructor(buf: Buffer) {
    this.all = [];
    let off = 0;
    while (off + NLA_HDRLEN <= buf.length) {
      const len = buf.readUInt16LE(off);
      const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN || off + len > buf.length) {
        throw new CodecError(`malformed attribute at offset ${off}: length ${len}, ${buf.length - off} bytes left`);
      }
      const data = buf.subarray(off + NLA_HDRLEN, off + len);
      this.all.push({ type, data });
      if (!this.byType.has(type)) this.byType.set(type, data);
      off += align4(len);
    }
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }
  raw(type: number): Buffer | undefined {
    return this.byType.get(type);
  }
  u8(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 1 ? b.readUInt8(0) : undefined;
  }
  u16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
  }
  be16(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
  }
  u32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
  }
  i32(type: number): number | undefined {
    const b = this.byType.get(type);
    return b && b.length >= 4 ? b.readInt32LE(0) : undefined;
  }
  str(type: number): string | undefined {
    const b = this.byType.get(type);
    if (!b) return undefined;
    const nul = b.indexOf(0);
    return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
  }
  nested(type: number): Attrs | undefined {
    const b = this.byType.get(type);
    return b ? new Attrs(b) : undefined;
  }
}

// Attribute value builders.
export const nla = {
  bytes: (type: number, value: Buffer): Attr => ({ type, value }),
  u8: (type: number, v: number): Attr => ({ type, value: Buffer.from([v & 0xff]) }),
  u16: (type: number, v: number): Attr => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return { type, value: b };
  },
  be16: (type: number, v: number): Attr => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return { type, value: b };
  },
  u32: (type: number, v: number): Attr => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return { type, value: b };
  },
  i32: (type: number, v: number): Attr => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return { type, value: b };
  },
  /** NUL-terminated string, as the kernel expects for names. */
  str: (type: number, s: string): Attr => ({ type, value: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]) }),
  nested: (type: number, attrs: Attr[]): Attr => ({ type, value: attrs }),
};

/** A fixed-size family header (ifinfomsg, rtmsg, …) followed by attributes. */
export function encodePayload(header: Buffer, attrs: Attr[] = []): Buffer {
  return Buffer.concat([header, encodeAttrs(attrs)]);
}
