// The Handle end to end: the flannel-equivalent VXLAN overlay of shared/notes/measured.md built
// between two lab nodes through Handles only (links, addresses, neighbours, FDB, onlink routes,
// genl), then real traffic across it. Proves the pieces compose, not only that each call returns.
import t from 'tap';
import fs from 'node:fs';
import { Handle } from '../../src/netlink/handle.js';
import { NUD_PERMANENT, RTPROT_STATIC } from '../../src/netlink/constants.js';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { execInNetns } from '../../src/netns/exec.js';
import { ipJson, bridgeJson, SKIP_NOT_ROOT } from '../lib/netns.js';

const podCidr = (i: number) => `10.244.${i}.0/24`;
const vtepIp = (i: number) => `10.244.${i}.0`;

function setUpNode(h: Handle, node: LabNode, i: number): { vtepMac: string } {
  const eth0 = h.linkGet('eth0');
  h.linkAdd({ kind: 'vxlan', name: 'podwire.1', vni: 1, port: 8472, learning: false, local: node.underlayIp, devIndex: eth0.index, mtu: 1450 });
  const vx = h.linkGet('podwire.1');
  h.addrReplace({ ifindex: vx.index, cidr: `${vtepIp(i)}/32` });
  h.linkSet(vx.index, { up: true });
  h.linkAdd({ kind: 'bridge', name: 'cni0', up: true });
  h.addrReplace({ ifindex: h.ifindex('cni0'), cidr: `10.244.${i}.1/24` });
  return { vtepMac: vx.mac! };
}

function addPeer(h: Handle, peer: LabNode, j: number, vtepMac: string): void {
  const vx = h.ifindex('podwire.1');
  h.neighReplace({ ifindex: vx, ip: vtepIp(j), mac: vtepMac, state: NUD_PERMANENT });
  h.fdbAppend({ ifindex: vx, mac: vtepMac, dst: peer.underlayIp });
  h.routeReplace({ dst: podCidr(j), gateway: vtepIp(j), ifindex: vx, onlink: true, protocol: RTPROT_STATIC });
}

t.test('Handle: flannel-equivalent VXLAN between two lab nodes carries traffic', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ownNetns = fs.readlinkSync('/proc/thread-self/ns/net');
  const lab = Lab.create({ nodes: 2 });
  t.teardown(() => lab.destroy());
  const [a, b] = lab.nodes;
  const ha = Handle.open({ netns: a.netns });
  const hb = Handle.open({ netns: b.netns });
  t.teardown(() => { ha.close(); hb.close(); });
  t.equal(fs.readlinkSync('/proc/thread-self/ns/net'), ownNetns, 'opening handles did not move this thread');

  const va = setUpNode(ha, a, 1);
  const vb = setUpNode(hb, b, 2);
  addPeer(ha, b, 2, vb.vtepMac);
  addPeer(hb, a, 1, va.vtepMac);

  // Oracles in node a.
  const route = ipJson(a.netns, ['route', 'show', podCidr(2)])[0];
  t.equal(route.gateway, vtepIp(2));
  t.equal(route.dev, 'podwire.1');
  t.ok(route.flags.includes('onlink'), 'onlink');
  t.equal(route.protocol, 'static');
  const neigh = ipJson(a.netns, ['neigh', 'show', 'dev', 'podwire.1'])[0];
  t.equal(neigh.lladdr, vb.vtepMac);
  t.same(neigh.state, ['PERMANENT']);
  const fdb = bridgeJson(a.netns, ['fdb', 'show', 'dev', 'podwire.1']).find((e: any) => e.mac === vb.vtepMac);
  t.equal(fdb?.dst, b.underlayIp, 'FDB points at the peer underlay address');
  t.same(ha.routeList({ family: 4, ifindex: ha.ifindex('podwire.1') }).map((r) => r.dst), [podCidr(2)], 'routeList through the handle');
  t.same(ha.fdbList({ ifindex: ha.ifindex('podwire.1') }).map((e) => `${e.mac} ${e.dst}`), [`${vb.vtepMac} ${b.underlayIp}`]);
  t.same(ha.neighList({ family: 4, ifindex: ha.ifindex('podwire.1') }).map((n) => n.ip), [vtepIp(2)]);

  const ping = await execInNetns(a.netns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', '-I', '10.244.1.1', '10.244.2.1']);
  t.equal(ping.code, 0, `ping across the overlay: ${ping.stdout.split('\n').slice(-3).join(' ')}`);
  const stats = ipJson(b.netns, ['-s', 'link', 'show', 'dev', 'podwire.1'])[0].stats64;
  t.ok(stats.rx.packets >= 2, `packets arrived through node b's VXLAN device (${stats.rx.packets})`);

  t.equal(ha.genlFamily('nlctrl').id, 16, 'generic netlink through the same handle');
  t.equal(fs.readlinkSync('/proc/thread-self/ns/net'), ownNetns, 'this thread never left its netns');
});
