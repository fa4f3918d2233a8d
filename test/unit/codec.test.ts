import t from 'tap';
import { NLA_F_NESTED, NLM_F_ACK, NLM_F_MULTI, NLM_F_REQUEST, RTM_NEWLINK } from '../../src/netlink/constants.js';
import {
  align4, Attrs, CodecError, decodeMsgs, encodeAttrs, encodeMsg, encodePayload, nla, type NlMsg,
} from '../../src/netlink/codec.js';

const hex = (b: Buffer): string => b.toString('hex');

t.test('nlmsghdr encode: little-endian fields, length without padding, buffer padded to 4', async (t) => {
  const out = encodeMsg({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0x01020304, pid: 7, payload: Buffer.from([0xaa, 0xbb, 0xcc, 0xdd, 0xee]) });
  t.equal(out.length, 24, '16 + 5 rounded up to 24');
  t.equal(out.readUInt32LE(0), 21, 'nlmsg_len counts the payload, not the padding');
  t.equal(hex(out.subarray(4, 16)), '1000' + '0500' + '04030201' + '07000000');
  t.equal(hex(out.subarray(16)), 'aabbccdd' + 'ee000000', 'padding is zeroed');
});

t.test('nlmsghdr encode: seq and pid wrap to u32', async (t) => {
  const out = encodeMsg({ type: 1, flags: 0, seq: -1, pid: 2 ** 32 + 5, payload: Buffer.alloc(0) });
  t.equal(out.readUInt32LE(8), 0xffffffff);
  t.equal(out.readUInt32LE(12), 5);
});

t.test('decodeMsgs: round trip of several messages in one datagram, odd lengths realigned', async (t) => {
  const msgs: NlMsg[] = [
    { type: 16, flags: NLM_F_MULTI, seq: 9, pid: 100, payload: Buffer.from('abc') },
    { type: 17, flags: 0, seq: 10, pid: 100, payload: Buffer.alloc(0) },
    { type: 3, flags: NLM_F_MULTI, seq: 11, pid: 100, payload: Buffer.from('0123456') },
  ];
  const dgram = Buffer.concat(msgs.map(encodeMsg));
  t.equal(dgram.length, 20 + 16 + 24);
  const back = decodeMsgs(dgram);
  t.equal(back.length, 3);
  for (const [i, m] of back.entries()) {
    t.same({ ...m, payload: m.payload.toString() }, { ...msgs[i]!, payload: msgs[i]!.payload.toString() }, `message ${i}`);
  }
});

t.test('decodeMsgs: last message without trailing padding is accepted', async (t) => {
  const full = encodeMsg({ type: 5, flags: 0, seq: 1, pid: 0, payload: Buffer.from('xyz') });
  const back = decodeMsgs(full.subarray(0, 19));
  t.equal(back.length, 1);
  t.equal(back[0]!.payload.toString(), 'xyz');
  t.same(decodeMsgs(Buffer.alloc(0)), [], 'an empty datagram has no messages');
});

t.test('decodeMsgs: malformed lengths throw CodecError and never read past the view', async (t) => {
  const good = encodeMsg({ type: 5, flags: 0, seq: 1, pid: 0, payload: Buffer.from('12345678') });
  // A view on a bigger buffer: a lax decoder would silently read the bytes after it.
  const backing = Buffer.concat([good, Buffer.alloc(64, 0x41)]);
  const view = backing.subarray(0, good.length);
  view.writeUInt32LE(good.length + 8, 0);
  t.throws(() => decodeMsgs(view), CodecError, 'length beyond the datagram');
  t.throws(() => decodeMsgs(view), { message: /length 32, 24 bytes left/ });

  const short = Buffer.from(good);
  short.writeUInt32LE(15, 0);
  t.throws(() => decodeMsgs(short), CodecError, 'length below the header size');
  const zero = Buffer.from(good);
  zero.writeUInt32LE(0, 0);
  t.throws(() => decodeMsgs(zero), CodecError, 'zero length cannot loop forever');

  const second = Buffer.concat([good, good]);
  second.writeUInt32LE(1000, good.length);
  t.throws(() => decodeMsgs(second), { message: /offset 24/ }, 'the offset of the bad message is reported');
});

t.test('decodeMsgs: a datagram cut inside a header', async (t) => {
  const good = encodeMsg({ type: 5, flags: 0, seq: 1, pid: 0, payload: Buffer.alloc(4) });
  t.throws(() => decodeMsgs(Buffer.concat([good, good.subarray(0, 10)])), CodecError);
});

