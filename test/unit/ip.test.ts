import t from 'tap';
import { formatCidr, formatIp, formatMac, parseCidr, parseIp, parseMac } from '../../src/netlink/ip.js';

t.test('IPv4 parse/format round trip', async (t) => {
  for (const s of ['0.0.0.0', '10.244.1.0', '255.255.255.255', '192.0.2.7']) {
    const ip = parseIp(s);
    t.equal(ip.family, 4);
    t.equal(ip.bytes.length, 4);
    t.equal(formatIp(ip.bytes), s);
  }
  t.same([...parseIp('10.1.2.3').bytes], [10, 1, 2, 3]);
});

t.test('IPv6 parse/format round trip, RFC 5952 compression', async (t) => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::1', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, want] of cases) {
    const ip = parseIp(input);
    t.equal(ip.family, 6, input);
    t.equal(formatIp(ip.bytes), want, input);
  }
});

t.test('bad addresses are rejected with the offending text', async (t) => {
  for (const s of ['', '1.2.3', '256.1.1.1', 'fe80:::1', 'abc', '10.0.0.1 ']) {
    t.throws(() => parseIp(s), { message: new RegExp('invalid IP address') }, JSON.stringify(s));
  }
  t.throws(() => parseCidr('10.0.0.0'), /expected ADDRESS\/PREFIX/);
  t.throws(() => parseCidr('10.0.0.0/33'), /prefix length must be 0-32/);
  t.throws(() => parseCidr('fe80::/129'), /prefix length must be 0-128/);
  t.throws(() => parseCidr('10.0.0.0/-1'), /prefix length/);
  t.equal(formatCidr(parseCidr('10.244.0.0/16')), '10.244.0.0/16');
});

t.test('MAC parse/format', async (t) => {
  t.equal(formatMac(parseMac('0A:1b:2c:3d:4e:5F')), '0a:1b:2c:3d:4e:5f');
  t.throws(() => parseMac('0a:1b:2c:3d:4e'), /invalid MAC/);
  t.throws(() => parseMac('0a-1b-2c-3d-4e-5f'), /invalid MAC/);
});
