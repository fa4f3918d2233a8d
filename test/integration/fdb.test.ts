// Bridge FDB entries against the real kernel in a fresh netns, checked through `bridge -j fdb show`:
// a vxlan device (the flannel pattern: VTEP MAC -> remote IP, all-zero MAC = flood list) and a
// bridge port (entries in the master bridge's table and in the port's own).
import t from 'tap';
import { NETLINK_ROUTE, NTF_SELF, NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, NUD_STALE } from '../../src/netlink/constants.js';
import { fdbAppend, fdbDel, fdbList, type FdbEntry } from '../../src/netlink/fdb.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { bridgeJson, freshNetns, ipJson, run, SKIP_NOT_ROOT, throwsCode } from '../lib/netns.js';

const ZERO_MAC = '00:00:00:00:00:00';
const STATIC = NUD_NOARP | NUD_REACHABLE; // `bridge fdb append … static`

interface Tap {
  same: (...args: any[]) => unknown;
}

/** bridge(8)'s state words (fdb.c state_n2a). */
function stateName(state: number): string {
  if (state & NUD_PERMANENT) return 'permanent';
  if (state & NUD_NOARP) return 'static';
  if (state & NUD_STALE) return 'stale';
  return '';
}

function oracleFdb(ns: string, dev: string): string[] {
  return bridgeJson(ns, ['fdb', 'show', 'dev', dev])
    .map((e: any) => `${e.mac} dst ${e.dst ?? '-'} master ${e.master ?? '-'} ${e.state}${e.flags.includes('self') ? ' self' : ''}`)
    .sort();
}

function ourFdb(entries: FdbEntry[], names: Map<number, string>): string[] {
  return entries
    .map((e) => `${e.mac} dst ${e.dst ?? '-'} master ${e.masterIndex ? names.get(e.masterIndex) : '-'} ${stateName(e.state)}${e.flags & NTF_SELF ? ' self' : ''}`)
    .sort();
}

/** A bridge learns from traffic meanwhile: compare with oracle snapshots that agree before and after. */
function agreesWithOracle(t: Tap, ns: string, dev: string, list: () => string[], what: string): void {
  for (let attempt = 1; ; attempt++) {
    const before = oracleFdb(ns, dev);
    const ours = list();
    const after = oracleFdb(ns, dev);
    if (JSON.stringify(before) === JSON.stringify(after) || attempt === 5) {
      t.same(ours, after, what);
      return;
    }
  }
}

function open(t: { teardown(fn: () => void): void }, ns: string): NetlinkSocket {
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());
  return sock;
}

const linkNames = (ns: string) => new Map<number, string>(ipJson(ns, ['link', 'show']).map((l: any) => [l.ifindex, l.ifname]));
const ifindexOf = (ns: string, dev: string) => ipJson(ns, ['link', 'show', 'dev', dev])[0].ifindex as number;

