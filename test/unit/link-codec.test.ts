// Link and address codecs: byte-identical to the requests iproute2 sends (test/fixtures/netlink,
// made by capture.sh), decoding of real `ip -d link show` / `ip addr show` dumps, validation.
import t from 'tap';
import { decodeMsgs } from '../../src/netlink/codec.js';
import { RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK } from '../../src/netlink/constants.js';
import { decodeLink, encodeBridgePortSet, encodeLinkAdd, encodeLinkDelGroup, encodeLinkSet, linkDel, linkDelGroup, type LinkSpec } from '../../src/netlink/link.js';
import { decodeAddress, encodeAddressMsg } from '../../src/netlink/address.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, FakeTransport } from '../lib/fake-transport.js';

// ifindexes in the capture netns: br0 2, vx0 3, br1 6, va 9 (see the fixture comments).
const BR0 = 2;
const hex = (b: Buffer) => b.toString('hex');

t.test('link add requests are byte-identical to ip link add', async (t) => {
  const cases: Array<[string, LinkSpec]> = [
    ['link-add-bridge', { kind: 'bridge', name: 'br1' }],
    ['link-add-vxlan', { kind: 'vxlan', name: 'vx1', vni: 7, port: 8472, learning: false, local: '10.1.0.1', devIndex: BR0 }],
    ['link-add-veth', { kind: 'veth', name: 'va', mtu: 1450, peer: { name: 'vb', mtu: 1450 } }],
  ];
  for (const [fixture, spec] of cases) t.equal(hex(encodeLinkAdd(spec)), hex(golden(fixture)), fixture);
});

t.test('link set requests are byte-identical to ip link set', async (t) => {
  t.equal(hex(encodeLinkSet(6, { up: true })), hex(golden('link-set-up')));
  t.equal(hex(encodeLinkSet(6, { mtu: 1400, mac: '02:00:00:00:05:00' })), hex(golden('link-set-mtu-mac')));
  t.equal(hex(encodeLinkSet(9, { masterIndex: 6 })), hex(golden('link-set-master')));
  t.equal(hex(encodeLinkSet(9, { masterIndex: null })), hex(golden('link-set-nomaster')));
  t.equal(hex(encodeLinkSet(9, { up: false, group: 7 })), hex(golden('link-set-down-group')));
  t.throws(() => encodeLinkSet(9, { group: -1 }), /invalid link group -1/);
  t.throws(() => encodeLinkSet(9, { group: 2 ** 32 }), /invalid link group/);
});

t.test('link del by group sends what ip link del group sends, and never group 0', async (t) => {
  t.equal(hex(encodeLinkDelGroup(7)), hex(golden('link-del-group')));
  t.throws(() => encodeLinkDelGroup(0), /refusing to delete link group 0/);
  const fake = new FakeTransport({ responder: (req) => [datagram(ackMsg(req))] });
  linkDelGroup(new NetlinkSocket(fake), 7);
  t.equal(fake.requests[0].type, RTM_DELLINK);
  t.equal(hex(fake.requests[0].payload), hex(golden('link-del-group')));
});

t.test('link del by index sends what ip link del sends', async (t) => {
  const fake = new FakeTransport({ responder: (req) => [datagram(ackMsg(req))] });
  linkDel(new NetlinkSocket(fake), 6);
  t.equal(fake.requests[0].type, RTM_DELLINK);
  t.equal(hex(fake.requests[0].payload), hex(golden('link-del')));
});

