// Links against the real kernel, each checked through `ip -j -d link` (the independent oracle).
import t from 'tap';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_ROUTE } from '../../src/netlink/constants.js';
import { linkAdd, linkDel, linkFind, linkGet, linkList, linkSet } from '../../src/netlink/link.js';
import { openNetns } from '../../src/netns/netns.js';
import { freshNetns, ipJson, SKIP_NOT_ROOT, throwsCode } from '../lib/netns.js';

function socketIn(t: { teardown(fn: () => void): void }, ns: string): NetlinkSocket {
  const s = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => s.close());
  return s;
}
const oracle = (ns: string, dev: string) => ipJson(ns, ['link', 'show', 'dev', dev])[0];

t.test('bridge: add, get, list, set up/down, mtu, mac, del', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'link');
  const s = socketIn(t, ns);
  linkAdd(s, { kind: 'bridge', name: 'cni0', mtu: 1450, mac: '02:00:00:00:00:01', up: true });
  let o = oracle(ns, 'cni0');
  t.equal(o.linkinfo.info_kind, 'bridge');
  t.equal(o.mtu, 1450);
  t.equal(o.address, '02:00:00:00:00:01');
  t.ok(o.flags.includes('UP'), 'created up');
  const got = linkGet(s, 'cni0');
  t.equal(got.index, o.ifindex);
  t.equal(got.kind, 'bridge');
  t.equal(linkGet(s, got.index).name, 'cni0', 'get by index');
  const listed = linkList(s).map((l) => `${l.index}:${l.name}:${l.mtu}:${l.mac}`).sort();
  const want = ipJson(ns, ['link', 'show']).map((l: any) => `${l.ifindex}:${l.ifname}:${l.mtu}:${l.address}`).sort();
  t.same(listed, want, 'list agrees with ip -j link');

  linkSet(s, 'cni0', { up: false, mtu: 1400, mac: '02:00:00:00:00:02' });
  o = oracle(ns, 'cni0');
  t.notOk(o.flags.includes('UP'), 'set down');
  t.equal(o.mtu, 1400);
  t.equal(o.address, '02:00:00:00:00:02');
  linkSet(s, got.index, { up: true });
  t.ok(oracle(ns, 'cni0').flags.includes('UP'), 'set up by index');
  linkSet(s, 'cni0', { name: 'cni1' });
  t.equal(linkGet(s, got.index).name, 'cni1', 'renamed');
  linkDel(s, 'cni1');
  t.equal(linkFind(s, 'cni1'), undefined, 'gone');
  t.same(ipJson(ns, ['link', 'show']).map((l: any) => l.ifname), ['lo']);
});

t.test('veth: peer created directly in another netns, master, nomaster, move by fd', { skip: SKIP_NOT_ROOT }, async (t) => {
  const host = freshNetns(t, 'host');
  const pod = freshNetns(t, 'pod');
  const s = socketIn(t, host);
  const podRef = openNetns(pod);
  t.teardown(() => podRef.close());
  linkAdd(s, { kind: 'bridge', name: 'cni0', up: true });
  linkAdd(s, { kind: 'veth', name: 'pwabc', mtu: 1450, peer: { name: 'eth0', netnsFd: podRef.fd, mtu: 1450, mac: '0a:58:0a:f4:01:05' } });
  const hostEnd = oracle(host, 'pwabc');
  const podEnd = oracle(pod, 'eth0');
  t.equal(hostEnd.linkinfo.info_kind, 'veth');
  t.equal(podEnd.linkinfo.info_kind, 'veth');
  t.equal(podEnd.address, '0a:58:0a:f4:01:05');
  t.equal(podEnd.mtu, 1450);
  t.equal(hostEnd.link_index, podEnd.ifindex, 'host end points at the pod end');
  t.equal(ipJson(host, ['link', 'show']).filter((l: any) => l.ifname === 'eth0').length, 0, 'peer never appears in the host netns');
  t.equal(linkGet(s, 'pwabc').linkIndex, podEnd.ifindex);

  const br = linkGet(s, 'cni0');
  linkSet(s, 'pwabc', { masterIndex: br.index, up: true });
  t.equal(oracle(host, 'pwabc').master, 'cni0');
  t.equal(linkGet(s, 'pwabc').masterIndex, br.index);
  linkSet(s, 'pwabc', { masterIndex: null });
  t.equal(oracle(host, 'pwabc').master, undefined, 'nomaster');

  // Move the host end into the pod netns by fd, then move it back from a socket in the pod netns.
  linkSet(s, 'pwabc', { netnsFd: podRef.fd });
  t.equal(linkFind(s, 'pwabc'), undefined, 'left the host netns');
  t.equal(oracle(pod, 'pwabc').linkinfo.info_kind, 'veth', 'arrived in the pod netns');
  const hostRef = openNetns(host);
  t.teardown(() => hostRef.close());
  const ps = socketIn(t, pod);
  linkSet(ps, 'pwabc', { netnsFd: hostRef.fd });
  t.ok(linkFind(s, 'pwabc'), 'moved back');
  linkDel(s, 'pwabc');
  t.same(ipJson(pod, ['link', 'show']).map((l: any) => l.ifname), ['lo'], 'deleting one end removes the peer');
});