t.test('attributes: odd-length values are padded, lengths exclude padding', async (t) => {
  const out = encodeAttrs([nla.str(3, 'ab'), nla.u8(4, 0x7f), nla.u32(5, 0xdeadbeef)]);
  t.equal(hex(out), '0700' + '0300' + '616200' + '00' + '0500' + '0400' + '7f' + '000000' + '0800' + '0500' + 'efbeadde');
  const attrs = new Attrs(out);
  t.equal(attrs.str(3), 'ab');
  t.equal(attrs.u8(4), 0x7f);
  t.equal(attrs.u32(5), 0xdeadbeef);
  t.same(attrs.all.map((a) => [a.type, a.data.length]), [[3, 3], [4, 1], [5, 4]]);
});

t.test('attributes: nested sets NLA_F_NESTED unless told not to; decoding strips the flags', async (t) => {
  const out = encodeAttrs([
    nla.nested(18, [nla.str(1, 'veth'), nla.nested(2, [nla.u32(1, 42)])]),
    { type: 7, value: [nla.u16(1, 9)], nestedFlag: false },
  ]);
  t.equal(out.readUInt16LE(2), 18 | NLA_F_NESTED);
  t.equal(out.readUInt16LE(0), 4 + 12 + 12, 'outer length covers both children');
  const innerType = out.readUInt16LE(4 + 12 + 2);
  t.equal(innerType, 2 | NLA_F_NESTED, 'inner nest flagged too');
  const seventh = out.subarray(align4(out.readUInt16LE(0)));
  t.equal(seventh.readUInt16LE(2), 7, 'nestedFlag: false leaves the type bare');

  const attrs = new Attrs(out);
  t.ok(attrs.has(18) && attrs.has(7), 'types found without the flag bit');
  const info = attrs.nested(18)!;
  t.equal(info.str(1), 'veth');
  t.equal(info.nested(2)!.u32(1), 42);
  t.equal(attrs.nested(7)!.u16(1), 9);
  t.equal(attrs.nested(99), undefined);
});

t.test('Attrs accessors: byte orders, signedness, strings, duplicates, short values', async (t) => {
  const buf = encodeAttrs([
    nla.u16(1, 0x1234),
    nla.be16(2, 4789),
    nla.i32(3, -22),
    nla.bytes(4, Buffer.from('no-nul')),
    nla.str(5, 'first'),
    nla.str(5, 'second'),
    nla.bytes(6, Buffer.from([1])),
  ]);
  const a = new Attrs(buf);
  t.equal(a.u16(1), 0x1234);
  t.equal(a.be16(2), 4789);
  t.equal(a.raw(2)!.readUInt16BE(0), 4789, 'be16 is network order on the wire');
  t.equal(a.i32(3), -22);
  t.equal(a.u32(3), 2 ** 32 - 22);
  t.equal(a.str(4), 'no-nul', 'a string without NUL ends at the attribute end');
  t.equal(a.str(5), 'first', 'the first of duplicates wins for lookups');
  t.same(a.all.filter((x) => x.type === 5).map((x) => x.data.toString('utf8', 0, x.data.length - 1)), ['first', 'second']);
  t.equal(a.u32(6), undefined, 'a value too short for the accessor is undefined, not a read past it');
  t.equal(a.u16(6), undefined);
  t.equal(a.u8(6), 1);
  t.equal(a.u8(42), undefined);
  t.equal(a.str(42), undefined);
  t.notOk(a.has(42));
});

t.test('Attrs: malformed attribute lengths throw CodecError and never read past the view', async (t) => {
  const good = encodeAttrs([nla.u32(1, 1), nla.u32(2, 2)]);
  const backing = Buffer.concat([good, Buffer.alloc(32, 0xff)]);
  const view = backing.subarray(0, good.length);
  view.writeUInt16LE(12, 8);
  t.throws(() => new Attrs(view), CodecError, 'second attribute claims bytes beyond the view');
  t.throws(() => new Attrs(view), { message: /offset 8: length 12, 8 bytes left/ });
  const tiny = Buffer.from(good);
  tiny.writeUInt16LE(3, 0);
  t.throws(() => new Attrs(tiny), CodecError, 'length below the attribute header');
  t.same(new Attrs(Buffer.alloc(0)).all, []);
  const nestedBad = encodeAttrs([nla.bytes(9, Buffer.from([0x20, 0x00, 0x01, 0x00]))]);
  const outer = new Attrs(nestedBad);
  t.throws(() => outer.nested(9), CodecError, 'a bad nested level throws when it is opened');
});

t.test('encodePayload: family header then attributes', async (t) => {
  const header = Buffer.alloc(16, 0);
  header[0] = 10;
  const out = encodePayload(header, [nla.str(3, 'pw0')]);
  t.equal(out.length, 16 + 8);
  t.equal(out[0], 10);
  t.equal(new Attrs(out.subarray(16)).str(3), 'pw0');
  t.same(encodePayload(header), header, 'no attributes');
});
