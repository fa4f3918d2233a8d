// ICMP echo encode/decode and the ping summary (src/agent/debug/icmp.ts): the checksum (RFC 1071
// examples and a real capture), an IPv4+ICMP echo reply parsed, other identifiers, our own
// requests, bad checksums and non-ICMP packets ignored; loss and RTT stats; request validation.
import t from 'tap';
import { encodeEchoRequest, inetChecksum, parseEchoReply, summarizePing, validatePingRequest } from '../../src/agent/debug/icmp.js';

t.test('checksum', async (t) => {
  // RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
  t.equal(inetChecksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0x220d);
  // Odd length: the last byte is padded with a zero.
  t.equal(inetChecksum(Uint8Array.from([0x01])), 0xfeff);
  // A buffer with its own checksum in it sums to 0.
  const req = encodeEchoRequest(0x1234, 7, 16);
  t.equal(inetChecksum(req), 0);
  // ping(8)'s request seen by tcpdump: type 8, id 0x0001 seq 1, 0 payload → checksum f7fd.
  t.equal(encodeEchoRequest(1, 1, 0).readUInt16BE(2), 0xf7fd);
});

t.test('encodeEchoRequest', async (t) => {
  const b = encodeEchoRequest(0xbeef, 0x0102, 48);
  t.equal(b.length, 56);
  t.equal(b[0], 8, 'echo request');
  t.equal(b[1], 0);
  t.equal(b.readUInt16BE(4), 0xbeef);
  t.equal(b.readUInt16BE(6), 0x0102);
  t.equal(encodeEchoRequest(0x1_0001, 0x1_0002, 0).readUInt16BE(4), 1, 'id wraps to 16 bits');
});

/** An IPv4 header (20 bytes, or with options) + ICMP message, as a raw socket reads it. */
function ipv4(icmp: Buffer, src = [10, 244, 2, 2], proto = 1, ihlWords = 5): Buffer {
  const h = Buffer.alloc(ihlWords * 4);
  h[0] = 0x40 | ihlWords;
  h.writeUInt16BE(h.length + icmp.length, 2);
  h[8] = 63;
  h[9] = proto;
  h.set(src, 12);
  h.set([10, 244, 1, 2], 16);
  return Buffer.concat([h, icmp]);
}
function reply(id: number, seq: number): Buffer {
  const b = encodeEchoRequest(id, seq, 48);
  b[0] = 0;
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

t.test('parseEchoReply', async (t) => {
  t.same(parseEchoReply(ipv4(reply(0x4242, 3)), 0x4242), { from: '10.244.2.2', id: 0x4242, seq: 3 });
  t.same(parseEchoReply(ipv4(reply(0x4242, 9), [10, 244, 2, 2], 1, 6), 0x4242), { from: '10.244.2.2', id: 0x4242, seq: 9 }, 'IP options (IHL 6)');
  t.equal(parseEchoReply(ipv4(reply(0x4243, 3)), 0x4242), undefined, 'another ping\'s identifier');
  t.equal(parseEchoReply(ipv4(encodeEchoRequest(0x4242, 3)), 0x4242), undefined, 'our own request (type 8)');
  const bad = reply(0x4242, 3);
  bad[20] = bad[20]! ^ 0xff;
  t.equal(parseEchoReply(ipv4(bad), 0x4242), undefined, 'bad checksum');
  t.equal(parseEchoReply(ipv4(reply(0x4242, 3), [10, 244, 2, 2], 17), 0x4242), undefined, 'not ICMP');
  t.equal(parseEchoReply(ipv4(reply(0x4242, 3)).subarray(0, 26), 0x4242), undefined, 'truncated');
  t.equal(parseEchoReply(Buffer.from([0x60, 0, 0, 0]), 0x4242), undefined, 'not IPv4');
  const unreach = Buffer.from(reply(0x4242, 3));
  unreach[0] = 3;
  t.equal(parseEchoReply(ipv4(unreach), 0x4242), undefined, 'destination unreachable');
});

t.test('summarizePing', async (t) => {
  t.same(summarizePing('10.244.1.2', '10.244.2.2', 3, [{ seq: 2, rttMs: 0.5 }, { seq: 1, rttMs: 0.25 }, { seq: 3, rttMs: 1.0004 }]), {
    src: '10.244.1.2', dst: '10.244.2.2', sent: 3, received: 3, lossPct: 0,
    rttMs: { min: 0.25, avg: 0.583, max: 1 },
    replies: [{ seq: 1, rttMs: 0.25 }, { seq: 2, rttMs: 0.5 }, { seq: 3, rttMs: 1 }],
  });
  const lost = summarizePing('a', 'b', 3, [{ seq: 1, rttMs: 2 }]);
  t.equal(lost.received, 1);
  t.equal(lost.lossPct, 66.7);
  t.same(lost.rttMs, { min: 2, avg: 2, max: 2 });
  const none = summarizePing('a', 'b', 4, []);
  t.equal(none.lossPct, 100);
  t.equal(none.rttMs, null);
});

t.test('validatePingRequest', async (t) => {
  const ok = { srcIp: '10.244.1.2', dst: '10.244.2.2', count: 3, intervalMs: 200, timeoutMs: 1000 };
  t.same(validatePingRequest(ok), ok);
  t.same(validatePingRequest({ ...ok, netnsHint: '/run/netns/pw-x' }), { ...ok, netnsHint: '/run/netns/pw-x' });
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[], /JSON object/],
    [{ ...ok, extra: 1 }, /unknown field\(s\) extra/],
    [{ ...ok, srcIp: 'fd00::1' }, /srcIp "fd00::1" is not an IPv4 address \(ping is IPv4 only/],
    [{ ...ok, dst: '10.0.0.256' }, /dst "10.0.0.256"/],
    [{ ...ok, dst: undefined }, /dst undefined/],
    [{ ...ok, netnsHint: 'relative' }, /absolute path/],
    [{ ...ok, count: 0 }, /count 0 must be an integer 1-100/],
    [{ ...ok, count: 101 }, /count 101/],
    [{ ...ok, count: 1.5 }, /count 1.5/],
    [{ ...ok, count: '3' }, /count "3"/],
    [{ ...ok, intervalMs: 9 }, /intervalMs 9 must be an integer 10-10000/],
    [{ ...ok, timeoutMs: 5 }, /timeoutMs 5/],
    [{ ...ok, count: 100, intervalMs: 1000 }, /over the 30000 ms a ping may take/],
  ];
  for (const [body, re] of bad) t.match(validatePingRequest(body), re, JSON.stringify(body));
  t.same(validatePingRequest({ ...ok, count: 100, intervalMs: 290, timeoutMs: 1000 }), { ...ok, count: 100, intervalMs: 290, timeoutMs: 1000 }, '29 710 ms is within bounds');
});
