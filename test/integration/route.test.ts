// Routes against the real kernel in a fresh netns, checked through `ip -j -d route show table all`.
import t from 'tap';
import { NETLINK_ROUTE, RTPROT_BOOT, RTPROT_STATIC, RT_SCOPE_UNIVERSE } from '../../src/netlink/constants.js';
import { routeAdd, routeDel, routeList, routeReplace, type Route } from '../../src/netlink/route.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT, throwsCode } from '../lib/netns.js';

const PROTOCOLS: Record<number, string> = { 2: 'kernel', 3: 'boot', 4: 'static' };
const SCOPES: Record<number, string> = { 0: 'global', 253: 'link', 254: 'host' };
const TYPES: Record<number, string> = { 1: 'unicast', 2: 'local', 3: 'broadcast', 5: 'multicast' };
const TABLES: Record<string, number> = { main: 254, local: 255 };

/** One line per route, the same fields from either side. */
function routeKey(r: { family: 4 | 6; dst: string; gateway?: string; dev: string; table: number; protocol: string; scope: string; type: string; metric?: number; onlink: boolean }): string {
  return `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev} table ${r.table} proto ${r.protocol} scope ${r.scope} type ${r.type} metric ${r.metric ?? '-'}${r.onlink ? ' onlink' : ''}`;
}

