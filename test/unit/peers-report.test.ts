// `podwire peers` / `podwire routes`, pure (src/cli/debug/peers.ts): agent answers → the report
// (the -o json fields documented in src/cli/README.md), both tables, and the exit code.
import t from 'tap';
import { painter } from '../../src/cli/debug/output.js';
import { buildPeersReport, peersExitCode, renderPeers, renderRoutes, type NodeAnswer, type PeerView } from '../../src/cli/debug/peers.js';

const plain = painter(false);

function vxlanPeer(name: string, n: number, over: Partial<PeerView> = {}): PeerView {
  const route = { dst: `10.244.${n}.0/24`, gateway: `10.244.${n}.0`, dev: 'podwire.1', onlink: true };
  const neigh = { ip: `10.244.${n}.0`, lladdr: `02:00:00:00:00:0${n}`, dev: 'podwire.1' };
  const fdb = { mac: `02:00:00:00:00:0${n}`, dst: `192.0.2.1${n}`, dev: 'podwire.1' };
  return {
    name, podCidr: `10.244.${n}.0/24`, underlayIp: `192.0.2.1${n}`, vtepMac: `02:00:00:00:00:0${n}`, mode: 'vxlan',
    route: { status: 'present', desired: route, present: route, detail: null },
    neighbour: { status: 'present', desired: neigh, present: neigh, detail: null },
    fdb: { status: 'present', desired: fdb, present: fdb, detail: null },
    ...over,
  };
}

const ok = (node: string, peers: PeerView[], unreachable: { name: string; why: string }[] = []): NodeAnswer => ({ node, ok: true, answer: { node, backend: 'vxlan', peers, unreachable } });

t.test('healthy: exit 0, the JSON fields, both tables', async (t) => {
  const r = buildPeersReport([ok('node1', [vxlanPeer('node2', 2)]), ok('node2', [vxlanPeer('node1', 1)])]);
  t.same(Object.keys(r).sort(), ['healthy', 'nodes']);
  t.equal(r.healthy, true);
  t.same(Object.keys(r.nodes[0]!).sort(), ['agent', 'backend', 'error', 'node', 'peers', 'problems', 'unreachable']);
  t.equal(peersExitCode(r), 0);
  const table = renderPeers(r, 'table', plain);
  t.match(table, /^NODE\s+PEER\s+MODE\s+PODCIDR\s+UNDERLAY\s+VTEP-MAC\s+ROUTE\s+NEIGH\s+FDB$/m);
  t.match(table, /^node1\s+node2\s+vxlan\s+10\.244\.2\.0\/24\s+192\.0\.2\.12\s+02:00:00:00:00:02\s+present\s+present\s+present$/m);
  t.match(table, /2 nodes, 2 peer entries: all present$/);
  t.match(renderPeers(r, 'wide', plain), /present\s+via 10\.244\.2\.0 dev podwire\.1 onlink$/m);
  const routes = renderRoutes(r, 'table', plain);
  t.match(routes, /^NODE\s+DST\s+PEER\s+DESIRED\s+STATUS$/m);
  t.match(routes, /^node2\s+10\.244\.1\.0\/24\s+node1\s+via 10\.244\.1\.0 dev podwire\.1 onlink\s+present$/m);
  t.notMatch(table, /\x1b\[/);
  t.match(renderPeers(r, 'table', painter(true)), /\x1b\[32mpresent\x1b\[0m/, 'colour only when enabled');
});

t.test('a missing route and a stale neighbour: exit 1 with the problems named', async (t) => {
  const p = vxlanPeer('node2', 2);
  p.route = { ...p.route, status: 'missing', present: null };
  p.neighbour = { ...p.neighbour!, status: 'stale', present: { ...p.neighbour!.desired, lladdr: '02:00:00:00:00:99' }, detail: 'lladdr 02:00:00:00:00:99 (want 02:00:00:00:00:02)' };
  const r = buildPeersReport([ok('node1', [p])]);
  t.equal(r.healthy, false);
  t.equal(peersExitCode(r), 1);
  t.same(r.nodes[0]!.problems, [
    'node1: route 10.244.2.0/24 via 10.244.2.0 dev podwire.1 for peer node2 is missing',
    'node1: neighbour 10.244.2.0 lladdr 02:00:00:00:00:02 for peer node2 is stale: lladdr 02:00:00:00:00:99 (want 02:00:00:00:00:02)',
  ]);
  const routes = renderRoutes(r, 'wide', plain);
  t.match(routes, /^node1\s+10\.244\.2\.0\/24\s+node2\s+via 10\.244\.2\.0 dev podwire\.1 onlink\s+missing\s+-\s+-$/m);
  t.match(routes, /1 node, 1 peer entry: 2 problems\n {2}node1: route 10\.244\.2\.0\/24/);
});

t.test('a direct peer and an unreachable one', async (t) => {
  const route = { dst: '10.244.2.0/24', gateway: '192.0.2.12', dev: 'eth0', onlink: false };
  const direct: PeerView = { name: 'node2', podCidr: '10.244.2.0/24', underlayIp: '192.0.2.12', vtepMac: null, mode: 'direct', route: { status: 'present', desired: route, present: route, detail: null }, neighbour: null, fdb: null };
  const r = buildPeersReport([ok('node1', [direct], [{ name: 'node3', why: 'no podCIDR yet' }])]);
  t.equal(peersExitCode(r), 1, 'a peer without a route is a problem');
  t.same(r.nodes[0]!.problems, ['node1: peer node3 gets no route: no podCIDR yet']);
  const table = renderPeers(r, 'table', plain);
  t.match(table, /^node1\s+node2\s+direct\s+10\.244\.2\.0\/24\s+192\.0\.2\.12\s+-\s+present\s+-\s+-$/m);
  t.match(table, /^node1\s+node3\s+no route/m);
});

t.test('an agent down: exit 3, even with other problems; an agent error: exit 1', async (t) => {
  const p = vxlanPeer('node2', 2, {});
  p.fdb = { ...p.fdb!, status: 'missing', present: null };
  const down = buildPeersReport([ok('node1', [p]), { node: 'node2', ok: false, reached: false, error: 'cannot reach the agent of node2: no socket' }]);
  t.equal(peersExitCode(down), 3);
  t.same(down.nodes[1], { node: 'node2', agent: 'down', backend: null, peers: [], unreachable: [], error: 'cannot reach the agent of node2: no socket', problems: ['node2: cannot reach the agent of node2: no socket'] });
  t.match(renderPeers(down, 'table', plain), /^node2\s+agent down/m);
  const err = buildPeersReport([{ node: 'node1', ok: false, reached: true, error: 'the agent of node1 answered 503: not registered' }]);
  t.equal(err.nodes[0]!.agent, 'up');
  t.equal(peersExitCode(err), 1);
  t.match(renderRoutes(err, 'table', plain), /^node1\s+error/m);
});
