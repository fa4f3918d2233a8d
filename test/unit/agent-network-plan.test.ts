// The agent's pure network core: desiredNetwork() per backend (auto mixing, skipped peers, MTU) and
// plan() against a simulated kernel (simulate() applies steps to an ObservedNetwork the way the
// kernel would, including objects vanishing with their device), plus a golden step list.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { desiredNetwork, gatewayOf, vtepMacFor } from '../../src/agent/network/desired.js';
import { describeStep, plan } from '../../src/agent/network/plan.js';
import type { Backend } from '../../src/api/objects.js';
import type { NetworkInput, ObservedNetwork, PeerNode, Step } from '../../src/agent/network/types.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/agent-plan-auto.txt', import.meta.url));
const mac = (n: number) => vtepMacFor(`node${n}`);
const peer = (n: number, publicIp: string, extra: Partial<PeerNode> = {}): PeerNode =>
  ({ name: `node${n}`, podCidr: `10.244.${n}.0/24`, publicIp, vtepMac: mac(n), ...extra });
const PEERS = [peer(3, '198.51.100.13'), peer(2, '192.0.2.12')];

function input(backend: Backend, peers: PeerNode[] = PEERS, over: Partial<NetworkInput> = {}): NetworkInput {
  return {
    nodeName: 'node1', underlay: { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 1500 },
    podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16', backend, vni: 1, vxlanPort: 8472, vtepMac: mac(1), peers, ...over,
  };
}
const empty = (): ObservedNetwork => ({ links: [], addrs: [], routes: [], neighs: [], fdb: [] });
const ops = (steps: Step[]) => steps.map((s) => s.op);
const lines = (steps: Step[]) => steps.map(describeStep);

/** What the kernel would hold after the steps (only what observe.ts reports). */
function simulate(start: ObservedNetwork, steps: Step[]): ObservedNetwork {
  const k: ObservedNetwork = structuredClone(start);
  let next = 10 + k.links.length;
  const dropOn = (ifname: string) => {
    k.addrs = k.addrs.filter((a) => a.ifname !== ifname);
    k.routes = k.routes.filter((r) => r.ifname !== ifname);
    k.neighs = k.neighs.filter((n) => n.ifname !== ifname);
    k.fdb = k.fdb.filter((e) => e.ifname !== ifname);
  };
  for (const s of steps) {
    if (s.op === 'bridgeAdd') k.links.push({ name: s.name, index: next++, kind: 'bridge', mtu: s.mtu, mac: '0a:00:00:00:00:01', up: true });
    else if (s.op === 'vxlanAdd') {
      const vxlan = { vni: s.vni, port: s.port, local: s.local, devIndex: 2, devIfname: s.devIfname, learning: false };
      k.links.push({ name: s.name, index: next++, kind: 'vxlan', mtu: s.mtu, mac: s.mac, up: true, vxlan });
    } else if (s.op === 'linkDel') {
      k.links = k.links.filter((l) => l.name !== s.name);
      dropOn(s.name);
    } else if (s.op === 'linkSet') Object.assign(k.links.find((l) => l.name === s.name)!, s.mtu && { mtu: s.mtu }, s.mac && { mac: s.mac }, s.up && { up: true });
    else if (s.op === 'addrAdd') k.addrs.push({ ifname: s.ifname, cidr: s.cidr });
    else if (s.op === 'addrDel') k.addrs = k.addrs.filter((a) => !(a.ifname === s.ifname && a.cidr === s.cidr));
    else if (s.op === 'routeReplace') k.routes = [...k.routes.filter((r) => r.dst !== s.route.dst), { ...s.route }];
    else if (s.op === 'routeDel') k.routes = k.routes.filter((r) => r.dst !== s.dst);
    else if (s.op === 'neighReplace') k.neighs = [...k.neighs.filter((n) => n.ip !== s.ip), { ifname: s.ifname, ip: s.ip, mac: s.mac }];
    else if (s.op === 'neighDel') k.neighs = k.neighs.filter((n) => n.ip !== s.ip);
    else if (s.op === 'fdbAppend') k.fdb.push({ ifname: s.ifname, mac: s.mac, dst: s.dst });
    else if (s.op === 'fdbDel') k.fdb = k.fdb.filter((e) => !(e.mac === s.mac && e.dst === s.dst));
  }
  return k;
}
const built = (inp: NetworkInput) => simulate(empty(), plan(desiredNetwork(inp), empty()));

