// peerDiff (src/agent/debug/peer-diff.ts), pure: desiredNetwork()'s routes, neighbours and FDB
// entries per peer next to an observed kernel dump → present / missing / stale with what differs.
import t from 'tap';
import { desiredNetwork } from '../../src/agent/network/desired.js';
import type { NetworkInput, ObservedNetwork } from '../../src/agent/network/types.js';
import { peerDiff } from '../../src/agent/debug/peer-diff.js';

const input = (backend: NetworkInput['backend']): NetworkInput => ({
  nodeName: 'node1',
  underlay: { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 1500 },
  podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16', backend, vni: 1, vxlanPort: 8472, vtepMac: '02:00:00:00:00:01',
  peers: [
    { name: 'node3', podCidr: '10.244.3.0/24', publicIp: '198.51.100.13', vtepMac: '02:00:00:00:00:03' },
    { name: 'node2', podCidr: '10.244.2.0/24', publicIp: '192.0.2.12', vtepMac: '02:00:00:00:00:02' },
    { name: 'node4', podCidr: '', publicIp: '192.0.2.14' },
  ],
});

/** The kernel exactly as desired: what an intact node's observeNetwork() returns. */
function intact(inp: NetworkInput): ObservedNetwork {
  const d = desiredNetwork(inp);
  return {
    links: [], addrs: [],
    routes: d.routes.map((r) => ({ dst: r.dst, gateway: r.gateway, ifname: r.ifname, onlink: r.onlink })),
    neighs: d.neighs.map((n) => ({ ...n, mac: n.mac.toUpperCase() })),
    fdb: d.fdb.map((e) => ({ ...e })),
  };
}

t.test('an intact vxlan node: every entry present, sorted by peer, unreachable peers listed', async (t) => {
  const inp = input('vxlan');
  const a = peerDiff(inp, desiredNetwork(inp), intact(inp));
  t.equal(a.node, 'node1');
  t.equal(a.backend, 'vxlan');
  t.same(a.peers.map((p) => p.name), ['node2', 'node3']);
  const p = a.peers[0]!;
  t.same(p, {
    name: 'node2', podCidr: '10.244.2.0/24', underlayIp: '192.0.2.12', vtepMac: '02:00:00:00:00:02', mode: 'vxlan',
    route: { status: 'present', desired: { dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'podwire.1', onlink: true }, present: { dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'podwire.1', onlink: true }, detail: null },
    neighbour: { status: 'present', desired: { ip: '10.244.2.0', lladdr: '02:00:00:00:00:02', dev: 'podwire.1' }, present: { ip: '10.244.2.0', lladdr: '02:00:00:00:00:02', dev: 'podwire.1' }, detail: null },
    fdb: { status: 'present', desired: { mac: '02:00:00:00:00:02', dst: '192.0.2.12', dev: 'podwire.1' }, present: { mac: '02:00:00:00:00:02', dst: '192.0.2.12', dev: 'podwire.1' }, detail: null },
  });
  t.same(a.unreachable, [{ name: 'node4', why: 'no podCIDR yet' }]);
});

t.test('missing and stale entries say what differs', async (t) => {
  const inp = input('vxlan');
  const obs = intact(inp);
  obs.routes = obs.routes.filter((r) => r.dst !== '10.244.2.0/24');
  obs.routes[0] = { ...obs.routes[0]!, gateway: '10.244.9.0' };
  obs.neighs = obs.neighs.map((n) => (n.ip === '10.244.2.0' ? { ...n, mac: '02:00:00:00:00:99' } : n));
  obs.fdb = obs.fdb.filter((e) => e.mac !== '02:00:00:00:00:03');
  obs.fdb.push({ ifname: 'podwire.1', mac: '02:00:00:00:00:02', dst: '192.0.2.99' });
  const [n2, n3] = peerDiff(inp, desiredNetwork(inp), obs).peers;
  t.equal(n2!.route.status, 'missing');
  t.equal(n2!.route.present, null);
  t.equal(n2!.route.detail, null);
  t.equal(n2!.neighbour!.status, 'stale');
  t.equal(n2!.neighbour!.detail, 'lladdr 02:00:00:00:00:99 (want 02:00:00:00:00:02)');
  t.equal(n2!.fdb!.status, 'stale', 'an extra FDB entry for the same MAC is stale');
  t.equal(n2!.fdb!.detail, 'dst 192.0.2.99 (want 192.0.2.12 only)');
  t.equal(n3!.route.status, 'stale');
  t.equal(n3!.route.detail, 'via 10.244.9.0 (want 10.244.3.0)');
  t.equal(n3!.route.present!.gateway, '10.244.9.0');
  t.equal(n3!.fdb!.status, 'missing');
  t.equal(n3!.neighbour!.status, 'present');
});

t.test('two routes to one dst, a wrong FDB dst only', async (t) => {
  const inp = input('vxlan');
  const obs = intact(inp);
  obs.routes.push({ dst: '10.244.2.0/24', gateway: '192.0.2.12', ifname: 'eth0', onlink: false });
  obs.fdb = obs.fdb.map((e) => (e.mac === '02:00:00:00:00:03' ? { ...e, dst: '198.51.100.99' } : e));
  const [n2, n3] = peerDiff(inp, desiredNetwork(inp), obs).peers;
  t.equal(n2!.route.status, 'stale');
  t.equal(n2!.route.detail, '2 routes to 10.244.2.0/24 (want one)');
  t.equal(n3!.fdb!.status, 'stale');
  t.equal(n3!.fdb!.present!.dst, '198.51.100.99');
  t.equal(n3!.fdb!.detail, 'dst 198.51.100.99 (want 198.51.100.13)');
});

t.test('auto: the on-link peer is direct (no neighbour, no FDB), the other vxlan', async (t) => {
  const inp = input('auto');
  const a = peerDiff(inp, desiredNetwork(inp), intact(inp));
  const [n2, n3] = a.peers;
  t.equal(n2!.mode, 'direct');
  t.same(n2!.route.desired, { dst: '10.244.2.0/24', gateway: '192.0.2.12', dev: 'eth0', onlink: false });
  t.equal(n2!.route.status, 'present');
  t.equal(n2!.neighbour, null);
  t.equal(n2!.fdb, null);
  t.equal(n3!.mode, 'vxlan');
  const missing = peerDiff(inp, desiredNetwork(inp), { links: [], addrs: [], routes: [], neighs: [], fdb: [] });
  t.same(missing.peers.map((p) => [p.route.status, p.neighbour?.status ?? null, p.fdb?.status ?? null]), [['missing', null, null], ['missing', 'missing', 'missing']]);
});

t.test('host-gw: the off-subnet peer is unreachable, not a peer entry', async (t) => {
  const inp = input('host-gw');
  const a = peerDiff(inp, desiredNetwork(inp), intact(inp));
  t.same(a.peers.map((p) => p.name), ['node2']);
  t.same(a.unreachable.map((u) => u.name), ['node3', 'node4']);
});
