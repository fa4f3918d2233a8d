// Neighbour codec: byte-exact against what `ip neigh` sends (test/fixtures/netlink/*.hex, made by
// capture.sh), decoding of a real `ip neigh show` dump, round trips, validation, and the socket-level
// functions over a scripted transport (no root needed).
import t from 'tap';
import { decodeMsgs, type NlMsg } from '../../src/netlink/codec.js';
import {
  AF_BRIDGE, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NTF_SELF, NUD_NOARP, NUD_PERMANENT,
  NUD_REACHABLE, NUD_STALE, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH,
} from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { decodeNeigh, encodeNeighMsg, neighDel, neighList, neighReplace, type NeighSpec } from '../../src/netlink/neigh.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, doneMsg, errorMsg, FakeTransport, multiMsg } from '../lib/fake-transport.js';

const ENOENT = 2;


const BR0 = 2; // ifindex of br0 in the capture netns

t.test('encodeNeighMsg sends exactly what ip neigh sends', async (t) => {
  const cases: Array<[string, NeighSpec]> = [
    ['neigh-replace', { ifindex: BR0, ip: '10.1.0.9', mac: '02:00:00:00:00:09' }],
    ['neigh6-replace', { ifindex: BR0, ip: '2001:db8:1::9', mac: '02:00:00:00:00:09' }],
    ['neigh-replace-reachable', { ifindex: BR0, ip: '10.1.0.10', mac: '02:00:00:00:00:0A', state: NUD_REACHABLE }],
    ['neigh-del', { ifindex: BR0, ip: '10.1.0.9' }],
  ];
  for (const [name, spec] of cases) {
    t.equal(encodeNeighMsg(spec).toString('hex'), golden(name).toString('hex'), `${name} ${JSON.stringify(spec)}`);
  }
});

t.test('decodeNeigh reads a real ip neigh show dump', async (t) => {
  const neighs = decodeMsgs(golden('neigh-dump'))
    .filter((m) => m.type === RTM_NEWNEIGH)
    .map((m) => decodeNeigh(m.payload));
  t.equal(neighs.length, 6);
  t.same(neighs[0], { family: 4, ifindex: BR0, ip: '10.1.0.10', mac: '02:00:00:00:00:0a', state: NUD_REACHABLE, flags: 0 });
  t.same(neighs[1], { family: 4, ifindex: BR0, ip: '10.1.0.9', mac: '02:00:00:00:00:09', state: NUD_PERMANENT, flags: 0 });
  t.same(neighs[2], { family: 4, ifindex: BR0, ip: '224.0.0.22', mac: '01:00:5e:00:00:16', state: NUD_NOARP, flags: 0 });
  t.same(neighs[4], { family: 6, ifindex: BR0, ip: '2001:db8:1::9', mac: '02:00:00:00:00:09', state: NUD_PERMANENT, flags: 0 });
});

t.test('round trip, and what decodeNeigh skips', async (t) => {
  const spec = { ifindex: 7, ip: 'fe80::1', mac: 'aa:bb:cc:dd:ee:ff', state: NUD_STALE, flags: NTF_SELF };
  t.same(decodeNeigh(encodeNeighMsg(spec)), { family: 6, ...spec });
  t.same(decodeNeigh(encodeNeighMsg({ ifindex: 3, ip: '10.0.0.1' })), { family: 4, ifindex: 3, ip: '10.0.0.1', state: NUD_PERMANENT, flags: 0 }, 'no mac, no lladdr');
  const bridge = encodeNeighMsg({ ifindex: 3, ip: '10.0.0.1' });
  bridge.writeUInt8(AF_BRIDGE, 0);
  t.equal(decodeNeigh(bridge), undefined, 'an FDB entry is not a neighbour');
  t.throws(() => decodeNeigh(Buffer.alloc(8)), /too short/);
});

t.test('bad input is refused before anything is sent, naming the field and value', async (t) => {
  const bad: Array<[NeighSpec, RegExp]> = [
    [{ ifindex: 2, ip: '10.1.0' }, /neigh ip: invalid IP address "10.1.0"/],
    [{ ifindex: 2, ip: '10.1.0.9', mac: '02:00:00:00:00' }, /neigh mac: invalid MAC address "02:00:00:00:00"/],
    [{ ifindex: 0, ip: '10.1.0.9' }, /neigh ifindex 0: must be an integer/],
    [{ ifindex: undefined as unknown as number, ip: '10.1.0.9' }, /neigh ifindex: required/],
    [{ ifindex: 2, ip: '10.1.0.9', state: 0x10000 }, /neigh state 65536/],
    [{ ifindex: 2, ip: '10.1.0.9', flags: -1 }, /neigh flags -1/],
  ];
  for (const [spec, message] of bad) t.throws(() => encodeNeighMsg(spec), message, JSON.stringify(spec));
  const fake = new FakeTransport();
  t.throws(() => neighReplace(new NetlinkSocket(fake), { ifindex: 2, ip: 'x' }), /neigh ip/);
  t.equal(fake.sent.length, 0, 'nothing reached the socket');
});

t.test('replace and del use the iproute2 message types and flags; errors name the entry', async (t) => {
  const fake = new FakeTransport({ responder: (req) => [datagram(ackMsg(req))] });
  const sock = new NetlinkSocket(fake);
  neighReplace(sock, { ifindex: BR0, ip: '10.1.0.9', mac: '02:00:00:00:00:09' });
  neighDel(sock, { ifindex: BR0, ip: '10.1.0.9' });
  const [replace, del] = fake.requests as [NlMsg, NlMsg];
  t.equal(replace.type, RTM_NEWNEIGH);
  t.equal(replace.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  t.equal(replace.payload.toString('hex'), golden('neigh-replace').toString('hex'));
  t.equal(del.type, RTM_DELNEIGH);
  t.equal(del.flags, NLM_F_REQUEST | NLM_F_ACK);

  const missing = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, ENOENT))] });
  const err = t.throws(() => neighDel(new NetlinkSocket(missing), { ifindex: 4, ip: '10.1.0.99' }));
  t.type(err, NetlinkError);
  t.match(err, { code: 'ENOENT', operation: 'neigh del', object: 'neigh 10.1.0.99 dev #4' });
});

t.test('neighList dumps IPv4 then IPv6 (never AF_UNSPEC, which walks the FDB) and filters', async (t) => {
  const dump = decodeMsgs(golden('neigh-dump')).filter((m) => m.type === RTM_NEWNEIGH);
  const fake = new FakeTransport({
    responder: (req) => {
      const af = req.payload.readUInt8(0);
      const mine = dump.filter((m) => m.payload.readUInt8(0) === af);
      return [datagram(...mine.map((m) => multiMsg(req, m.type, m.payload)), doneMsg(req))];
    },
  });
  const sock = new NetlinkSocket(fake);
  t.equal(neighList(sock).length, 6);
  t.same(fake.requests.map((r) => [r.type, r.flags, r.payload.readUInt8(0)]), [
    [RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 2],
    [RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 10],
  ]);
  t.same(neighList(sock, { family: 6 }).map((n) => n.ip), ['ff02::16', '2001:db8:1::9', 'ff02::16']);
  t.same(neighList(sock, { ifindex: BR0, family: 4 }).map((n) => n.ip), ['10.1.0.10', '10.1.0.9', '224.0.0.22']);
  t.same(neighList(sock, { ifindex: 3 }).map((n) => n.ip), ['ff02::16']);
});