t.test('desired, vxlan: every peer through podwire.1, MTU underlay − 50, sorted by name', async (t) => {
  const d = desiredNetwork(input('vxlan'));
  t.same(d.bridge, { name: 'cni0', gatewayCidr: '10.244.1.1/24', mtu: 1450 });
  t.same(d.vxlan, { name: 'podwire.1', vni: 1, port: 8472, local: '192.0.2.11', devIfname: 'eth0', mtu: 1450, mac: mac(1), addressCidr: '10.244.1.0/32' });
  t.same(d.routes, [
    { dst: '10.244.2.0/24', gateway: '10.244.2.0', ifname: 'podwire.1', onlink: true },
    { dst: '10.244.3.0/24', gateway: '10.244.3.0', ifname: 'podwire.1', onlink: true },
  ]);
  t.same(d.neighs, [{ ifname: 'podwire.1', ip: '10.244.2.0', mac: mac(2) }, { ifname: 'podwire.1', ip: '10.244.3.0', mac: mac(3) }]);
  t.same(d.fdb, [{ ifname: 'podwire.1', mac: mac(2), dst: '192.0.2.12' }, { ifname: 'podwire.1', mac: mac(3), dst: '198.51.100.13' }]);
  t.same(d.peerModes, { node2: 'vxlan', node3: 'vxlan' });
  t.same([d.podMtu, d.clusterCidr, d.unreachable], [1450, '10.244.0.0/16', []]);
});

t.test('desired, host-gw: routes via the underlay, no device, full MTU, off-subnet peer reported', async (t) => {
  const d = desiredNetwork(input('host-gw'));
  t.equal(d.vxlan, undefined);
  t.same(d.routes, [{ dst: '10.244.2.0/24', gateway: '192.0.2.12', ifname: 'eth0', onlink: false }]);
  t.same([d.neighs, d.fdb], [[], []]);
  t.same([d.podMtu, d.bridge.mtu], [1500, 1500]);
  t.same(d.unreachable, [{ name: 'node3', why: 'host-gw: 198.51.100.13 is outside the underlay subnet 192.0.2.11/24' }]);
  t.same(desiredNetwork(input('host-gw', [peer(2, '192.0.2.12', { vtepMac: undefined })])).peerModes, { node2: 'host-gw' }, 'no VTEP MAC needed');
});

t.test('desired, auto: direct on the same subnet, vxlan beyond it; the device stays even if unused', async (t) => {
  const d = desiredNetwork(input('auto'));
  t.same(d.peerModes, { node2: 'host-gw', node3: 'vxlan' });
  t.same(d.routes.map((r) => `${r.dst} ${r.gateway} ${r.ifname}`), ['10.244.2.0/24 192.0.2.12 eth0', '10.244.3.0/24 10.244.3.0 podwire.1']);
  t.same(d.fdb.map((e) => e.dst), ['198.51.100.13']);
  t.equal(d.podMtu, 1450);
  const direct = desiredNetwork(input('auto', [peer(2, '192.0.2.12')]));
  t.ok(direct.vxlan, 'podwire.1 kept with only direct peers: a later peer may need it');
  t.same([direct.podMtu, direct.neighs.length], [1450, 0]);
  t.equal(desiredNetwork(input('vxlan', [], { underlay: { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 9000 } })).podMtu, 8950);
});

