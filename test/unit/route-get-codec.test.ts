// Route lookups (RTM_GETROUTE for one packet): byte-exact against iproute2's `ip route get`
// (test/fixtures/netlink/route-get*.hex, made by capture.sh), input validation, and the answers
// (a route, or the errno of a packet the kernel would drop) over a scripted transport.
import t from 'tap';
import { NLM_F_ACK, NLM_F_REQUEST, RTM_GETROUTE, RTM_NEWROUTE, RTN_UNICAST } from '../../src/netlink/constants.js';
import { encodeRouteMsg, encodeRouteQuery, routeGet } from '../../src/netlink/route.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, errorMsg, FakeTransport, replyMsg } from '../lib/fake-transport.js';

const BR0 = 2; // ifindex of br0 in the capture

t.test('encodeRouteQuery sends exactly what ip route get sends', async (t) => {
  t.equal(encodeRouteQuery({ dst: '10.244.2.5' }).toString('hex'), golden('route-get').toString('hex'), 'ip route get 10.244.2.5');
  t.equal(encodeRouteQuery({ dst: '10.244.2.5', src: '10.1.0.9', iif: BR0, mark: 7, ipProto: 6, sport: 1234, dport: 80 }).toString('hex'), golden('route-get-full').toString('hex'), 'from, iif, mark, ipproto, sport, dport');
  t.equal(encodeRouteQuery({ dst: '10.244.2.5', fibMatch: true }).toString('hex'), golden('route-get-fibmatch').toString('hex'), 'fibmatch');
  t.equal(encodeRouteQuery({ dst: '2001:db8:1::5' }).toString('hex'), golden('route6-get').toString('hex'), 'IPv6: no RTM_F_LOOKUP_TABLE, as iproute2');
});

t.test('bad queries throw before anything is sent, naming the field', async (t) => {
  t.throws(() => encodeRouteQuery({ dst: '10.244.2.300' }), /dst/);
  t.throws(() => encodeRouteQuery({ dst: '10.244.2.0/24' }), /dst/, 'a lookup is for one address, not a prefix');
  t.throws(() => encodeRouteQuery({ dst: '10.0.0.1', src: 'fd00::1' }), /IPv6 but dst/);
  t.throws(() => encodeRouteQuery({ dst: '10.0.0.1', iif: 2 }), /iif needs src/);
  t.throws(() => encodeRouteQuery({ dst: '10.0.0.1', dport: 70000 }), /dport/);
  t.throws(() => encodeRouteQuery({ dst: '10.0.0.1', ipProto: 256 }), /ipProto/);
  t.throws(() => encodeRouteQuery({ dst: '10.0.0.1', src: '10.0.0.2', iif: 0 }), /iif/);
});

t.test('routeGet: the route of the reply, and its iif; a dropped packet is an answer, not an exception', async (t) => {
  // The kernel's reply to `ip route get 10.244.2.5`: a /32 unicast route via 10.1.0.2 dev br0.
  const reply = encodeRouteMsg({ dst: '10.244.2.5/32', gateway: '10.1.0.2', ifindex: BR0, prefsrc: '10.1.0.1' }, false);
  const ft = new FakeTransport({ responder: (req) => [datagram(replyMsg(req, RTM_NEWROUTE, reply), ackMsg(req))] });
  const sock = new NetlinkSocket(ft);
  const got = routeGet(sock, { dst: '10.244.2.5' });
  t.ok(got.ok);
  if (got.ok) t.match(got.route, { dst: '10.244.2.5/32', gateway: '10.1.0.2', ifindex: BR0, prefsrc: '10.1.0.1', type: RTN_UNICAST });
  const sent = ft.requests[0]!;
  t.equal(sent.type, RTM_GETROUTE);
  t.equal(sent.flags, NLM_F_REQUEST | NLM_F_ACK, 'one lookup, not a dump');

  ft.respond((req) => [datagram(errorMsg(req, 113))]);
  const dropped = routeGet(sock, { dst: '10.9.9.9' });
  t.same(dropped.ok, false);
  if (!dropped.ok) {
    t.equal(dropped.errno, 113, 'EHOSTUNREACH');
    t.match(dropped.message, /route get 10\.9\.9\.9/);
  }
  ft.respond((req) => [datagram(errorMsg(req, 105))]);
  t.throws(() => routeGet(sock, { dst: '10.9.9.9' }), NetlinkError, 'a netlink failure (ENOBUFS) still throws');
});
