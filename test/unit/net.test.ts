// src/net: edge cases by hand, then seeded property checks against ip-address and ip-cidr (the
// design card's libraries, used here as oracles where they are correct: canonical text only,
// since they accept leading zeros, zones and "/08" that podwire refuses).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Address4, Address6 } from 'ip-address';
import IPCIDR from 'ip-cidr';
import t from 'tap';
import {
  broadcastOf, cidrBounds, cidrContains, cidrCovers, cidrOverlaps, cidrSize, formatCidr, hostBitsSet, maskBytes,
  networkCidr, networkOf, nthAddress, parseCidr, prefixMask, textCidrContains, tryParseCidr, type Cidr,
} from '../../src/net/cidr.js';
import {
  AddressError, bigIntToIp, canonicalIp, compareIp, formatBigInt, formatIp, formatIpv4Number, ipSortKey, ipToBigInt,
  ipv4Number, isIp, isLinkLocalMulticast, isLinkLocalUnicast, isLoopback, isMulticast, isUnspecified, parseIp, tryParseIp, unmap4,
} from '../../src/net/ip.js';
import { mulberry32 } from '../lib/prng.js';

const bytes = (text: string) => [...parseIp(text).bytes];

t.test('IPv4: four decimal octets, nothing else', async (t) => {
  t.same(parseIp('10.1.2.3'), { family: 4, bytes: Buffer.from([10, 1, 2, 3]) });
  for (const s of ['0.0.0.0', '255.255.255.255', '192.0.2.7', '1.10.100.200']) t.equal(canonicalIp(s), s);
  const bad = ['010.0.0.1', '10.0.0.01', '10.00.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4/32',
    '0x1.2.3.4', '1..2.3', '.1.2.3', '1.2.3.', '', '١.٢.٣.٤', '1.2.3.4\n', '+1.2.3.4'];
  for (const s of bad) {
    t.throws(() => parseIp(s), { name: 'AddressError', reason: 'address', message: /invalid IP address/ }, JSON.stringify(s));
    t.equal(ipv4Number(s), -1, JSON.stringify(s));
    t.notOk(isIp(s), JSON.stringify(s));
  }
  t.throws(() => parseIp('010.0.0.1'), /leading zeros/);
  t.equal(ipv4Number('255.255.255.255'), 0xffffffff);
  t.equal(ipv4Number('0.0.0.0'), 0);
  t.equal(formatIpv4Number(0xc0000207), '192.0.2.7');
});