t.test('vxlan: VNI, local, dev, port, learning, MTU', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'vx');
  const s = socketIn(t, ns);
  linkAdd(s, { kind: 'bridge', name: 'ul0', up: true });
  const ul = linkGet(s, 'ul0');
  linkAdd(s, { kind: 'vxlan', name: 'podwire.1', vni: 1, local: '192.0.2.11', devIndex: ul.index, port: 8472, learning: false, mtu: 1450 });
  const o = oracle(ns, 'podwire.1');
  const d = o.linkinfo.info_data;
  t.equal(o.linkinfo.info_kind, 'vxlan');
  t.equal(d.id, 1);
  t.equal(d.local, '192.0.2.11');
  t.equal(d.link, 'ul0');
  t.equal(d.port, 8472);
  t.equal(d.learning, false);
  t.equal(o.mtu, 1450);
  const got = linkGet(s, 'podwire.1');
  t.same(got.vxlan, { vni: 1, port: 8472, learning: false, local: '192.0.2.11', devIndex: ul.index });
  linkAdd(s, { kind: 'vxlan', name: 'vx6', vni: 42, local: '2001:db8::1', port: 4789, learning: true });
  const o6 = oracle(ns, 'vx6').linkinfo.info_data;
  t.equal(o6.local6, '2001:db8::1');
  t.equal(o6.learning, true);
  t.equal(o6.port, 4789);
  t.equal(linkGet(s, 'vx6').vxlan?.local, '2001:db8::1');
});

t.test('errors: EEXIST, ENODEV, bad netns, invalid input never sent', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'err');
  const s = socketIn(t, ns);
  linkAdd(s, { kind: 'bridge', name: 'br0' });
  throwsCode(t, () => linkAdd(s, { kind: 'bridge', name: 'br0' }), 'EEXIST', /netlink link add bridge "br0": EEXIST/);
  throwsCode(t, () => linkGet(s, 'nope0'), 'ENODEV', /link get link "nope0"/);
  throwsCode(t, () => linkDel(s, 9999), 'ENODEV', /link del link #9999/);
  throwsCode(t, () => linkSet(s, 'nope0', { up: true }), 'ENODEV');
  linkAdd(s, { kind: 'vxlan', name: 'vx1', vni: 1, port: 8472 });
  throwsCode(t, () => linkAdd(s, { kind: 'vxlan', name: 'vx2', vni: 1, port: 8472 }), 'EEXIST', /kernel says "A VXLAN device with the specified VNI already exists"/);
  t.throws(() => NetlinkSocket.open(NETLINK_ROUTE, { netns: 'pw-does-not-exist-xyz' }), /cannot open netns "pw-does-not-exist-xyz".*ENOENT/);
  t.throws(() => NetlinkSocket.open(NETLINK_ROUTE, { netns: '/etc/hostname' }), /is not a network namespace/);
  const before = JSON.stringify(ipJson(ns, ['link', 'show']));
  t.throws(() => linkAdd(s, { kind: 'bridge', name: 'a-name-too-long0' }), /invalid interface name/);
  t.throws(() => linkAdd(s, { kind: 'bridge', name: 'bad/name' }), /invalid interface name/);
  t.throws(() => linkAdd(s, { kind: 'vxlan', name: 'vx3', vni: 1 << 24 }), /invalid vni/);
  t.throws(() => linkAdd(s, { kind: 'bridge', name: 'br9', mtu: 10 }), /invalid mtu/);
  t.throws(() => linkAdd(s, { kind: 'bridge', name: 'br9', mac: 'zz:00:00:00:00:00' }), /invalid MAC/);
  t.throws(() => linkAdd(s, { kind: 'macvlan', name: 'mv0' } as never), /unsupported kind "macvlan"/);
  t.equal(JSON.stringify(ipJson(ns, ['link', 'show'])), before, 'rejected input changed nothing');
});