t.test('vxlan FDB: append to the flood list, VTEP entries, del by dst, list', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'fdb');
  run(ns, 'ip', ['link', 'add', 'vx0', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning', 'local', '10.1.0.1']);
  run(ns, 'ip', ['link', 'set', 'vx0', 'up']);
  const vx0 = ifindexOf(ns, 'vx0');
  const sock = open(t, ns);

  fdbAppend(sock, { ifindex: vx0, mac: ZERO_MAC, dst: '192.168.50.2' });
  fdbAppend(sock, { ifindex: vx0, mac: ZERO_MAC, dst: '192.168.50.3' });
  fdbAppend(sock, { ifindex: vx0, mac: '0a:0b:0c:0d:0e:0f', dst: '192.168.50.4' });
  const shown = bridgeJson(ns, ['fdb', 'show', 'dev', 'vx0']);
  t.same(shown.filter((e: any) => e.mac === ZERO_MAC).map((e: any) => e.dst).sort(), ['192.168.50.2', '192.168.50.3'], 'two dsts for the all-zero MAC');
  t.match(shown.find((e: any) => e.mac === '0a:0b:0c:0d:0e:0f'), { dst: '192.168.50.4', flags: ['self'], state: 'permanent' });

  const listed = fdbList(sock, { ifindex: vx0 });
  t.same(ourFdb(listed, linkNames(ns)), oracleFdb(ns, 'vx0'), 'list agrees with bridge fdb show dev vx0');
  t.match(listed.find((e) => e.dst === '192.168.50.4'), { ifindex: vx0, mac: '0a:0b:0c:0d:0e:0f', state: NUD_NOARP | NUD_PERMANENT, flags: NTF_SELF });
  t.equal(fdbList(sock).filter((e) => e.ifindex === vx0).length, listed.length, 'the unfiltered list has them too');

  fdbAppend(sock, { ifindex: vx0, mac: ZERO_MAC, dst: '192.168.50.3' });
  t.equal(bridgeJson(ns, ['fdb', 'show', 'dev', 'vx0']).filter((e: any) => e.mac === ZERO_MAC).length, 2, 'appending an existing dst is a no-op');

  fdbDel(sock, { ifindex: vx0, mac: ZERO_MAC, dst: '192.168.50.2' });
  t.same(bridgeJson(ns, ['fdb', 'show', 'dev', 'vx0']).filter((e: any) => e.mac === ZERO_MAC).map((e: any) => e.dst), ['192.168.50.3'], 'del with dst removes only that remote');
  fdbDel(sock, { ifindex: vx0, mac: '0a:0b:0c:0d:0e:0f' });
  t.same(ourFdb(fdbList(sock, { ifindex: vx0 }), linkNames(ns)), oracleFdb(ns, 'vx0'), 'list agrees after deletes');
  t.equal(fdbList(sock, { ifindex: vx0 }).length, 1);

  throwsCode(t, () => fdbDel(sock, { ifindex: vx0, mac: '0a:0b:0c:0d:0e:0f' }), 'ENOENT', new RegExp(`fdb del fdb 0a:0b:0c:0d:0e:0f dev #${vx0} self: ENOENT`));
  throwsCode(t, () => fdbAppend(sock, { ifindex: 9999, mac: ZERO_MAC, dst: '192.168.50.2' }), 'ENODEV', /fdb append fdb 00:00:00:00:00:00 dev #9999 dst 192\.168\.50\.2/);
  t.throws(() => fdbAppend(sock, { ifindex: vx0, mac: ZERO_MAC, dst: '192.168.50.300' }), /fdb dst: invalid IP address "192.168.50.300"/);
});

t.test('bridge port FDB: master (static) and self entries, del, list', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'fdbbr');
  run(ns, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
  run(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  run(ns, 'ip', ['link', 'set', 'veth0', 'master', 'br0']);
  for (const dev of ['br0', 'veth0', 'veth1']) run(ns, 'ip', ['link', 'set', dev, 'up']);
  const [br0, veth0] = [ifindexOf(ns, 'br0'), ifindexOf(ns, 'veth0')];
  const sock = open(t, ns);
  const names = linkNames(ns);

  fdbAppend(sock, { ifindex: veth0, mac: '02:00:00:00:00:aa', master: true, state: STATIC });
  fdbAppend(sock, { ifindex: veth0, mac: '02:00:00:00:00:bb' });
  const shown = bridgeJson(ns, ['fdb', 'show', 'dev', 'veth0']);
  t.match(shown.find((e: any) => e.mac === '02:00:00:00:00:aa'), { master: 'br0', state: 'static' }, 'in the bridge table');
  t.match(shown.find((e: any) => e.mac === '02:00:00:00:00:bb'), { flags: ['self'], state: 'permanent' }, 'in the port own table');

  const mine = fdbList(sock, { ifindex: veth0 });
  // The bridge reports a static entry as NOARP alone (no REACHABLE bit), as bridge(8) shows it.
  t.match(mine.find((e) => e.mac === '02:00:00:00:00:aa'), { ifindex: veth0, masterIndex: br0, state: NUD_NOARP });
  agreesWithOracle(t, ns, 'veth0', () => ourFdb(fdbList(sock, { ifindex: veth0 }), names), 'list agrees with bridge fdb show dev veth0');

  fdbDel(sock, { ifindex: veth0, mac: '02:00:00:00:00:aa', master: true });
  fdbDel(sock, { ifindex: veth0, mac: '02:00:00:00:00:bb' });
  const after = bridgeJson(ns, ['fdb', 'show', 'dev', 'veth0']).map((e: any) => e.mac);
  t.notOk(after.includes('02:00:00:00:00:aa') || after.includes('02:00:00:00:00:bb'), 'both deleted');
  agreesWithOracle(t, ns, 'veth0', () => ourFdb(fdbList(sock, { ifindex: veth0 }), names), 'list agrees after deletes');
  throwsCode(t, () => fdbDel(sock, { ifindex: veth0, mac: '02:00:00:00:00:aa', master: true }), 'ENOENT', /fdb del fdb 02:00:00:00:00:aa dev #\d+ master/);
});