t.test('IPv6: RFC 4291 text in, RFC 5952 text out; zones refused', async (t) => {
  const cases: [string, string][] = [
    ['::', '::'], ['::1', '::1'], ['1::', '1::'], ['FE80::1', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // equal runs: the first is compressed
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // the longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'], ['::192.0.2.1', '::c000:201'], ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'], ['1:0:0:0:0:0:0:0', '1::'], ['0:0:0:0:0:0:0:1', '::1'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, want] of cases) {
    const a = parseIp(input);
    t.equal(a.family, 6, input);
    t.equal(formatIp(a.bytes), want, input);
  }
  t.same(bytes('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  for (const s of ['fe80::1%eth0', 'fe80::1%1', '[::1]', '::1/128', '1::2::3', '00001::1', '::ffff:01.2.3.4', ':::', '1:2:3:4:5:6:7:8:9', 'g::1', ' ::1', '::1 ']) {
    t.throws(() => parseIp(s), { name: 'AddressError', message: /invalid IP address/ }, JSON.stringify(s));
    t.notOk(isIp(s), JSON.stringify(s));
  }
  t.throws(() => parseIp('fe80::1%eth0'), /zone/);
  t.equal(tryParseIp(7), undefined);
  t.ok(isIp('::1', 6));
  t.notOk(isIp('::1', 4));
  t.notOk(isIp('1.2.3.4', 6));
  t.throws(() => formatIp(Buffer.alloc(5)), /5-byte/);
});

t.test('BigInt and ordering', async (t) => {
  t.equal(ipToBigInt(parseIp('255.255.255.255').bytes), 0xffffffffn);
  t.equal(ipToBigInt(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').bytes), (1n << 128n) - 1n);
  t.equal(formatBigInt(4, 0x0a000001n), '10.0.0.1');
  t.equal(formatBigInt(6, 1n), '::1');
  t.equal(formatBigInt(6, 0xffffffffn), '::ffff:ffff');
  t.throws(() => bigIntToIp(4, 1n << 32n), RangeError);
  t.throws(() => bigIntToIp(6, -1n), RangeError);
  t.throws(() => formatBigInt(4, 1n << 32n), RangeError);
  const sorted = ['fd00::1', '10.0.0.2', '::1', '9.255.255.255', '10.0.0.10'].map(parseIp).sort(compareIp).map((a) => formatIp(a.bytes));
  t.same(sorted, ['9.255.255.255', '10.0.0.2', '10.0.0.10', '::1', 'fd00::1']);
  t.same(['fd00::1', 'zzz', '10.0.0.10', '10.0.0.2'].sort((a, b) => (ipSortKey(a) < ipSortKey(b) ? -1 : 1)), ['10.0.0.2', '10.0.0.10', 'fd00::1', 'zzz']);
});

t.test('address classes (Go netip semantics), IPv4-mapped unmapped on request', async (t) => {
  const is = (f: (a: ReturnType<typeof parseIp>) => boolean, s: string) => f(parseIp(s));
  t.ok(is(isUnspecified, '0.0.0.0') && is(isUnspecified, '::'));
  t.notOk(is(isUnspecified, '0.0.0.1'));
  t.ok(is(isLoopback, '127.255.0.1') && is(isLoopback, '::1'));
  t.notOk(is(isLoopback, '::ffff:127.0.0.1'), 'mapped: not IPv6 loopback');
  t.ok(isLoopback(unmap4(parseIp('::ffff:127.0.0.1'))), 'unmapped: IPv4 loopback');
  t.same(unmap4(parseIp('::ffff:10.1.2.3')), parseIp('10.1.2.3'));
  t.same(unmap4(parseIp('::10.1.2.3')), parseIp('::10.1.2.3'), 'IPv4-compatible (deprecated) is not mapped');
  t.ok(is(isLinkLocalUnicast, '169.254.1.1') && is(isLinkLocalUnicast, 'febf::1'));
  t.notOk(is(isLinkLocalUnicast, 'fec0::1'));
  t.ok(is(isMulticast, '224.0.0.1') && is(isMulticast, '239.255.255.255') && is(isMulticast, 'ff05::1'));
  t.notOk(is(isMulticast, '240.0.0.1'));
  t.ok(is(isLinkLocalMulticast, '224.0.0.251') && is(isLinkLocalMulticast, 'ff02::1') && is(isLinkLocalMulticast, 'ff12::1'));
  t.notOk(is(isLinkLocalMulticast, '224.0.1.1') || is(isLinkLocalMulticast, 'ff05::1'));
});

t.test('CIDR parsing: canonical prefix text only', async (t) => {
  t.same(parseCidr('10.244.0.0/16'), { addr: parseIp('10.244.0.0'), prefixLen: 16 });
  for (const s of ['0.0.0.0/0', '10.1.2.3/32', '::/0', '::1/128', 'fd00::/8', '10.244.1.5/24']) t.equal(formatCidr(parseCidr(s)), s);
  const bad: [string, string, RegExp][] = [
    ['10.0.0.0', 'form', /expected ADDRESS\/PREFIX/], ['10.0.0.0/', 'form', /prefix length must be 0-32/], ['10.0.0.0/x', 'form', /0-32/],
    ['10.0.0.0/-1', 'form', /prefix length/], ['10.0.0.0/+8', 'form', /prefix length/], ['10.0.0.0/ 8', 'form', /prefix/], ['10.0.0.0/8 ', 'form', /prefix/],
    ['10.0.0.0/8/8', 'form', /prefix/], ['10.0.0.0/33', 'prefix', /prefix length must be 0-32/], ['fe80::/129', 'prefix', /prefix length must be 0-128/],
    ['10.0.0.0/08', 'prefix', /prefix length "08": write it without leading zeros \(\/8\)/], ['10.0.0.0/00', 'prefix', /without leading zeros \(\/0\)/],
    ['fd00::/064', 'prefix', /leading zeros/], ['10.0.0.0/99999999999', 'form', /prefix/],
    ['010.0.0.0/8', 'address', /invalid IP address "010.0.0.0"/], ['fe80::%eth0/64', 'address', /zone/], ['fe80::/64%eth0', 'form', /prefix/], ['banana/8', 'address', /"banana"/],
  ];
  for (const [s, reason, message] of bad) {
    t.throws(() => parseCidr(s), { name: 'AddressError', reason, message }, s);
    t.equal(tryParseCidr(s), undefined, s);
  }
  const err = (() => { try { parseCidr('10.0.0.0/08'); } catch (e) { return e as AddressError; } })()!;
  t.equal(err.detail, 'prefix length "08": write it without leading zeros (/8)');
  t.equal(err.message, 'invalid CIDR "10.0.0.0/08": prefix length "08": write it without leading zeros (/8)');
});

t.test('network, broadcast, masks, host bits, size, nth', async (t) => {
  const c = (s: string) => parseCidr(s);
  t.equal(networkCidr('10.244.1.5/24'), '10.244.1.0/24');
  t.equal(networkCidr('10.244.1.5/0'), '0.0.0.0/0');
  t.equal(networkCidr('10.244.1.5/32'), '10.244.1.5/32');
  t.equal(networkCidr('fd00::1:2/112'), 'fd00::1:0/112');
  t.equal(networkCidr('fd00::1:2/96'), 'fd00::/96');
  t.equal(networkCidr('fd00::1/128'), 'fd00::1/128');
  t.equal(formatIp(broadcastOf(c('10.244.1.5/24')).bytes), '10.244.1.255');
  t.equal(formatIp(broadcastOf(c('10.244.1.5/0')).bytes), '255.255.255.255');
  t.equal(formatIp(broadcastOf(c('10.244.1.5/32')).bytes), '10.244.1.5');
  t.equal(formatIp(broadcastOf(c('10.244.1.5/31')).bytes), '10.244.1.5');
  t.equal(formatIp(broadcastOf(c('fd00::/64')).bytes), 'fd00::ffff:ffff:ffff:ffff');
  t.equal(formatIp(prefixMask(4, 20)), '255.255.240.0');
  t.equal(formatIp(prefixMask(4, 0)), '0.0.0.0');
  t.equal(formatIp(prefixMask(6, 65)), 'ffff:ffff:ffff:ffff:8000::');
  t.equal(formatIp(maskBytes(parseIp('10.255.255.255').bytes, 9)), '10.128.0.0');
  t.ok(hostBitsSet(c('10.244.1.5/24')));
  t.notOk(hostBitsSet(c('10.244.1.0/24')) || hostBitsSet(c('0.0.0.0/0')) || hostBitsSet(c('10.1.1.1/32')) || hostBitsSet(c('fd00::1/128')));
  t.ok(hostBitsSet(c('fd00::1/127')));
  t.equal(cidrSize(c('10.0.0.0/8')), 1n << 24n);
  t.equal(cidrSize(c('::/0')), 1n << 128n);
  t.equal(cidrSize(c('1.1.1.1/32')), 1n);
  t.same(cidrBounds(c('10.0.0.7/29')), { first: 0x0a000000n, last: 0x0a000007n });
  t.equal(formatIp(nthAddress(c('10.244.1.0/24'), 1).bytes), '10.244.1.1');
  t.equal(formatIp(nthAddress(c('10.244.1.77/24'), 255n).bytes), '10.244.1.255');
  t.equal(formatIp(nthAddress(c('fd00::/64'), 0x1_0000_0000n).bytes), 'fd00::1:0:0');
  t.throws(() => nthAddress(c('10.244.1.0/24'), 256), RangeError);
  t.throws(() => nthAddress(c('10.244.1.0/24'), -1), RangeError);
});

t.test('contains, overlaps, covers: same family only, no unmapping', async (t) => {
  const c = (s: string) => parseCidr(s);
  const ip = (s: string) => parseIp(s);
  t.ok(cidrContains(c('10.0.0.0/8'), ip('10.255.255.255')));
  t.notOk(cidrContains(c('10.0.0.0/8'), ip('11.0.0.0')));
  t.ok(cidrContains(c('0.0.0.0/0'), ip('255.255.255.255')));
  t.notOk(cidrContains(c('0.0.0.0/0'), ip('::')), 'family differs');
  t.ok(cidrContains(c('10.0.0.1/32'), ip('10.0.0.1')));
  t.notOk(cidrContains(c('10.0.0.1/32'), ip('10.0.0.0')));
  t.ok(cidrContains(c('10.0.0.77/24'), ip('10.0.0.1')), 'host bits of the CIDR do not matter');
  t.notOk(cidrContains(c('10.0.0.0/8'), ip('::ffff:10.0.0.1')), 'mapped is IPv6 here');
  t.ok(cidrContains(c('::ffff:0:0/96'), ip('::ffff:10.0.0.1')));
  t.ok(cidrContains(c('fd00::1/128'), ip('fd00::1')));
  t.ok(cidrOverlaps(c('10.0.0.0/8'), c('10.1.0.0/16')) && cidrOverlaps(c('10.1.0.0/16'), c('10.0.0.0/8')));
  t.notOk(cidrOverlaps(c('10.0.0.0/16'), c('10.1.0.0/16')));
  t.notOk(cidrOverlaps(c('0.0.0.0/0'), c('::/0')));
  t.ok(cidrCovers(c('10.0.0.0/8'), c('10.1.0.0/16')));
  t.notOk(cidrCovers(c('10.1.0.0/16'), c('10.0.0.0/8')));
  t.ok(textCidrContains('10.0.0.0/8', '10.1.1.1'));
  t.notOk(textCidrContains('10.0.0.0/08', '10.1.1.1') || textCidrContains('10.0.0.0/8', '010.1.1.1') || textCidrContains('bad', '10.1.1.1'));
});

// ---- properties against the libraries -----------------------------------------------------------

function randomBytes(random: () => number, family: 4 | 6): Buffer {
  const out = Buffer.alloc(family === 4 ? 4 : 16);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
  if (family === 6) {
    // Runs of zero groups, so compression has something to choose between.
    for (let g = 0; g < 8; g++) if (random() < 0.45) out.writeUInt16BE(0, g * 2);
    if (random() < 0.1) out.fill(0, 0, 10).writeUInt16BE(0xffff, 10);
  }
  return out;
}

t.test('property: parse/format/BigInt agree with ip-address on 20,000 addresses', async (t) => {
  const random = mulberry32(20240601);
  let checked = 0;
  for (let i = 0; i < 20_000; i++) {
    const family = random() < 0.5 ? 4 : 6;
    const b = randomBytes(random, family);
    const text = formatIp(b);
    const lib = family === 4 ? new Address4(text) : new Address6(text);
    const want = family === 4 ? (lib as Address4).correctForm() : (lib as Address6).correctForm();
    if (text !== want || !parseIp(text).bytes.equals(b) || ipToBigInt(b) !== lib.bigInt()) {
      t.fail(`${b.toString('hex')}: ours ${text}, ip-address ${want}`);
      break;
    }
    if (family === 6) {
      const full = (lib as Address6).canonicalForm(); // every group, 4 digits: parses to the same bytes
      if (!parseIp(full).bytes.equals(b) || !parseIp(full.toUpperCase()).bytes.equals(b)) t.fail(`${full} parses differently`);
    }
    if (formatBigInt(family, ipToBigInt(b)) !== text) t.fail(`BigInt round trip of ${text}`);
    checked++;
  }
  t.equal(checked, 20_000);
});

t.test('property: network, broadcast, size, contains, overlaps agree with ip-cidr', async (t) => {
  const random = mulberry32(777);
  const cidrs: Cidr[] = [];
  for (let i = 0; i < 3000; i++) {
    const family = random() < 0.5 ? 4 : 6;
    const bits = family === 4 ? 32 : 128;
    let b = randomBytes(random, family);
    // ip-cidr reads "::ffff:a.b.c.d/N" as IPv4 (size 1): keep mapped addresses out of the oracle.
    if (family === 6 && b[10] === 0xff && b[11] === 0xff) b = Buffer.concat([Buffer.from([0x20, 0x01]), b.subarray(2)]);
    cidrs.push({ addr: { family, bytes: b }, prefixLen: Math.floor(random() * (bits + 1)) });
  }
  for (const c of cidrs) {
    const lib = new IPCIDR(formatCidr(networkOf(c)));
    const start = lib.start<bigint>({ type: 'bigInteger' });
    const end = lib.end<bigint>({ type: 'bigInteger' });
    const { first, last } = cidrBounds(c);
    if (first !== start || last !== end || ipToBigInt(broadcastOf(c).bytes) !== end || cidrSize(c) !== lib.size || ipToBigInt(networkOf(c).addr.bytes) !== start) {
      t.fail(`${formatCidr(c)}: ours ${first}-${last}, ip-cidr ${start}-${end}`);
      break;
    }
    for (const probe of [first, last, first > 0n ? first - 1n : last + 1n, first + (last - first) / 2n]) {
      const width = c.addr.family === 4 ? 32 : 128;
      if (probe < 0n || probe >> BigInt(width) !== 0n) continue;
      const a = bigIntToIp(c.addr.family, probe);
      if (cidrContains(c, a) !== lib.contains(formatIp(a.bytes))) t.fail(`${formatCidr(c)} contains ${formatIp(a.bytes)}`);
    }
  }
  for (let i = 0; i + 1 < cidrs.length; i += 2) {
    const [a, b] = [cidrs[i]!, cidrs[i + 1]!];
    const shared = a.addr.family === b.addr.family && new IPCIDR(formatCidr(networkOf(a))).contains(formatIp(networkOf(b).addr.bytes)) || a.addr.family === b.addr.family && new IPCIDR(formatCidr(networkOf(b))).contains(formatIp(networkOf(a).addr.bytes));
    if (cidrOverlaps(a, b) !== shared) t.fail(`${formatCidr(a)} overlaps ${formatCidr(b)}`);
  }
  t.pass('checked');
});

t.test('layering: src/net imports nothing of ours; nobody else validates IPs with node:net', async (t) => {
  const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');
  const files = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
  for (const file of files(path.join(src, 'net'))) {
    const imports = [...fs.readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    t.same(imports.filter((i) => !i.startsWith('node:') && !/^\.\/[a-z-]+\.js$/.test(i)), [], path.relative(src, file));
  }
  const outside = files(src).filter((f) => !f.startsWith(path.join(src, 'net') + path.sep));
  const users = outside.filter((f) => /\bisIP(v4|v6)?\(/.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(src, f));
  t.same(users, [], 'net.isIP/isIPv4/isIPv6 only in src/net (use isIp/parseIp/ipv4Number)');
});
