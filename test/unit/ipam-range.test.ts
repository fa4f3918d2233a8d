// IPAM ranges: host-local's defaults, bounds, the /31-/32 rule, IPv6 in BigInt, range-set checks,
// and every bad input an IpamError('invalid') naming the field.
import t from 'tap';
import { IpamError } from '../../src/ipam/types.js';
import {
  allocatableCount, canonicalIp, describeRange, formatAddress, isAllocatable, parseAddress, parseRange, parseRangeSet,
  parseRangeSets, type ParsedRange,
} from '../../src/ipam/range.js';

const text = (r: ParsedRange) => ({
  subnet: r.subnet, start: formatAddress(r.family, r.start), end: formatAddress(r.family, r.end), gateway: formatAddress(r.family, r.gateway),
});

t.test('defaults: start = network+1, end = broadcast-1 (IPv4) or last (IPv6), gateway = network+1', async (t) => {
  t.same(text(parseRange({ subnet: '10.244.1.0/24' }, 'r')), { subnet: '10.244.1.0/24', start: '10.244.1.1', end: '10.244.1.254', gateway: '10.244.1.1' });
  t.same(text(parseRange({ subnet: '10.0.0.0/30' }, 'r')), { subnet: '10.0.0.0/30', start: '10.0.0.1', end: '10.0.0.2', gateway: '10.0.0.1' });
  t.same(text(parseRange({ subnet: 'fd00:1::/64' }, 'r')), { subnet: 'fd00:1::/64', start: 'fd00:1::1', end: 'fd00:1::ffff:ffff:ffff:ffff', gateway: 'fd00:1::1' });
  t.same(text(parseRange({ subnet: 'FD00:0001:0000::/120' }, 'r')).subnet, 'fd00:1::/120', 'subnet is canonicalised');
  t.same(text(parseRange({ subnet: '10.1.0.0/16', rangeStart: '10.1.2.10', rangeEnd: '10.1.2.20', gateway: '10.1.255.254' }, 'r')),
    { subnet: '10.1.0.0/16', start: '10.1.2.10', end: '10.1.2.20', gateway: '10.1.255.254' });
  t.same(text(parseRange({ subnet: '10.1.2.0/24', rangeStart: '10.1.2.7', rangeEnd: '10.1.2.7' }, 'r')).end, '10.1.2.7', 'start = end is one address');
});

