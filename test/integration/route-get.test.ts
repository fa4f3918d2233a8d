// Route lookups against the real kernel in a fresh netns, checked against `ip -j route get`: a
// gateway route, a local address, fibmatch, a forwarding lookup from an input interface (forwarding
// off → an errno, on → the route; strict rp_filter → EINVAL), unreachable/blackhole routes, IPv6.
import t from 'tap';
import { NETLINK_ROUTE, RTN_LOCAL, RTN_UNICAST } from '../../src/netlink/constants.js';
import { routeGet } from '../../src/netlink/route.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { freshNetns, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';

t.test('routeGet agrees with ip route get', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'rtget');
  run(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  for (const dev of ['lo', 'veth0', 'veth1']) run(ns, 'ip', ['link', 'set', dev, 'up']);
  run(ns, 'ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'veth0']);
  run(ns, 'ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'veth1']);
  run(ns, 'ip', ['addr', 'add', '2001:db8:1::1/64', 'dev', 'veth0', 'nodad']);
  run(ns, 'ip', ['route', 'add', '10.244.2.0/24', 'via', '10.1.0.2', 'dev', 'veth0', 'onlink']);
  run(ns, 'ip', ['route', 'add', 'blackhole', '10.244.9.0/24']);
  run(ns, 'ip', ['route', 'add', 'unreachable', '10.244.8.0/24']);
  const idx = (name: string) => ipJson(ns, ['link', 'show', 'dev', name])[0].ifindex as number;
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());

  const oracle = ipJson(ns, ['route', 'get', '10.244.2.5'])[0];
  const via = routeGet(sock, { dst: '10.244.2.5' });
  t.ok(via.ok, 'a gateway route');
  if (via.ok) {
    t.match(via.route, { dst: '10.244.2.5/32', gateway: oracle.gateway, ifindex: idx(oracle.dev), prefsrc: oracle.prefsrc, type: RTN_UNICAST, table: 254 });
  }
  const fib = routeGet(sock, { dst: '10.244.2.5', fibMatch: true });
  t.ok(fib.ok && fib.route.dst === '10.244.2.0/24' && fib.route.onlink, 'fibmatch: the FIB entry with its prefix and onlink');
  const local = routeGet(sock, { dst: '10.2.0.1' });
  t.ok(local.ok && local.route.type === RTN_LOCAL && local.route.ifindex === idx('lo'), 'a local address: RTN_LOCAL, delivered through lo');

  const unreachable = routeGet(sock, { dst: '10.244.8.1' });
  t.same(unreachable.ok, false, 'an unreachable route is an answer');
  if (!unreachable.ok) t.equal(unreachable.errno, 113, 'EHOSTUNREACH, as ip route get says "No route to host"');
  const blackhole = routeGet(sock, { dst: '10.244.9.1' });
  t.same(blackhole.ok, false, 'a blackhole route is an answer');
  if (!blackhole.ok) t.equal(blackhole.errno, 22, 'EINVAL, as ip route get says for a blackhole');

  // A packet arriving on veth1 from 10.2.0.7 for 10.244.2.5: forwarded only with ip_forward on.
  run(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
  const noForward = routeGet(sock, { dst: '10.244.2.5', src: '10.2.0.7', iif: idx('veth1') });
  t.same(noForward.ok, false, 'forwarding off: the input lookup fails');
  run(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const forwarded = routeGet(sock, { dst: '10.244.2.5', src: '10.2.0.7', iif: idx('veth1'), ipProto: 6, dport: 80, sport: 40000 });
  t.ok(forwarded.ok, 'forwarding on: the route');
  if (forwarded.ok) {
    t.equal(forwarded.route.ifindex, idx('veth0'));
    t.equal(forwarded.iif, idx('veth1'), 'the reply names the input interface');
  }
  // Strict reverse-path filter: a source that would be routed back out another device is dropped.
  run(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=1']);
  run(ns, 'sysctl', ['-qw', 'net.ipv4.conf.veth1.rp_filter=1']);
  const spoofed = routeGet(sock, { dst: '10.244.2.5', src: '10.1.0.50', iif: idx('veth1') });
  t.same(spoofed.ok, false, 'rp_filter strict: refused');
  if (!spoofed.ok) t.equal(spoofed.errno, 22, 'EINVAL (a martian source), as ip route get says');
  t.equal(ipJson(ns, ['route', 'get', '10.244.2.5', 'from', '10.2.0.9', 'iif', 'veth1'])[0].dev, 'veth0', 'the oracle forwards a proper source');

  const v6 = routeGet(sock, { dst: '2001:db8:1::5' });
  t.ok(v6.ok && v6.route.family === 6 && v6.route.ifindex === idx('veth0'), 'IPv6 on-link');
});
