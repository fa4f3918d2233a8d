// Neighbours against the real kernel in a fresh netns, checked through `ip -j neigh show nud all`.
import t from 'tap';
import { NETLINK_ROUTE, NUD_PERMANENT, NUD_STALE } from '../../src/netlink/constants.js';
import { neighDel, neighList, neighReplace, type Neigh } from '../../src/netlink/neigh.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT, throwsCode } from '../lib/netns.js';

interface Tap {
  same: (...args: any[]) => unknown;
}

const NUD_NAMES = ['INCOMPLETE', 'REACHABLE', 'STALE', 'DELAY', 'PROBE', 'FAILED', 'NOARP', 'PERMANENT'];

const stateNames = (state: number): string[] => NUD_NAMES.filter((_, bit) => state & (1 << bit));

function oracleNeighs(ns: string, dev: string): string[] {
  return ipJson(ns, ['neigh', 'show', 'nud', 'all', 'dev', dev])
    .map((n: any) => `${n.dst} ${n.lladdr ?? '-'} ${n.state.join(',')}`)
    .sort();
}

const ourNeighs = (neighs: Neigh[]): string[] => neighs.map((n) => `${n.ip} ${n.mac ?? '-'} ${stateNames(n.state).join(',')}`).sort();

/**
 * The kernel adds entries of its own (multicast NOARP ones when it sends MLD reports), so compare
 * our list with oracle snapshots taken just before and after it, retrying until those two agree.
 */
function agreesWithOracle(t: Tap, ns: string, dev: string, list: () => Neigh[], what: string): void {
  for (let attempt = 1; ; attempt++) {
    const before = oracleNeighs(ns, dev);
    const ours = ourNeighs(list());
    const after = oracleNeighs(ns, dev);
    if (JSON.stringify(before) === JSON.stringify(after) || attempt === 5) {
      t.same(ours, after, what);
      return;
    }
  }
}

t.test('neighbour replace, del, list: IPv4 and IPv6, permanent with lladdr', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'neigh');
  run(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  for (const dev of ['veth0', 'veth1']) run(ns, 'ip', ['link', 'set', dev, 'up']);
  const ifindex = ipJson(ns, ['link', 'show', 'dev', 'veth0'])[0].ifindex as number;
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());

  neighReplace(sock, { ifindex, ip: '10.1.0.9', mac: '02:00:00:00:00:09' });
  neighReplace(sock, { ifindex, ip: '2001:db8:1::9', mac: '02:00:00:00:00:19' });
  neighReplace(sock, { ifindex, ip: '10.1.0.10', mac: '02:00:00:00:00:0a', state: NUD_STALE });
  const find = (ip: string) => ipJson(ns, ['neigh', 'show', 'nud', 'all', 'dev', 'veth0']).find((n: any) => n.dst === ip);
  t.match(find('10.1.0.9'), { lladdr: '02:00:00:00:00:09', state: ['PERMANENT'] });
  t.match(find('2001:db8:1::9'), { lladdr: '02:00:00:00:00:19', state: ['PERMANENT'] });
  t.match(find('10.1.0.10'), { lladdr: '02:00:00:00:00:0a', state: ['STALE'] });

  agreesWithOracle(t, ns, 'veth0', () => neighList(sock, { ifindex }), 'list agrees with ip neigh show nud all');
  t.same(neighList(sock, { ifindex, family: 6 }).filter((n) => n.state === NUD_PERMANENT).map((n) => n.ip), ['2001:db8:1::9'], 'family filter');
  t.match(neighList(sock).filter((n) => n.ip === '10.1.0.9'), [{ family: 4, ifindex, mac: '02:00:00:00:00:09', state: NUD_PERMANENT, flags: 0 }]);

  neighReplace(sock, { ifindex, ip: '10.1.0.9', mac: '02:00:00:00:00:99' });
  neighReplace(sock, { ifindex, ip: '10.1.0.9', mac: '02:00:00:00:00:99' });
  t.match(find('10.1.0.9'), { lladdr: '02:00:00:00:00:99' }, 'replace updates the lladdr, and is idempotent');

  neighDel(sock, { ifindex, ip: '10.1.0.9' });
  neighDel(sock, { ifindex, ip: '2001:db8:1::9' });
  t.equal(find('10.1.0.9'), undefined, 'IPv4 entry deleted');
  t.equal(find('2001:db8:1::9'), undefined, 'IPv6 entry deleted');
  agreesWithOracle(t, ns, 'veth0', () => neighList(sock, { ifindex }), 'list agrees after deletes');
});

t.test('neighbour errors are typed and name the entry', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'neighe');
  run(ns, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
  const ifindex = ipJson(ns, ['link', 'show', 'dev', 'br0'])[0].ifindex as number;
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());
  throwsCode(t, () => neighDel(sock, { ifindex, ip: '10.1.0.99' }), 'ENOENT', new RegExp(`neigh del neigh 10\\.1\\.0\\.99 dev #${ifindex}: ENOENT`));
  throwsCode(t, () => neighReplace(sock, { ifindex: 9999, ip: '10.1.0.9', mac: '02:00:00:00:00:09' }), 'ENODEV', /neigh replace neigh 10\.1\.0\.9 lladdr 02:00:00:00:00:09 dev #9999/);
  t.throws(() => neighReplace(sock, { ifindex, ip: '10.1.0.9', mac: '02:00:00:00:09' }), /neigh mac: invalid MAC address "02:00:00:00:09"/);
});