function oracleRoutes(ns: string, family: 4 | 6, table = 'all'): string[] {
  const hostLen = family === 4 ? 32 : 128;
  return ipJson(ns, [`-${family}`, 'route', 'show', 'table', table]).map((r: any) => routeKey({
    family,
    dst: r.dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${hostLen}`,
    gateway: r.gateway,
    dev: r.dev,
    table: TABLES[r.table ?? 'main'] ?? Number(r.table),
    protocol: r.protocol,
    scope: r.scope,
    type: r.type,
    metric: r.metric,
    onlink: (r.flags ?? []).includes('onlink'),
  })).sort();
}

function ourRoutes(routes: Route[], names: Map<number, string>): string[] {
  return routes.map((r) => routeKey({
    family: r.family,
    dst: r.dst,
    gateway: r.gateway,
    dev: names.get(r.ifindex ?? 0) ?? '?',
    table: r.table,
    protocol: PROTOCOLS[r.protocol] ?? String(r.protocol),
    scope: SCOPES[r.scope] ?? String(r.scope),
    type: TYPES[r.type] ?? String(r.type),
    metric: r.priority,
    onlink: r.onlink,
  })).sort();
}

/** A veth pair with addresses (carrier up, so nothing is linkdown) and a bridge as a second device. */
function setup(t: { teardown(fn: () => void): void }): { ns: string; sock: NetlinkSocket; veth0: number; br0: number; names: Map<number, string> } {
  const ns = freshNetns(t, 'route');
  run(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  run(ns, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
  for (const dev of ['veth0', 'veth1', 'br0']) run(ns, 'ip', ['link', 'set', dev, 'up']);
  run(ns, 'ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'veth0']);
  run(ns, 'ip', ['addr', 'add', '2001:db8:1::1/64', 'dev', 'veth0', 'nodad']);
  const names = new Map<number, string>(ipJson(ns, ['link', 'show']).map((l: any) => [l.ifindex, l.ifname]));
  const index = (name: string) => ipJson(ns, ['link', 'show', 'dev', name])[0].ifindex as number;
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());
  return { ns, sock, veth0: index('veth0'), br0: index('br0'), names };
}

t.test('IPv4 routes: add, replace, del, list, tables, protocol, scope, onlink', { skip: SKIP_NOT_ROOT }, async (t) => {
  const { ns, sock, veth0, br0, names } = setup(t);
  routeAdd(sock, { dst: '10.244.2.0/24', gateway: '10.1.0.2', ifindex: veth0 });
  routeAdd(sock, { dst: '10.244.3.0/24', ifindex: br0 });
  routeAdd(sock, { gateway: '10.1.0.254' });
  routeAdd(sock, { dst: '10.244.4.0/24', gateway: '192.168.77.1', ifindex: veth0, onlink: true, table: 1000, protocol: RTPROT_STATIC, priority: 5 });
  routeAdd(sock, { dst: '10.244.5.0/24', ifindex: veth0, table: 100, prefsrc: '10.1.0.1', scope: RT_SCOPE_UNIVERSE });

  const all = ipJson(ns, ['-4', 'route', 'show', 'table', 'all']);
  const find = (dst: string, table = 'main') => all.find((r: any) => r.dst === dst && (r.table ?? 'main') === table);
  t.match(find('10.244.2.0/24'), { gateway: '10.1.0.2', dev: 'veth0', protocol: 'boot', scope: 'global', type: 'unicast' });
  t.match(find('10.244.3.0/24'), { dev: 'br0', scope: 'link' }, 'no gateway: scope link, like ip route');
  t.match(find('default'), { gateway: '10.1.0.254', dev: 'veth0' }, 'the kernel resolved the device');
  t.match(find('10.244.4.0/24', '1000'), { gateway: '192.168.77.1', protocol: 'static', metric: 5, flags: ['onlink'] });
  t.match(find('10.244.5.0/24', '100'), { prefsrc: '10.1.0.1', scope: 'global' });

  t.same(ourRoutes(routeList(sock, { family: 4 }), names), oracleRoutes(ns, 4, 'main'), 'list (main) agrees with ip route');
  t.same(ourRoutes(routeList(sock, { family: 4, table: 0 }), names), oracleRoutes(ns, 4), 'list (all tables) agrees with ip route show table all');
  t.same(routeList(sock, { table: 1000 }).map((r) => r.dst), ['10.244.4.0/24'], 'table > 255');
  t.same(routeList(sock, { table: 100 }).map((r) => r.dst), ['10.244.5.0/24'], 'table < 256');
  t.same(routeList(sock, { family: 4, protocol: RTPROT_BOOT, ifindex: br0 }).map((r) => r.dst), ['10.244.3.0/24'], 'protocol and ifindex filters');
  t.equal(routeList(sock, { table: 1000 })[0]?.onlink, true);

  routeReplace(sock, { dst: '10.244.2.0/24', gateway: '10.1.0.3', ifindex: veth0 });
  routeReplace(sock, { dst: '10.244.2.0/24', gateway: '10.1.0.3', ifindex: veth0 });
  const replaced = ipJson(ns, ['-4', 'route', 'show', 'exact', '10.244.2.0/24']);
  t.same(replaced.map((r: any) => r.gateway), ['10.1.0.3'], 'replace swapped the gateway, and is idempotent');
  routeReplace(sock, { dst: '10.244.6.0/24', ifindex: veth0 });
  t.equal(ipJson(ns, ['-4', 'route', 'show', 'exact', '10.244.6.0/24']).length, 1, 'replace creates');

  routeDel(sock, { dst: '10.244.2.0/24' });
  routeDel(sock, { dst: '10.244.4.0/24', table: 1000 });
  routeDel(sock, { dst: '10.244.5.0/24', table: 100, ifindex: veth0 });
  routeDel(sock, { gateway: '10.1.0.254' });
  const left = oracleRoutes(ns, 4).join('\n');
  for (const gone of ['10.244.2.0/24', '10.244.4.0/24', '10.244.5.0/24', '0.0.0.0/0']) t.notMatch(left, gone, `${gone} deleted`);
  t.same(ourRoutes(routeList(sock, { family: 4, table: 0 }), names), oracleRoutes(ns, 4), 'list agrees after deletes');
});

t.test('IPv6 routes: add, replace, del, list', { skip: SKIP_NOT_ROOT }, async (t) => {
  const { ns, sock, veth0, names } = setup(t);
  routeAdd(sock, { dst: '2001:db8:2::/64', gateway: '2001:db8:1::2', ifindex: veth0 });
  routeAdd(sock, { dst: '2001:db8:3::/64', ifindex: veth0, table: 1000, protocol: RTPROT_STATIC });
  routeAdd(sock, { family: 6, gateway: 'fe80::1', ifindex: veth0 });
  const all = ipJson(ns, ['-6', 'route', 'show', 'table', 'all']);
  t.match(all.find((r: any) => r.dst === '2001:db8:2::/64'), { gateway: '2001:db8:1::2', dev: 'veth0', protocol: 'boot', scope: 'global' });
  t.match(all.find((r: any) => r.dst === '2001:db8:3::/64'), { table: '1000', protocol: 'static', scope: 'global' }, 'IPv6 is always scope universe');
  t.match(all.find((r: any) => r.dst === 'default'), { gateway: 'fe80::1', dev: 'veth0' });
  const mine = routeList(sock, { family: 6, table: 1000 });
  t.match(mine, [{ family: 6, dst: '2001:db8:3::/64', ifindex: veth0, scope: RT_SCOPE_UNIVERSE, protocol: RTPROT_STATIC }]);
  t.same(ourRoutes(routeList(sock, { family: 6, table: 0 }), names), oracleRoutes(ns, 6), 'list agrees with ip -6 route show table all');

  routeReplace(sock, { dst: '2001:db8:2::/64', gateway: '2001:db8:1::3', ifindex: veth0 });
  t.same(ipJson(ns, ['-6', 'route', 'show', 'exact', '2001:db8:2::/64']).map((r: any) => r.gateway), ['2001:db8:1::3']);
  routeDel(sock, { dst: '2001:db8:2::/64', ifindex: veth0 });
  routeDel(sock, { dst: '2001:db8:3::/64', table: 1000 });
  t.equal(ipJson(ns, ['-6', 'route', 'show', 'table', 'all']).filter((r: any) => r.dst?.startsWith('2001:db8:2') || r.dst?.startsWith('2001:db8:3')).length, 0, 'deleted');
  t.same(routeList(sock, { family: 6 }).filter((r) => r.dst === '::/0').map((r) => r.gateway), ['fe80::1']);
  t.same(ourRoutes(routeList(sock, { table: 0, family: 6 }), names), oracleRoutes(ns, 6), 'list agrees after deletes');
});

t.test('kernel errors are typed and name the route', { skip: SKIP_NOT_ROOT }, async (t) => {
  const { sock, veth0 } = setup(t);
  routeAdd(sock, { dst: '10.244.2.0/24', gateway: '10.1.0.2', ifindex: veth0 });
  throwsCode(t, () => routeAdd(sock, { dst: '10.244.2.0/24', gateway: '10.1.0.2', ifindex: veth0 }), 'EEXIST',
    new RegExp(`route add route 10\\.244\\.2\\.0/24 via 10\\.1\\.0\\.2 dev #${veth0}: EEXIST`));
  throwsCode(t, () => routeAdd(sock, { dst: '10.244.7.0/24', ifindex: 9999 }), 'ENODEV', /route add route 10\.244\.7\.0\/24 dev #9999/);
  throwsCode(t, () => routeAdd(sock, { dst: '10.244.8.0/24', gateway: '192.168.88.1', ifindex: veth0 }), 'ENETUNREACH', /gateway not reachable/);
  throwsCode(t, () => routeAdd(sock, { dst: '10.244.8.0/24', gateway: '192.168.88.1' }), 'ENETUNREACH');
  routeAdd(sock, { dst: '10.244.8.0/24', gateway: '192.168.88.1', ifindex: veth0, onlink: true });
  t.pass('the same gateway is accepted with onlink');
  throwsCode(t, () => routeDel(sock, { dst: '10.244.99.0/24' }), 'ESRCH', /route del route 10\.244\.99\.0\/24/);
  throwsCode(t, () => routeDel(sock, { dst: '2001:db8:99::/64' }), 'ESRCH', /route del route 2001:db8:99::\/64/);
  t.throws(() => routeAdd(sock, { dst: '10.244.9.1/24', ifindex: veth0 }), /host bits set/, 'validated before sending');
});
