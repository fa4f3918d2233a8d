// FDB codec: byte-exact against what `bridge fdb` sends (test/fixtures/netlink/*.hex, made by
// capture.sh), decoding of a real `bridge fdb show dev vx0` dump, round trips, validation, and the
// socket-level functions over a scripted transport (no root needed).
import t from 'tap';
import { decodeMsgs, encodePayload, nla, type NlMsg } from '../../src/netlink/codec.js';
import {
  AF_BRIDGE, AF_INET, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_PORT, NDA_VNI, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
  NLM_F_DUMP, NLM_F_REQUEST, NTF_MASTER, NTF_SELF, NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, RTM_DELNEIGH,
  RTM_GETNEIGH, RTM_NEWNEIGH,
} from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { decodeFdb, encodeFdbMsg, fdbAppend, fdbDel, fdbList, type FdbSpec } from '../../src/netlink/fdb.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, doneMsg, errorMsg, FakeTransport, multiMsg } from '../lib/fake-transport.js';

const ENOENT = 2;


// ifindexes in the capture netns.
const VX0 = 3;
const VETH0 = 5;
const PERMANENT = NUD_NOARP | NUD_PERMANENT;
const ZERO_MAC = '00:00:00:00:00:00';

t.test('encodeFdbMsg sends exactly what bridge fdb sends', async (t) => {
  const cases: Array<[string, FdbSpec]> = [
    ['fdb-append-vxlan', { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2' }],
    ['fdb-append-vxlan', { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2', self: true, state: PERMANENT }],
    ['fdb-del-vxlan', { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2' }],
    ['fdb-append-port', { ifindex: VETH0, mac: '02:00:00:00:00:aa', master: true, state: NUD_NOARP | NUD_REACHABLE }],
  ];
  for (const [name, spec] of cases) {
    t.equal(encodeFdbMsg(spec).toString('hex'), golden(name).toString('hex'), `${name} ${JSON.stringify(spec)}`);
  }
});

t.test('decodeFdb reads a real bridge fdb show dump', async (t) => {
  const entries = decodeMsgs(golden('fdb-dump-vxlan'))
    .filter((m) => m.type === RTM_NEWNEIGH)
    .map((m) => decodeFdb(m.payload));
  t.same(entries, [
    { ifindex: VX0, mac: '0a:0b:0c:0d:0e:0f', dst: '192.168.50.4', state: PERMANENT, flags: NTF_SELF },
    { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2', state: PERMANENT, flags: NTF_SELF },
    { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.3', state: PERMANENT, flags: NTF_SELF },
  ], 'the all-zero MAC appears once per appended dst');
});

t.test('decodeFdb reads master, vlan, vni and port (port in network byte order)', async (t) => {
  const header = Buffer.alloc(12);
  header.writeUInt8(AF_BRIDGE, 0);
  header.writeInt32LE(9, 4);
  header.writeUInt16LE(NUD_REACHABLE, 8);
  header.writeUInt8(NTF_MASTER, 10);
  const payload = encodePayload(header, [
    nla.bytes(NDA_LLADDR, Buffer.from([2, 0, 0, 0, 0, 0xbb])),
    nla.bytes(NDA_DST, Buffer.from([10, 0, 0, 2])),
    nla.u16(5 /* NDA_VLAN */, 100),
    nla.u32(NDA_VNI, 4096),
    nla.be16(NDA_PORT, 8472),
    nla.u32(NDA_MASTER, 4),
  ]);
  t.same(decodeFdb(payload), {
    ifindex: 9, mac: '02:00:00:00:00:bb', dst: '10.0.0.2', state: NUD_REACHABLE, flags: NTF_MASTER,
    masterIndex: 4, vlan: 100, vni: 4096, port: 8472,
  });
  header.writeUInt8(AF_INET, 0);
  t.equal(decodeFdb(encodePayload(header)), undefined, 'an IPv4 neighbour is not an FDB entry');
  header.writeUInt8(AF_BRIDGE, 0);
  t.equal(decodeFdb(encodePayload(header)), undefined, 'no MAC, no entry');
  t.throws(() => decodeFdb(Buffer.alloc(3)), /too short/);
});

t.test('self/master flags and state defaults follow bridge(8)', async (t) => {
  const flagsOf = (spec: Partial<FdbSpec>) => encodeFdbMsg({ ifindex: 1, mac: ZERO_MAC, ...spec }).readUInt8(10);
  t.equal(flagsOf({}), NTF_SELF, 'self by default');
  t.equal(flagsOf({ master: true }), NTF_MASTER, 'master alone does not imply self');
  t.equal(flagsOf({ master: true, self: true }), NTF_MASTER | NTF_SELF);
  t.equal(flagsOf({ self: false }), 0, 'neither: the kernel picks (master for bridge ports)');
  t.equal(encodeFdbMsg({ ifindex: 1, mac: ZERO_MAC }).readUInt16LE(8), PERMANENT);
  const round = decodeFdb(encodeFdbMsg({ ifindex: 4, mac: 'AA:BB:CC:DD:EE:FF', dst: 'fd00::7', state: NUD_REACHABLE }));
  t.same(round, { ifindex: 4, mac: 'aa:bb:cc:dd:ee:ff', dst: 'fd00::7', state: NUD_REACHABLE, flags: NTF_SELF });
});

t.test('bad input is refused before anything is sent, naming the field and value', async (t) => {
  const bad: Array<[FdbSpec, RegExp]> = [
    [{ ifindex: 3, mac: '00:00:00:00:00' }, /fdb mac: invalid MAC address "00:00:00:00:00"/],
    [{ ifindex: 3, mac: ZERO_MAC, dst: '192.168.50' }, /fdb dst: invalid IP address "192.168.50"/],
    [{ ifindex: -3, mac: ZERO_MAC }, /fdb ifindex -3/],
    [{ ifindex: undefined as unknown as number, mac: ZERO_MAC }, /fdb ifindex: required/],
    [{ ifindex: 3, mac: ZERO_MAC, state: 1.5 }, /fdb state 1.5/],
  ];
  for (const [spec, message] of bad) t.throws(() => encodeFdbMsg(spec), message, JSON.stringify(spec));
  const fake = new FakeTransport();
  t.throws(() => fdbAppend(new NetlinkSocket(fake), { ifindex: 3, mac: 'zz' }), /fdb mac/);
  t.equal(fake.sent.length, 0, 'nothing reached the socket');
});

t.test('append and del use the bridge(8) message types and flags; errors name the entry', async (t) => {
  const fake = new FakeTransport({ responder: (req) => [datagram(ackMsg(req))] });
  const sock = new NetlinkSocket(fake);
  fdbAppend(sock, { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2' });
  fdbDel(sock, { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.2' });
  const [append, del] = fake.requests as [NlMsg, NlMsg];
  t.equal(append.type, RTM_NEWNEIGH);
  t.equal(append.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND);
  t.equal(del.type, RTM_DELNEIGH);
  t.equal(del.flags, NLM_F_REQUEST | NLM_F_ACK);
  t.equal(del.payload.toString('hex'), golden('fdb-del-vxlan').toString('hex'));

  const missing = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, ENOENT))] });
  const err = t.throws(() => fdbDel(new NetlinkSocket(missing), { ifindex: VX0, mac: ZERO_MAC, dst: '192.168.50.9' }));
  t.type(err, NetlinkError);
  t.match(err, { code: 'ENOENT', operation: 'fdb del', object: 'fdb 00:00:00:00:00:00 dev #3 dst 192.168.50.9 self' });
});

t.test('fdbList asks for one port with the legacy ifinfomsg header and filters', async (t) => {
  const dump = decodeMsgs(golden('fdb-dump-vxlan')).filter((m) => m.type === RTM_NEWNEIGH);
  const other = Buffer.from(dump[0]!.payload);
  other.writeInt32LE(7, 4); // same entry on another device: must be filtered out for dev #3
  const fake = new FakeTransport({
    responder: (req) => [datagram(...[...dump.map((m) => m.payload), other].map((p) => multiMsg(req, RTM_NEWNEIGH, p)), doneMsg(req))],
  });
  const sock = new NetlinkSocket(fake);
  t.equal(fdbList(sock).length, 4);
  t.same(fdbList(sock, { ifindex: VX0 }).map((e) => e.dst), ['192.168.50.4', '192.168.50.2', '192.168.50.3']);
  const [all, one] = fake.requests as [NlMsg, NlMsg];
  t.same([all.type, all.flags, all.payload.length], [RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 16]);
  t.same([one.payload.readUInt8(0), one.payload.readInt32LE(4)], [AF_BRIDGE, VX0], 'ifi_family, ifi_index');
  t.throws(() => fdbList(sock, { ifindex: 0 }), /fdb ifindex 0/);
});