t.test('a real ip -d link dump decodes: kinds, MACs, peers, vxlan data', async (t) => {
  const links = decodeMsgs(golden('link-dump')).filter((m) => m.type === RTM_NEWLINK).map((m) => decodeLink(m.payload));
  t.same(links.map((l) => `${l.index}:${l.name}`), ['1:lo', '2:br0', '3:vx0', '4:veth1', '5:veth0', '7:vx1', '8:vb', '9:va']);
  const by = (name: string) => links.find((l) => l.name === name)!;
  t.equal(by('br0').kind, 'bridge');
  t.equal(by('br0').mac, '02:00:00:00:01:00');
  t.equal(by('br0').up, true);
  t.same(by('vx0').vxlan, { vni: 1, port: 8472, learning: false, local: '10.1.0.1' });
  t.same(by('vx1').vxlan, { vni: 7, port: 8472, learning: false, local: '10.1.0.1', devIndex: BR0 });
  t.equal(by('veth0').kind, 'veth');
  t.equal(by('veth0').linkIndex, 4, 'veth peer index');
  t.equal(by('veth0').masterIndex, BR0);
  t.equal(by('va').mtu, 1450);
  t.equal(by('lo').kind, undefined);
});

t.test('address requests are byte-identical to ip addr', async (t) => {
  t.equal(hex(encodeAddressMsg({ ifindex: BR0, cidr: '10.1.0.5/24' })), hex(golden('addr-add')), 'broadcast derived like brd +');
  t.equal(hex(encodeAddressMsg({ ifindex: BR0, cidr: '10.1.0.5/24' })), hex(golden('addr-replace')), 'replace differs only in flags');
  t.equal(hex(encodeAddressMsg({ ifindex: BR0, cidr: '2001:db8:1::5/64' })), hex(golden('addr-add6')));
  t.equal(hex(encodeAddressMsg({ ifindex: BR0, cidr: '10.1.0.5/24', broadcast: 'none' })), hex(golden('addr-del')));
});

t.test('a real ip addr dump decodes', async (t) => {
  const addrs = decodeMsgs(golden('addr-dump')).filter((m) => m.type === RTM_NEWADDR).map((m) => decodeAddress(m.payload));
  const cidrs = addrs.map((a) => `${a.ifindex}:${a.cidr}`);
  t.ok(cidrs.includes('1:127.0.0.1/8'));
  t.ok(cidrs.includes('2:10.1.0.1/24'));
  t.ok(cidrs.includes('2:2001:db8:1::1/64'));
  const br0v4 = addrs.find((a) => a.cidr === '10.1.0.1/24')!;
  t.equal(br0v4.label, 'br0');
  t.equal(br0v4.family, 4);
});

t.test('link and address input is validated before encoding', async (t) => {
  t.throws(() => encodeLinkAdd({ kind: 'bridge', name: '' }), /invalid interface name ""/);
  t.throws(() => encodeLinkAdd({ kind: 'bridge', name: 'sixteen-chars-xx' }), /invalid interface name/);
  t.throws(() => encodeLinkAdd({ kind: 'veth', name: 'a', peer: { name: 'b c' } }), /invalid interface peer name "b c"/);
  t.throws(() => encodeLinkAdd({ kind: 'vxlan', name: 'vx', vni: -1 }), /invalid vni -1/);
  t.throws(() => encodeLinkAdd({ kind: 'vxlan', name: 'vx', vni: 1, port: 70000 }), /invalid port 70000/);
  t.throws(() => encodeLinkAdd({ kind: 'vxlan', name: 'vx', vni: 1, local: '10.0.0' }), /invalid IP address "10.0.0"/);
  t.throws(() => encodeLinkSet(3, { mtu: 65536 }), /invalid mtu 65536/);
  t.throws(() => encodeAddressMsg({ ifindex: 2, cidr: '10.1.0.5/40' }), /prefix length must be 0-32/);
  t.throws(() => encodeAddressMsg({ ifindex: -1, cidr: '10.1.0.5/24' }), /invalid ifindex -1/);
});

t.test('bridge port hairpin: the bytes `bridge link set dev X hairpin on` sends (strace)', async (t) => {
  // ifinfomsg {AF_BRIDGE, index 7} + IFLA_PROTINFO|NLA_F_NESTED { IFLA_BRPORT_MODE u8 1 }
  const want = Buffer.from('07000000' + '07000000' + '00000000' + '00000000' + '0c000c80' + '05000400' + '01000000', 'hex');
  t.same(encodeBridgePortSet(7, { hairpin: true }), want);
  t.equal(encodeBridgePortSet(7, { hairpin: false }).at(-4), 0);
});