t.test('allocatable counts exclude the gateway; IPv6 counts in BigInt', async (t) => {
  t.equal(allocatableCount(parseRangeSet([{ subnet: '10.1.2.0/24' }])), 253n, '.1 is the gateway, .0 and .255 never in range');
  t.equal(allocatableCount(parseRangeSet([{ subnet: '10.1.2.0/24', gateway: '10.1.2.254', rangeStart: '10.1.2.100' }])), 154n, '.100-.253');
  t.equal(allocatableCount(parseRangeSet([{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.10', rangeEnd: '10.1.2.19' }])), 10n, 'gateway outside the bounds');
  t.equal(allocatableCount(parseRangeSet([{ subnet: '10.0.0.0/30' }])), 1n, '/30: only .2');
  t.equal(allocatableCount(parseRangeSet([{ subnet: 'fd00::/64' }])), 2n ** 64n - 2n, 'IPv6 /64: all but network and gateway');
  t.equal(allocatableCount(parseRangeSet([{ subnet: '10.0.0.0/8' }])), 2n ** 24n - 3n);
  const set = parseRangeSet([{ subnet: '10.1.2.0/24' }]);
  t.notOk(isAllocatable(set, parseAddress('10.1.2.1', 'x')), 'gateway');
  t.ok(isAllocatable(set, parseAddress('10.1.2.254', 'x')));
  t.notOk(isAllocatable(set, parseAddress('10.1.2.255', 'x')), 'broadcast');
  t.notOk(isAllocatable(set, parseAddress('fd00::5', 'x')), 'other family');
});

t.test('/31 and /32 (and /127, /128) are rejected like host-local: nothing left to allocate', async (t) => {
  for (const subnet of ['10.0.0.0/31', '10.0.0.1/32', 'fd00::/127', 'fd00::1/128']) {
    t.throws(() => parseRange({ subnet }, 'ipam.ranges[0][0]'), { name: 'IpamError', kind: 'invalid', message: /ipam\.ranges\[0\]\[0\]\.subnet ".*": too small to allocate from/ }, subnet);
  }
  t.doesNotThrow(() => parseRange({ subnet: 'fd00::/126' }, 'r'), '/126 has ::2 and ::3');
  t.throws(() => parseRangeSet([{ subnet: '10.0.0.0/30', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.1' }]), /ipam\.ranges\[0\]\[0\]: no allocatable address in 10\.0\.0\.1-10\.0\.0\.1 \(only a gateway\)/);
});

t.test('bad ranges: IpamError invalid naming the field', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ subnet: '10.1.2.0/24', rangeEnd: '10.1.2.300' }, /^ipam\.ranges\[0\]\[1\]\.rangeEnd "10\.1\.2\.300": not an IP address$/],
    [{}, /^ipam\.ranges\[0\]\[1\]\.subnet: required/],
    [{ subnet: 42 }, /\.subnet: must be a string, got number/],
    [{ subnet: '10.1.2.0' }, /\.subnet "10\.1\.2\.0": not a CIDR/],
    [{ subnet: '10.1.2.0/33' }, /\.subnet "10\.1\.2\.0\/33": prefix length must be 0-32/],
    [{ subnet: '10.1.2.0/x' }, /not a CIDR/],
    [{ subnet: '10.0.0.0/08' }, /\.subnet "10\.0\.0\.0\/08": prefix length "08": write it without leading zeros/],
    [{ subnet: '0.0.0.0/0' }, /\.subnet "0\.0\.0\.0\/0": prefix length 0 covers every address/],
    [{ subnet: '::/0' }, /\.subnet "::\/0": prefix length 0 covers every address/],
    [{ subnet: '127.0.0.0/16' }, /\.subnet "127\.0\.0\.0\/16": overlaps 127\.0\.0\.0\/8 \(loopback\)/],
    [{ subnet: '0.0.0.0/1' }, /overlaps 0\.0\.0\.0\/8 \("this network"\)/],
    [{ subnet: '224.0.0.0/24' }, /overlaps 224\.0\.0\.0\/4 \(multicast\)/],
    [{ subnet: '::/64' }, /overlaps ::\/8 /],
    [{ subnet: 'fe80::/64' }, /overlaps fe80::\/10 \(link-local\)/],
    [{ subnet: 'ff05::/64' }, /overlaps ff00::\/8 \(multicast\)/],
    [{ subnet: 'nope/24' }, /\.subnet "nope": not an IP address/],
    [{ subnet: '10.1.2.5/24' }, /\.subnet "10\.1\.2\.5\/24": host bits set \(the network address is 10\.1\.2\.0\/24\)/],
    [{ subnet: 'fd00::1/64' }, /host bits set \(the network address is fd00::\/64\)/],
    [{ subnet: '10.1.2.0/24', rangeStart: '10.1.3.1' }, /\.rangeStart "10\.1\.3\.1": not in subnet 10\.1\.2\.0\/24/],
    [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.0' }, /\.rangeStart "10\.1\.2\.0": is the network address/],
    [{ subnet: '10.1.2.0/24', rangeEnd: '10.1.2.255' }, /\.rangeEnd "10\.1\.2\.255": is the broadcast address/],
    [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.20', rangeEnd: '10.1.2.10' }, /\.rangeEnd "10\.1\.2\.10": before rangeStart 10\.1\.2\.20/],
    [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.20', rangeEnd: '10.1.2.19' }, /before rangeStart/],
    [{ subnet: '10.1.2.0/24', gateway: '10.1.3.1' }, /\.gateway "10\.1\.3\.1": not in subnet/],
    [{ subnet: '10.1.2.0/24', gateway: '10.1.2.255' }, /\.gateway "10\.1\.2\.255": is the broadcast address/],
    [{ subnet: '10.1.2.0/24', gateway: 'fd00::1' }, /\.gateway "fd00::1": IPv6 address in IPv4 subnet 10\.1\.2\.0\/24/],
    [{ subnet: 'fd00::/64', rangeStart: '10.0.0.1' }, /IPv4 address in IPv6 subnet fd00::\/64/],
    [{ subnet: 'fd00::/64', rangeStart: 'fe80::1%eth0' }, /\.rangeStart "fe80::1%eth0": not an IP address/],
    [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.010' }, /not an IP address/],
    [{ subnet: '10.1.2.0/24', gateway: null }, /\.gateway: must be a string, got null/],
    [null, /^ipam\.ranges\[0\]\[1\]: must be an object with a subnet, got null/],
    [['10.1.2.0/24'], /must be an object with a subnet, got array/],
  ];
  for (const [range, re] of bad) {
    t.throws(() => parseRangeSets([[{ subnet: '192.168.0.0/24' }, range]]), { name: 'IpamError', kind: 'invalid', message: re }, re.source);
  }
  t.ok(new IpamError('invalid', 'x') instanceof Error);
});

t.test('range sets: non-empty, one family, no overlap inside a set or across sets', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /^ipam\.ranges: must be an array of range sets/],
    [[], /^ipam\.ranges: no range sets/],
    [[[]], /^ipam\.ranges\[0\]: empty range set/],
    [[{ subnet: '10.0.0.0/24' }], /^ipam\.ranges\[0\]: must be an array of ranges, got object/],
    [[[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]], /^ipam\.ranges\[0\]\[1\]\.subnet "fd00::\/64": IPv6 range in a range set of IPv4 ranges \(ipam\.ranges\[0\]\[0\]\)/],
    [[[{ subnet: '10.0.0.0/16' }, { subnet: '10.0.5.0/24' }]], /^ipam\.ranges\[0\]\[1\]: 10\.0\.5\.1-10\.0\.5\.254 overlaps ipam\.ranges\[0\]\[0\] \(10\.0\.0\.1-10\.0\.255\.254\)/],
    [[[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.100' }, { subnet: '10.0.0.0/24', rangeStart: '10.0.0.100' }]], /\[0\]\[1\]: 10\.0\.0\.100-10\.0\.0\.254 overlaps/],
    [[[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }], [{ subnet: '10.0.0.0/25' }]], /^ipam\.ranges\[2\]\[0\]: 10\.0\.0\.1-10\.0\.0\.126 overlaps ipam\.ranges\[0\]\[0\] \(10\.0\.0\.1-10\.0\.0\.254\) of another range set/],
  ];
  for (const [sets, re] of bad) t.throws(() => parseRangeSets(sets), { kind: 'invalid', message: re }, re.source);

  // Two disjoint slices of one subnet are one valid set, as in host-local.
  const set = parseRangeSets([[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.99' }, { subnet: '10.0.0.0/24', rangeStart: '10.0.0.100', gateway: '10.0.0.200' }], [{ subnet: 'fd00::/120' }]]);
  t.same(set.map((s) => [s.field, s.index, s.family, s.ranges.map(describeRange)]),
    [['ipam.ranges[0]', 0, 4, ['10.0.0.1-10.0.0.99', '10.0.0.100-10.0.0.254']], ['ipam.ranges[1]', 1, 6, ['fd00::1-fd00::ff']]]);
  // Every gateway is excluded from every range of its family: .1 and .200.
  t.equal(allocatableCount(set[0]!), 252n);
  t.equal(allocatableCount(set[1]!), 254n);
});

t.test('overlaps are found whatever the order: a long range before short ones, a later range that sorts first', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [[[{ subnet: '10.0.0.0/16' }, { subnet: '10.1.0.0/24' }, { subnet: '10.0.200.0/24' }]], /^ipam\.ranges\[0\]\[2\]: 10\.0\.200\.1-10\.0\.200\.254 overlaps ipam\.ranges\[0\]\[0\] \(10\.0\.0\.1-10\.0\.255\.254\)$/],
    [[[{ subnet: '10.0.5.0/24' }, { subnet: '10.0.0.0/16' }]], /^ipam\.ranges\[0\]\[1\]: 10\.0\.0\.1-10\.0\.255\.254 overlaps ipam\.ranges\[0\]\[0\] \(10\.0\.5\.1-10\.0\.5\.254\)$/],
    [[[{ subnet: '10.9.0.0/24' }], [{ subnet: '10.0.0.0/8' }]], /^ipam\.ranges\[1\]\[0\]: .* overlaps ipam\.ranges\[0\]\[0\] \(10\.9\.0\.1-10\.9\.0\.254\) of another range set$/],
  ];
  for (const [sets, re] of bad) t.throws(() => parseRangeSets(sets), { kind: 'invalid', message: re }, re.source);
  t.doesNotThrow(() => parseRangeSets([[{ subnet: '10.0.2.0/24' }, { subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/120' }], [{ subnet: '10.0.1.0/24' }]]), 'disjoint ranges interleaved across sets');
});

/** n /24 ranges 10.A.B.0/24, distinct. */
const manyRanges = (n: number, from = 0) => Array.from({ length: n }, (_, k) => ({ subnet: `10.${((k + from) >> 8) & 255}.${(k + from) & 255}.0/24` }));

t.test('50,000 ranges (1.4 MB of config) parse, count and look up in well under a second each, not minutes', async (t) => {
  const timed = <T>(what: string, fn: () => T, maxMs: number): T => {
    const t0 = performance.now();
    const out = fn();
    const ms = performance.now() - t0;
    t.ok(ms < maxMs, `${what}: ${ms.toFixed(0)} ms (limit ${maxMs} ms)`);
    return out;
  };
  const [one] = timed('one set of 50,000', () => parseRangeSets([manyRanges(50_000)]), 3000);
  timed('two sets of 25,000', () => parseRangeSets([manyRanges(25_000), manyRanges(25_000, 25_000)]), 3000);
  t.equal(timed('allocatableCount', () => allocatableCount(one!), 1000), 50_000n * 253n, 'every /24 has 253 (its .1 is a gateway)');
  const probes = manyRanges(50_000).map((r) => parseAddress(r.subnet.replace(/0\/24$/, '9'), 'x'));
  t.ok(timed('isAllocatable for one address of each range', () => probes.every((a) => isAllocatable(one!, a)), 1000), 'all allocatable');
  const tooMany = [manyRanges(60_000), [...manyRanges(5_536, 60_000), { subnet: '11.0.0.0/24' }]];
  t.throws(() => parseRangeSets(tooMany), { message: /^ipam\.ranges: 65537 ranges, more than the 65536 podwire accepts in one network; merge adjacent/ });
  t.doesNotThrow(() => parseRangeSets([manyRanges(60_000), manyRanges(5_536, 60_000)]), '65,536 ranges are accepted');
  t.throws(() => parseRangeSets([[...manyRanges(50_000), { subnet: '10.3.0.0/16' }]]), { message: /^ipam\.ranges\[0\]\[50000\]: .* overlaps ipam\.ranges\[0\]\[768\]/ }, 'an overlap among 50,000 is still found and named');
});

t.test('addresses: canonical text, BigInt round trip', async (t) => {
  t.equal(canonicalIp('FD00:0:0::0001'), 'fd00::1');
  t.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  t.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
  t.equal(canonicalIp('lock'), undefined);
  t.equal(canonicalIp('10.0.0.1/24'), undefined);
  const a = parseAddress('fd00::ffff:ffff:ffff:ffff', 'x');
  t.equal(a.value, (0xfd00n << 112n) + 2n ** 64n - 1n);
  t.equal(formatAddress(6, a.value + 1n), 'fd00:0:0:1::');
  t.equal(formatAddress(4, 0xffffffffn), '255.255.255.255');
  t.throws(() => parseAddress(7, 'ips[0]'), /^ips\[0\]: must be a string, got number/);
});
