// FileIpam over the in-memory store: idempotent ADD, release, GC, free counts, rollback on partial
// failure, the lock around every op, and validation before any store is touched.
import t from 'tap';
import { FileIpam } from '../../src/ipam/ipam.js';
import { FakeStore } from '../../src/ipam/fake-store.js';
import { IpamError, type Owner, type RangeSet } from '../../src/ipam/types.js';

const A: Owner = { containerId: 'aaaa', ifname: 'eth0' };
const B: Owner = { containerId: 'bbbb', ifname: 'eth0' };
const C: Owner = { containerId: 'cccc', ifname: 'eth0' };
const dual: RangeSet[] = [[{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00::/120' }]];

function setup() {
  const fake = new FakeStore();
  return { fake, ipam: new FileIpam(fake.factory()) };
}

t.test('allocate: one address per set, gateway, cursor written, synced', async (t) => {
  const { fake, ipam } = setup();
  t.same(ipam.allocate('net', A, dual), [
    { address: '10.1.2.2/24', gateway: '10.1.2.1', rangeSetIndex: 0 },
    { address: 'fd00::2/120', gateway: 'fd00::1', rangeSetIndex: 1 },
  ]);
  t.same(fake.journal, ['reserve net 10.1.2.2', 'cursor net 0 10.1.2.2', 'reserve net fd00::2', 'cursor net 1 fd00::2', 'sync net']);
  t.equal(fake.net('net').files.get('10.1.2.2'), 'aaaa\neth0\n', 'record format');
  t.equal(fake.net('net').locked, false, 'lock released');
  t.same(ipam.allocate('net', B, dual).map((a) => a.address), ['10.1.2.3/24', 'fd00::3/120']);
  t.same(ipam.list('net'), [
    { ip: '10.1.2.2', containerId: 'aaaa', ifname: 'eth0' }, { ip: '10.1.2.3', containerId: 'bbbb', ifname: 'eth0' },
    { ip: 'fd00::2', containerId: 'aaaa', ifname: 'eth0' }, { ip: 'fd00::3', containerId: 'bbbb', ifname: 'eth0' },
  ]);
  t.same(ipam.list('other'), [], 'networks are separate');
});

t.test('allocate is idempotent: the same owner gets the same addresses, nothing written', async (t) => {
  const { fake, ipam } = setup();
  const first = ipam.allocate('net', A, dual);
  const before = fake.journal.length;
  t.same(ipam.allocate('net', A, dual), first);
  t.same(fake.journal.slice(before), [], 'no write at all');
  t.equal(ipam.list('net').length, 2);
  // Adding a range set later: the held address is kept, the new set gets a fresh one.
  const three: RangeSet[] = [...dual, [{ subnet: '10.50.0.0/24' }]];
  t.same(ipam.allocate('net', A, three).map((a) => a.address), ['10.1.2.2/24', 'fd00::2/120', '10.50.0.2/24']);
});

t.test('round robin: a released address is not handed out again at once', async (t) => {
  const { ipam } = setup();
  const set: RangeSet[] = [[{ subnet: '10.1.2.0/29' }]]; // .2-.6 allocatable
  t.equal(ipam.allocate('net', A, set)[0]!.address, '10.1.2.2/29');
  ipam.release('net', A);
  t.equal(ipam.allocate('net', B, set)[0]!.address, '10.1.2.3/29');
  for (const id of ['c1', 'c2', 'c3']) ipam.allocate('net', { containerId: id, ifname: 'eth0' }, set);
  t.equal(ipam.allocate('net', A, set)[0]!.address, '10.1.2.2/29', 'wrapped around to the released one');
  t.throws(() => ipam.allocate('net', C, set), { name: 'IpamError', kind: 'exhausted' });
  t.same(ipam.free('net', set), [0]);
});

t.test('release: every address of the owner, idempotent, others kept', async (t) => {
  const { fake, ipam } = setup();
  ipam.allocate('net', A, dual);
  ipam.allocate('net', B, dual);
  ipam.allocate('net', { containerId: 'aaaa', ifname: 'eth1' }, dual);
  t.same(ipam.release('net', A), [
    { ip: '10.1.2.2', containerId: 'aaaa', ifname: 'eth0' }, { ip: 'fd00::2', containerId: 'aaaa', ifname: 'eth0' },
  ]);
  t.same(ipam.release('net', A), [], 'second DEL: nothing, no error');
  t.same(ipam.release('never-used', A), [], 'unknown network: nothing');
  t.same(ipam.list('net').map((r) => `${r.ip} ${r.containerId} ${r.ifname}`), ['10.1.2.3 bbbb eth0', '10.1.2.4 aaaa eth1', 'fd00::3 bbbb eth0', 'fd00::4 aaaa eth1']);
  const n = fake.journal.length;
  ipam.release('net', C);
  t.same(fake.journal.slice(n), [], 'no sync when nothing changed');
});

t.test('gc: releases every reservation not owned by a valid attachment, malformed ones too', async (t) => {
  const { fake, ipam } = setup();
  ipam.allocate('net', A, dual);
  ipam.allocate('net', B, dual);
  ipam.allocate('net', C, dual);
  fake.put('net', '10.1.2.99', 'half-written');
  fake.put('net', 'not-an-ip', 'x\ny\n');
  t.same(ipam.list('net').find((r) => r.ip === '10.1.2.99'), { ip: '10.1.2.99', containerId: '', ifname: '' }, 'malformed: empty owner');
  const released = ipam.gc('net', [B, { containerId: 'zzzz', ifname: 'eth0' }]);
  t.same(released.map((r) => `${r.ip} ${r.containerId}`), ['10.1.2.2 aaaa', '10.1.2.4 cccc', '10.1.2.99 ', 'fd00::2 aaaa', 'fd00::4 cccc']);
  t.same(ipam.list('net').map((r) => r.ip), ['10.1.2.3', 'fd00::3']);
  t.ok(fake.net('net').files.has('not-an-ip'), 'a file that is not an IP is not ours: never touched');
  t.same(ipam.gc('net', []).length, 2);
  t.same(ipam.gc('net', []), []);
  t.throws(() => ipam.gc('net', [{ containerId: 'x' } as Owner]), { kind: 'invalid', message: /^valid\[0\]\.ifname: required/ });
});

t.test('free: per range set, gateway and foreign addresses not counted, IPv6 capped', async (t) => {
  const { fake, ipam } = setup();
  t.same(ipam.free('net', dual), [253, 254]);
  ipam.allocate('net', A, dual);
  fake.put('net', '10.1.2.1', 'x\ny\n'); // a stray file on the gateway does not make the pool smaller
  fake.put('net', '10.7.7.7', 'x\ny\n'); // outside every set
  t.same(ipam.free('net', dual), [252, 253]);
  t.same(ipam.free('net', [[{ subnet: 'fd00::/64' }], [{ subnet: '172.16.0.0/12' }]]), [Number.MAX_SAFE_INTEGER, 2 ** 20 - 3]);
  t.same(ipam.free('net', [[{ subnet: 'fd00::/76' }]]), [2 ** 52 - 3], 'below the cap: exact (A holds fd00::2)');
});

t.test('requested IPs through FileIpam', async (t) => {
  const { ipam } = setup();
  t.same(ipam.allocate('net', A, dual, ['10.1.2.50']).map((a) => a.address), ['10.1.2.50/24', 'fd00::2/120']);
  t.same(ipam.allocate('net', A, dual, ['10.1.2.50']).map((a) => a.address), ['10.1.2.50/24', 'fd00::2/120'], 'idempotent with the request');
  t.throws(() => ipam.allocate('net', B, dual, ['10.1.2.50']), { name: 'IpamError', kind: 'unavailable' });
  t.throws(() => ipam.allocate('net', B, dual, ['10.2.0.1']), { name: 'IpamError', kind: 'invalid' });
  t.same(ipam.list('net').map((r) => r.containerId), ['aaaa', 'aaaa'], 'failed requests reserved nothing');
  t.same(ipam.allocate('net', B, dual).map((a) => a.address), ['10.1.2.51/24', 'fd00::3/120'], 'cursor moved to the requested IP');
});

t.test('rollback: a failure in set k releases what this call reserved, never what was held', async (t) => {
  const { fake, ipam } = setup();
  const three: RangeSet[] = [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.2.0.0/24' }], [{ subnet: 'fd00::/120' }]];
  ipam.allocate('net', A, [three[0]!]); // A already holds 10.1.2.2 before the call
  fake.fault = (op, _net, ip) => (op === 'reserve' && ip === 'fd00::2' ? new Error('EIO (Input/output error)') : undefined);
  const n = fake.journal.length;
  t.throws(() => ipam.allocate('net', A, three), { name: 'IpamError', kind: 'io', message: /reserve fd00::2: EIO/ });
  t.same(fake.journal.slice(n), ['reserve net 10.2.0.2', 'cursor net 1 10.2.0.2', 'release net 10.2.0.2', 'sync net']);
  t.same(ipam.list('net').map((r) => r.ip), ['10.1.2.2'], 'only what A held before the call');
  t.equal(fake.net('net').locked, false, 'lock released after the error');

  // A cursor write failing rolls back too.
  fake.fault = (op) => (op === 'writeCursor' ? new Error('ENOSPC') : undefined);
  t.throws(() => ipam.allocate('net', B, three), { kind: 'io', message: /ENOSPC/ });
  t.same(ipam.list('net').map((r) => r.ip), ['10.1.2.2']);

  // The rollback itself failing is reported with what stays reserved.
  fake.fault = (op, _n, ip) => (op === 'reserve' && ip.startsWith('fd00') ? new Error('EIO') : op === 'release' ? new Error('EROFS') : undefined);
  t.throws(() => ipam.allocate('net', C, three), { kind: 'io', message: /rollback failed, still reserved for container "cccc" ifname "eth0": 10\.1\.2\.3, 10\.2\.0\.3/ });
  fake.fault = undefined;
  t.same(ipam.gc('net', [A]).map((r) => r.ip), ['10.1.2.3', '10.2.0.3'], 'GC cleans the leftovers');
});

t.test('exhaustion in a later set reserves nothing in earlier ones', async (t) => {
  const { fake, ipam } = setup();
  const sets: RangeSet[] = [[{ subnet: '10.1.2.0/24' }], [{ subnet: '10.9.0.0/30' }]];
  ipam.allocate('net', A, sets);
  const n = fake.journal.length;
  t.throws(() => ipam.allocate('net', B, sets), { kind: 'exhausted', message: /ipam\.ranges\[1\]/ });
  t.same(fake.journal.slice(n), [], 'decided before any write');
  t.equal(ipam.list('net').length, 2);
});

t.test('lock: held elsewhere means busy; every store op is inside the lock', async (t) => {
  const { fake, ipam } = setup();
  fake.net('net').heldElsewhere = true;
  for (const op of [() => ipam.allocate('net', A, dual), () => ipam.release('net', A), () => ipam.gc('net', []), () => ipam.list('net'), () => ipam.free('net', dual)]) {
    t.throws(op, { name: 'IpamError', kind: 'busy', message: /try again later/ });
  }
  fake.net('net').heldElsewhere = false;
  t.equal(ipam.allocate('net', A, dual).length, 2, 'works once released');
});

t.test('bad input is invalid and never reaches the store', async (t) => {
  const { fake, ipam } = setup();
  const bad: Array<[() => unknown, RegExp]> = [
    [() => ipam.allocate('../etc', A, dual), /^network name "\.\.\/etc": must match/],
    [() => ipam.allocate('a/b', A, dual), /network name "a\/b"/],
    [() => ipam.allocate('..', A, dual), /network name "\.\."/],
    [() => ipam.allocate('', A, dual), /network name: required/],
    [() => ipam.allocate('a\0b', A, dual), /network name/],
    [() => ipam.allocate('n'.repeat(129), A, dual), /longer than 128 characters/],
    [() => ipam.allocate('net', { containerId: 'a\nb', ifname: 'eth0' }, dual), /^owner\.containerId "a\\nb": contains a control character/],
    [() => ipam.allocate('net', { containerId: 'a', ifname: '' }, dual), /^owner\.ifname: required/],
    [() => ipam.allocate('net', A, [[{ subnet: '10.1.2.0/24', rangeEnd: '10.1.2.300' }]]), /^ipam\.ranges\[0\]\[0\]\.rangeEnd "10\.1\.2\.300": not an IP address/],
    [() => ipam.allocate('net', A, dual, ['x']), /^ips\[0\] "x": not an IP address/],
    [() => ipam.release('../x', A), /network name/],
    [() => ipam.list('/abs'), /network name/],
    [() => ipam.free('net', []), /^ipam\.ranges: no range sets/],
  ];
  for (const [op, re] of bad) t.throws(op, { name: 'IpamError', kind: 'invalid', message: re }, re.source);
  t.same([...fake.networks.keys()], [], 'no store was opened');
  t.ok(new IpamError('busy', 'x').kind === 'busy');
});
