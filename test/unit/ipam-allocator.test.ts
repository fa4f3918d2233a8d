// The pure allocator: round robin after the cursor with wrap-around, gateway exclusion, several
// ranges per set, IPv6, exhaustion, idempotent ADD and requested IPs, as table tests.
import t from 'tap';
import { matchRequested, nextFree, chooseAddresses, toAllocation, type HeldIp } from '../../src/ipam/allocator.js';
import { formatAddress, parseAddress, parseRangeSet, parseRangeSets } from '../../src/ipam/range.js';
import type { Owner, RangeSet } from '../../src/ipam/types.js';

const A: Owner = { containerId: 'aaaa', ifname: 'eth0' };
const B: Owner = { containerId: 'bbbb', ifname: 'eth0' };

/** nextFree over a set given as config, taken IPs and a cursor, as text. */
function next(set: RangeSet, taken: string[], cursor?: string): string | undefined {
  const s = parseRangeSet(set);
  const takenValues = new Set(taken.map((ip) => parseAddress(ip, 't').value));
  const v = nextFree(s, (x) => takenValues.has(x), cursor === undefined ? undefined : parseAddress(cursor, 'c'));
  return v === undefined ? undefined : formatAddress(s.family, v);
}

t.test('nextFree: round robin after the cursor, wrapping, skipping gateway and taken', async (t) => {
  const v4: RangeSet = [{ subnet: '10.1.2.0/24' }];
  const small: RangeSet = [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.10', rangeEnd: '10.1.2.13' }];
  const cases: Array<[string, RangeSet, string[], string | undefined, string | undefined]> = [
    ['no cursor: first after the gateway', v4, [], undefined, '10.1.2.2'],
    ['after the cursor', v4, [], '10.1.2.7', '10.1.2.8'],
    ['a released address behind the cursor is not reused at once', v4, ['10.1.2.2', '10.1.2.4'], '10.1.2.4', '10.1.2.5'],
    ['skips taken after the cursor', v4, ['10.1.2.8', '10.1.2.9'], '10.1.2.7', '10.1.2.10'],
    ['wraps from the end to the start, skipping the gateway', v4, [], '10.1.2.254', '10.1.2.2'],
    ['cursor outside the set: from the start', v4, [], '10.9.9.9', '10.1.2.2'],
    ['cursor of the other family: from the start', v4, [], 'fd00::9', '10.1.2.2'],
    ['cursor on the gateway', v4, [], '10.1.2.1', '10.1.2.2'],
    ['bounded range, no cursor', small, [], undefined, '10.1.2.10'],
    ['bounded range wraps', small, ['10.1.2.10'], '10.1.2.13', '10.1.2.11'],
    ['only the cursor itself is free: it is the last one tried', small, ['10.1.2.10', '10.1.2.11', '10.1.2.13'], '10.1.2.12', '10.1.2.12'],
    ['exhausted', small, ['10.1.2.10', '10.1.2.11', '10.1.2.12', '10.1.2.13'], '10.1.2.11', undefined],
    ['/30: only .2', [{ subnet: '10.0.0.0/30' }], [], undefined, '10.0.0.2'],
    ['/30 exhausted', [{ subnet: '10.0.0.0/30' }], ['10.0.0.2'], '10.0.0.2', undefined],
    ['gateway inside a bounded range is skipped', [{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.100', rangeEnd: '10.1.2.102', gateway: '10.1.2.101' }], [], '10.1.2.100', '10.1.2.102'],
    ['IPv6 start', [{ subnet: 'fd00::/64' }], [], undefined, 'fd00::2'],
    ['IPv6 crosses a 32-bit boundary', [{ subnet: 'fd00::/64' }], [], 'fd00::ffff:ffff', 'fd00::1:0:0'],
    ['IPv6 wraps from the last address', [{ subnet: 'fd00::/64' }], ['fd00::2'], 'fd00::ffff:ffff:ffff:ffff', 'fd00::3'],
    ['IPv6 /126', [{ subnet: 'fd00::/126' }], ['fd00::2'], 'fd00::2', 'fd00::3'],
  ];
  for (const [name, set, taken, cursor, want] of cases) t.equal(next(set, taken, cursor), want, name);
});

t.test('nextFree: several ranges in a set are walked in order, wrapping to the first', async (t) => {
  const set: RangeSet = [
    { subnet: '10.1.0.0/24', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.11' },
    { subnet: '10.2.0.0/24', rangeStart: '10.2.0.20', rangeEnd: '10.2.0.21' },
  ];
  t.equal(next(set, [], '10.1.0.11'), '10.2.0.20', 'end of range 0 → start of range 1');
  t.equal(next(set, [], '10.2.0.21'), '10.1.0.10', 'end of the last range → the first');
  t.equal(next(set, ['10.2.0.20', '10.2.0.21', '10.1.0.10'], '10.1.0.11'), '10.1.0.11', 'full circle back to the cursor');
  t.equal(next(set, ['10.1.0.10', '10.1.0.11', '10.2.0.20', '10.2.0.21'], '10.1.0.11'), undefined);
});

t.test('nextFree: an IPv6 /64 with many taken ends after a bounded walk', async (t) => {
  const taken: string[] = [];
  for (let i = 2; i < 5002; i++) taken.push(formatAddress(6, (0xfd00n << 112n) + BigInt(i)));
  const t0 = process.hrtime.bigint();
  t.equal(next([{ subnet: 'fd00::/64' }], taken), 'fd00::138a', '5002 = 0x138a');
  t.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 1000, 'fast');
});

const sets2 = parseRangeSets([[{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00::/120' }]]);
const choose = (reservations: HeldIp[], owner: Owner, cursors: Array<string | undefined> = [], requested?: string[]) =>
  chooseAddresses({ rangeSets: sets2, reservations, owner, cursors, requested: matchRequested(sets2, requested) })
    .map((p) => `${toAllocation(p).address}${p.fresh ? '' : ' (held)'}`);

t.test('chooseAddresses: one address per range set, with prefix and gateway', async (t) => {
  t.same(choose([], A), ['10.1.2.2/24', 'fd00::2/120']);
  t.same(chooseAddresses({ rangeSets: sets2, reservations: [], owner: A, cursors: [] }).map(toAllocation), [
    { address: '10.1.2.2/24', gateway: '10.1.2.1', rangeSetIndex: 0 },
    { address: 'fd00::2/120', gateway: 'fd00::1', rangeSetIndex: 1 },
  ]);
  t.same(choose([{ ip: '10.1.2.2', owner: B }], A, ['10.1.2.2', 'fd00::10']), ['10.1.2.3/24', 'fd00::11/120'], 'cursors per set');
  t.same(choose([{ ip: '10.1.2.3', owner: undefined }], A, ['10.1.2.2']), ['10.1.2.4/24', 'fd00::2/120'], 'a malformed record still holds its IP');
  t.same(choose([{ ip: 'FD00::2', owner: B }], A), ['10.1.2.2/24', 'fd00::3/120'], 'non-canonical names match');
  t.same(choose([{ ip: 'not-an-ip', owner: B }], A, ['garbage', '10.1.2.9']), ['10.1.2.2/24', 'fd00::2/120'], 'garbage names and cursors are ignored');
});

t.test('chooseAddresses: idempotent ADD returns what the owner holds, per set', async (t) => {
  const held: HeldIp[] = [{ ip: '10.1.2.40', owner: A }, { ip: '10.1.2.41', owner: B }];
  t.same(choose(held, A, ['10.1.2.41']), ['10.1.2.40/24 (held)', 'fd00::2/120'], 'held in set 0, fresh in set 1');
  t.same(choose([...held, { ip: 'fd00::7', owner: A }], A), ['10.1.2.40/24 (held)', 'fd00::7/120 (held)']);
  t.same(choose([{ ip: '10.1.2.40', owner: { containerId: 'aaaa', ifname: 'eth1' } }], A), ['10.1.2.2/24', 'fd00::2/120'], 'another ifname is another owner');
  t.same(choose([{ ip: '10.9.9.9', owner: A }], A), ['10.1.2.2/24', 'fd00::2/120'], 'an IP outside every set is not "held"');
  const moved = parseRangeSets([[{ subnet: '10.1.2.0/24', gateway: '10.1.2.40' }]]);
  t.same(chooseAddresses({ rangeSets: moved, reservations: [{ ip: '10.1.2.40', owner: A }], owner: A, cursors: [] }).map((p) => [p.ip, p.fresh]),
    [['10.1.2.1', true]], 'a held address that became the gateway is not returned');
});

t.test('chooseAddresses: exhaustion of any set throws before anything is decided', async (t) => {
  const tiny = parseRangeSets([[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.9.0.0/30' }]]);
  t.throws(() => chooseAddresses({ rangeSets: tiny, reservations: [{ ip: '10.9.0.2', owner: B }], owner: A, cursors: [] }),
    { name: 'IpamError', kind: 'exhausted', message: /^range set ipam\.ranges\[1\] \(10\.9\.0\.1-10\.9\.0\.2\) is exhausted: no free address$/ });
});

t.test('requested IPs: free, held, taken, outside, gateway, two per set', async (t) => {
  t.same(choose([], A, [], ['10.1.2.77']), ['10.1.2.77/24', 'fd00::2/120'], 'free: reserved');
  t.same(choose([], A, [], ['fd00::77', '10.1.2.77', '10.1.2.77']), ['10.1.2.77/24', 'fd00::77/120'], 'both sets, any order, duplicates collapse');
  t.same(choose([{ ip: '10.1.2.77', owner: A }], A, [], ['10.1.2.77']), ['10.1.2.77/24 (held)', 'fd00::2/120'], 'already held by this owner');
  t.throws(() => choose([{ ip: '10.1.2.77', owner: B }], A, [], ['10.1.2.77']),
    { kind: 'unavailable', message: /^requested IP 10\.1\.2\.77 is not available: reserved by container "bbbb" ifname "eth0"$/ });
  t.throws(() => choose([{ ip: '10.1.2.5', owner: A }], A, [], ['10.1.2.77']),
    { kind: 'unavailable', message: /already holds 10\.1\.2\.5 in range set ipam\.ranges\[0\]/ });
  t.throws(() => choose([], A, [], ['10.1.3.1']), { kind: 'invalid', message: /^ips\[0\] "10\.1\.3\.1": not in any range set \(ipam\.ranges\[0\]: 10\.1\.2\.1-10\.1\.2\.254; ipam\.ranges\[1\]: fd00::1-fd00::ff\)/ });
  t.throws(() => choose([], A, [], ['10.1.2.255']), { kind: 'invalid', message: /not in any range set/ }, 'broadcast');
  t.throws(() => choose([], A, [], ['10.1.2.1']), { kind: 'invalid', message: /^ips\[0\] "10\.1\.2\.1": is a gateway, never allocated/ });
  t.throws(() => choose([], A, [], ['10.1.2.5', '10.1.2.6']), { kind: 'invalid', message: /^ips\[1\] "10\.1\.2\.6": range set ipam\.ranges\[0\] already has requested ips\[0\] 10\.1\.2\.5/ });
  t.throws(() => choose([], A, [], ['bogus']), { kind: 'invalid', message: /^ips\[0\] "bogus": not an IP address/ });
  t.throws(() => matchRequested(sets2, '10.1.2.5'), { kind: 'invalid', message: /^ips: must be an array/ });
  t.same([...matchRequested(sets2, undefined)], []);
});