t.test('desired: peers that cannot be wired are skipped and reported, never thrown', async (t) => {
  const peers: PeerNode[] = [
    peer(9, '192.0.2.19', { vtepMac: undefined }),
    peer(1, '192.0.2.11'),
    { name: 'nocidr', podCidr: '', publicIp: '192.0.2.20' },
    { name: 'noip', podCidr: '10.244.8.0/24', publicIp: '' },
    peer(2, '192.0.2.12'),
    { name: 'overlap', podCidr: '10.244.1.0/25', publicIp: '192.0.2.30', vtepMac: '02:00:00:00:00:30' },
    { name: 'samecidr', podCidr: '10.244.2.0/24', publicIp: '192.0.2.31', vtepMac: '02:00:00:00:00:31' },
    { name: 'samemac', podCidr: '10.244.32.0/24', publicIp: '192.0.2.32', vtepMac: mac(2).toUpperCase() },
    { name: 'badcidr', podCidr: '10.244.33.0', publicIp: '192.0.2.33', vtepMac: '02:00:00:00:00:33' },
  ];
  const d = desiredNetwork(input('vxlan', peers));
  t.same(Object.keys(d.peerModes), ['node2']);
  t.same(d.unreachable.map((u) => u.name), ['badcidr', 'nocidr', 'node1', 'node9', 'noip', 'overlap', 'samecidr', 'samemac'], 'sorted by name');
  const why = Object.fromEntries(d.unreachable.map((u) => [u.name, u.why]));
  t.equal(why.node1, 'this node');
  t.match(why.node9, /no VTEP MAC/);
  t.match(why.nocidr, /no podCIDR/);
  t.match(why.noip, /no public IP/);
  t.match(why.overlap, /overlaps this node's 10\.244\.1\.0\/24/);
  t.match(why.samecidr, /overlaps node2's/);
  t.match(why.samemac, /already node2's/);
  t.match(why.badcidr, /invalid CIDR/);
  t.same(desiredNetwork(input('vxlan', [...peers].reverse())), d, 'input order does not matter');
});

t.test('vtepMacFor and gatewayOf', async (t) => {
  t.equal(vtepMacFor('node1'), vtepMacFor('node1'), 'stable');
  t.not(vtepMacFor('node1'), vtepMacFor('node2'));
  for (const name of ['node1', 'a', 'worker-17.example']) {
    const first = parseInt(vtepMacFor(name).slice(0, 2), 16);
    t.match(vtepMacFor(name), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    t.same([first & 1, first & 2], [0, 2], `${name}: unicast, locally administered`);
  }
  t.equal(gatewayOf('10.244.1.0/24'), '10.244.1.1');
  t.equal(gatewayOf('10.244.1.77/24'), '10.244.1.1', 'host bits ignored');
  t.equal(gatewayOf('10.0.0.0/8'), '10.0.0.1');
  t.throws(() => gatewayOf('10.244.1.0/31'), /no room/);
});

t.test('plan: empty kernel → full build in order; applied, the next plan is empty', async (t) => {
  const d = desiredNetwork(input('vxlan'));
  const steps = plan(d, empty());
  t.same(ops(steps), ['bridgeAdd', 'vxlanAdd', 'addrAdd', 'addrAdd', 'neighReplace', 'neighReplace', 'fdbAppend', 'fdbAppend', 'routeReplace', 'routeReplace']);
  t.same(lines(steps).slice(2, 4), ['addr add 10.244.1.1/24 dev cni0', 'addr add 10.244.1.0/32 dev podwire.1']);
  t.equal(describeStep(steps[8]), 'route replace 10.244.2.0/24 via 10.244.2.0 dev podwire.1 onlink');
  for (const backend of ['vxlan', 'host-gw', 'auto'] as const) {
    t.same(plan(desiredNetwork(input(backend)), built(input(backend))), [], `${backend}: intact kernel → []`);
  }
});

t.test('plan: a removed peer loses its route, neighbour and FDB entry, in that order', async (t) => {
  const kernel = built(input('vxlan'));
  const steps = plan(desiredNetwork(input('vxlan', [peer(2, '192.0.2.12')])), kernel);
  t.same(lines(steps), ['route del 10.244.3.0/24', 'neigh del 10.244.3.0 dev podwire.1', `fdb del ${mac(3)} dev podwire.1 dst 198.51.100.13`]);
  t.ok(steps.every((s) => s.op !== 'routeDel' || kernel.routes.some((r) => r.dst === s.dst)), 'only observed (protocol-158) routes are ever deleted');
});

t.test('plan: a peer whose VTEP MAC changed → neigh replace, FDB append then delete of the old one', async (t) => {
  const kernel = built(input('vxlan'));
  const moved = [peer(3, '198.51.100.13'), peer(2, '192.0.2.12', { vtepMac: '02:aa:bb:cc:dd:ee' })];
  t.same(lines(plan(desiredNetwork(input('vxlan', moved)), kernel)), [
    'neigh replace 10.244.2.0 lladdr 02:aa:bb:cc:dd:ee dev podwire.1 nud permanent',
    'fdb append 02:aa:bb:cc:dd:ee dev podwire.1 dst 192.0.2.12',
    `fdb del ${mac(2)} dev podwire.1 dst 192.0.2.12`,
  ]);
});

t.test('plan: an immutable vxlan attribute changed → recreate, then re-add what vanished with it', async (t) => {
  const kernel = built(input('vxlan'));
  const steps = plan(desiredNetwork(input('vxlan', PEERS, { vni: 2 })), kernel);
  t.same(ops(steps), ['linkDel', 'vxlanAdd', 'addrAdd', 'neighReplace', 'neighReplace', 'fdbAppend', 'fdbAppend', 'routeReplace', 'routeReplace']);
  t.equal(describeStep(steps[0]), 'link del podwire.1 (recreate: vni 1 → 2)');
  const learning = structuredClone(kernel);
  learning.links[1].vxlan!.learning = true;
  t.match(describeStep(plan(desiredNetwork(input('vxlan')), learning)[0]), /learning on → off/);
  const wrongKind = structuredClone(kernel);
  wrongKind.links[1] = { name: 'podwire.1', index: 99, kind: 'bridge', mtu: 1500, up: true };
  t.match(describeStep(plan(desiredNetwork(input('vxlan')), wrongKind)[0]), /kind bridge is not vxlan/);
});

t.test('plan: mutable link differences → link set, never recreate; cni0 is never deleted', async (t) => {
  const kernel = built(input('vxlan'));
  kernel.links[0] = { ...kernel.links[0], mtu: 1500, up: false };
  kernel.links[1] = { ...kernel.links[1], mtu: 1400, mac: '02:00:00:00:00:99', up: false };
  t.same(lines(plan(desiredNetwork(input('vxlan')), kernel)), ['link set cni0 mtu 1450 up', `link set podwire.1 mtu 1450 address ${mac(1)} up`]);
  const hostGw = plan(desiredNetwork(input('host-gw')), kernel);
  t.notOk(hostGw.some((s) => s.op === 'linkDel' && s.name === 'cni0'));
});

t.test('plan: cni0 addresses: stale ones inside the cluster go first, foreign and IPv6 ones stay', async (t) => {
  const kernel = built(input('vxlan'));
  kernel.addrs = [
    { ifname: 'cni0', cidr: '10.244.7.1/24' }, { ifname: 'cni0', cidr: '192.168.5.1/24' }, { ifname: 'cni0', cidr: 'fe80::1/64' },
    { ifname: 'podwire.1', cidr: '10.244.1.0/32' }, { ifname: 'podwire.1', cidr: '10.9.9.9/32' }, { ifname: 'podwire.1', cidr: 'fe80::2/64' },
  ];
  t.same(lines(plan(desiredNetwork(input('vxlan')), kernel)), [
    'addr del 10.244.7.1/24 dev cni0', 'addr del 10.9.9.9/32 dev podwire.1', 'addr add 10.244.1.1/24 dev cni0',
  ]);
});

t.test('plan: backend vxlan → host-gw: routes replaced first, the device (and all on it) deleted last', async (t) => {
  const kernel = built(input('vxlan'));
  const steps = plan(desiredNetwork(input('host-gw')), kernel);
  t.same(lines(steps), [
    'link set cni0 mtu 1500',
    'route replace 10.244.2.0/24 via 192.0.2.12 dev eth0',
    'link del podwire.1 (no peer is reached through vxlan with this backend)',
  ]);
  const after = simulate(kernel, steps);
  t.same(plan(desiredNetwork(input('host-gw')), after), []);
  t.same(plan(desiredNetwork(input('vxlan')), after).filter((s) => s.op === 'routeReplace').length, 2, 'and back');
});

t.test('plan: auto 3-node scenario from an empty kernel matches the golden step list', async (t) => {
  const text = lines(plan(desiredNetwork(input('auto')), empty())).join('\n') + '\n';
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
  t.equal(text, readFileSync(GOLDEN, 'utf8'));
});
