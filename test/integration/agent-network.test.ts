// The agent's network core against the real kernel: on a 3-node lab, desired → observe → plan →
// apply builds a pod network (vxlan, host-gw, and switches between them) that carries pod↔pod
// traffic both ways; a second plan is empty; re-applying a full build keeps ifindexes; stale
// protocol-158 objects go while foreign routes stay; a removed peer loses its route/neigh/FDB.
// Oracles are `ip -j` / `bridge -j`, independent of our netlink code.
import t, { type Test } from 'tap';
import { Handle } from '../../src/netlink/handle.js';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { createNetns, openNetns } from '../../src/netns/netns.js';
import { sysctlSet } from '../../src/netns/sysctl.js';
import { execInNetns } from '../../src/netns/exec.js';
import { desiredNetwork, vtepMacFor } from '../../src/agent/network/desired.js';
import { observeNetwork } from '../../src/agent/network/observe.js';
import { describeStep, plan } from '../../src/agent/network/plan.js';
import { applySteps } from '../../src/agent/network/apply.js';
import { ROUTE_PROTOCOL, type NetworkInput, type Step, type UnderlayInfo } from '../../src/agent/network/types.js';
import type { Backend } from '../../src/api/objects.js';
import { bridgeJson, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';

interface NodeCtx {
  node: LabNode;
  i: number;
  h: Handle;
  underlay: UnderlayInfo;
  podNs: string;
}

const podIp = (i: number) => `10.244.${i}.2`;

/** A lab whose node handles are closed and namespaces removed however the test ends. */
function setUp(t: Test): { lab: Lab; nodes: NodeCtx[]; finish: () => string[] } {
  const lab = Lab.create({ nodes: 3 });
  const nodes: NodeCtx[] = [];
  let done = false;
  const finish = () => {
    if (done) return [];
    done = true;
    for (const n of nodes) n.h.close();
    return lab.destroy();
  };
  t.teardown(finish);
  lab.nodes.forEach((node, k) => {
    const h = Handle.open({ netns: node.netns });
    const eth = h.linkGet(node.underlayIf);
    const underlay = { ifname: eth.name, ifindex: eth.index, ip: node.underlayIp, cidr: node.underlayCidr, mtu: eth.mtu };
    nodes.push({ node, i: k + 1, h, underlay, podNs: `${lab.prefix}pod${k + 1}` });
    sysctlSet(node.netns, 'net.ipv4.ip_forward', 1);
  });
  return { lab, nodes, finish };
}

function inputFor(n: NodeCtx, all: NodeCtx[], backend: Backend, skip: string[] = []): NetworkInput {
  const peers = all
    .filter((p) => p !== n && !skip.includes(p.node.name))
    .map((p) => ({ name: p.node.name, podCidr: `10.244.${p.i}.0/24`, publicIp: p.node.underlayIp, vtepMac: vtepMacFor(p.node.name) }));
  return {
    nodeName: n.node.name, underlay: n.underlay, podCidr: `10.244.${n.i}.0/24`, clusterCidr: '10.244.0.0/16',
    backend, vni: 1, vxlanPort: 8472, vtepMac: vtepMacFor(n.node.name), peers,
  };
}

const planFor = (n: NodeCtx, input: NetworkInput): Step[] => plan(desiredNetwork(input), observeNetwork(n.h, n.underlay));

/** One reconcile pass; fails the test on any step error. */
function sync(t: Test, n: NodeCtx, input: NetworkInput, steps = planFor(n, input)): string[] {
  const result = applySteps(n.h, steps, n.underlay);
  t.same(result.errors.map((e) => `${e.text}: ${e.error.message}`), [], `${n.node.name}: ${steps.length} steps applied without error`);
  t.equal(result.applied, steps.length);
  return steps.map(describeStep);
}

/** A pod-like netns behind cni0: veth, an address from the node's podCIDR, default via the gateway. */
function addPod(n: NodeCtx, mtu: number): void {
  createNetns(n.podNs); // the lab's prefix: Lab.destroy() removes it too
  const ref = openNetns(n.podNs);
  try {
    n.h.linkAdd({ kind: 'veth', name: `vpod${n.i}`, mtu, peer: { name: 'eth0', netnsFd: ref.fd, mtu } });
  } finally {
    ref.close();
  }
  n.h.linkSet(`vpod${n.i}`, { masterIndex: n.h.ifindex('cni0'), up: true });
  const pod = Handle.open({ netns: n.podNs });
  try {
    pod.linkSet('lo', { up: true });
    const eth0 = pod.ifindex('eth0');
    pod.addrAdd({ ifindex: eth0, cidr: `${podIp(n.i)}/24` });
    pod.linkSet(eth0, { up: true });
    pod.routeAdd({ dst: 'default', gateway: `10.244.${n.i}.1` });
  } finally {
    pod.close();
  }
}

async function pingAll(t: Test, nodes: NodeCtx[], what: string): Promise<void> {
  for (const a of nodes) {
    for (const b of nodes.filter((x) => x !== a)) {
      const r = await execInNetns(a.podNs, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', podIp(b.i)]);
      t.equal(r.code, 0, `${what}: pod${a.i} → pod${b.i} (${r.stdout.split('\n').filter(Boolean).slice(-2).join('; ')})`);
    }
  }
}

const linkIndexes = (n: NodeCtx) => ipJson(n.node.netns, ['link', 'show']).filter((l: any) => ['cni0', 'podwire.1'].includes(l.ifname)).map((l: any) => `${l.ifname}#${l.ifindex}`);

t.test('agent network, vxlan: build, traffic, idempotence, stale objects, peer removal', { skip: SKIP_NOT_ROOT }, async (t) => {
  const { nodes, finish } = setUp(t);
  for (const n of nodes) t.ok(sync(t, n, inputFor(n, nodes, 'vxlan')).length > 0);
  for (const n of nodes) addPod(n, 1450);
  await pingAll(t, nodes, 'vxlan');

  const [n1, n2] = nodes;
  const vx = ipJson(n1.node.netns, ['link', 'show', 'dev', 'podwire.1'])[0];
  t.same([vx.address, vx.mtu, vx.linkinfo.info_data.id, vx.linkinfo.info_data.port, vx.linkinfo.info_data.learning], [vtepMacFor('node1'), 1450, 1, 8472, false]);
  const route = ipJson(n1.node.netns, ['route', 'show', '10.244.2.0/24'])[0];
  t.same([route.gateway, route.dev, String(route.protocol), route.flags], ['10.244.2.0', 'podwire.1', String(ROUTE_PROTOCOL), ['onlink']]);
  t.ok(bridgeJson(n1.node.netns, ['fdb', 'show', 'dev', 'podwire.1']).some((e: any) => e.mac === vtepMacFor('node2') && e.dst === n2.node.underlayIp));

  for (const n of nodes) t.same(planFor(n, inputFor(n, nodes, 'vxlan')), [], `${n.node.name}: second plan is empty`);
  const before = linkIndexes(n1);
  sync(t, n1, inputFor(n1, nodes, 'vxlan'), plan(desiredNetwork(inputFor(n1, nodes, 'vxlan')), { links: [], addrs: [], routes: [], neighs: [], fdb: [] }));
  t.same(linkIndexes(n1), before, 're-applying a full build on an intact kernel keeps every ifindex');

  // Stale objects of a peer that is gone, and a route that is not ours.
  const vxIndex = n1.h.ifindex('podwire.1');
  n1.h.routeReplace({ dst: '10.244.99.0/24', gateway: '10.244.99.0', ifindex: vxIndex, onlink: true, protocol: ROUTE_PROTOCOL });
  n1.h.neighReplace({ ifindex: vxIndex, ip: '10.244.99.0', mac: '02:00:00:00:99:99' });
  n1.h.fdbAppend({ ifindex: vxIndex, mac: '02:00:00:00:99:99', dst: '192.0.2.99' });
  run(n1.node.netns, 'ip', ['route', 'add', '10.99.0.0/24', 'dev', 'eth0']);
  t.same(sync(t, n1, inputFor(n1, nodes, 'vxlan')), [
    'route del 10.244.99.0/24', 'neigh del 10.244.99.0 dev podwire.1', 'fdb del 02:00:00:00:99:99 dev podwire.1 dst 192.0.2.99',
  ]);
  t.same(ipJson(n1.node.netns, ['route', 'show', '10.244.99.0/24']), [], 'stale protocol-158 route removed');
  t.equal(ipJson(n1.node.netns, ['route', 'show', '10.99.0.0/24']).length, 1, 'foreign route untouched');
  t.same(planFor(n1, inputFor(n1, nodes, 'vxlan')), []);
  const again = applySteps(n1.h, [
    { op: 'routeDel', dst: '10.244.99.0/24' }, { op: 'neighDel', ifname: 'podwire.1', ip: '10.244.99.0' },
    { op: 'fdbDel', ifname: 'podwire.1', mac: '02:00:00:00:99:99', dst: '192.0.2.99' },
  ], n1.underlay);
  t.same([again.applied, again.errors], [3, []], 'deleting what is already gone counts as done');

  // A failing step does not stop independent ones; steps on a device that could not be made are skipped.
  const mixed = applySteps(n1.h, [
    { op: 'vxlanAdd', name: 'podwire.9', vni: 9, port: 8472, local: n1.node.underlayIp, devIfname: 'nosuchdev', mtu: 1450, mac: '02:00:00:00:00:09' },
    { op: 'addrAdd', ifname: 'podwire.9', cidr: '10.244.1.0/32' },
    { op: 'routeReplace', route: { dst: '10.244.50.0/24', gateway: n2.node.underlayIp, ifname: 'eth0', onlink: false } },
  ], n1.underlay);
  t.equal(mixed.applied, 1);
  t.same(mixed.errors.map((e) => [e.step.op, e.code ?? 'skipped']), [['vxlanAdd', 'ENODEV'], ['addrAdd', 'skipped']]);
  t.match(mixed.errors[1].error.message, /skipped: podwire\.9 could not be created/);
  t.same(sync(t, n1, inputFor(n1, nodes, 'vxlan')), ['route del 10.244.50.0/24'], 'the next pass removes the extra route');

  const without3 = inputFor(n1, nodes, 'vxlan', ['node3']);
  t.same(sync(t, n1, without3), ['route del 10.244.3.0/24', 'neigh del 10.244.3.0 dev podwire.1', `fdb del ${vtepMacFor('node3')} dev podwire.1 dst ${nodes[2].node.underlayIp}`]);
  t.same(ipJson(n1.node.netns, ['route', 'show', '10.244.3.0/24']), []);
  t.same(ipJson(n1.node.netns, ['neigh', 'show', '10.244.3.0', 'dev', 'podwire.1']), []);
  t.notOk(bridgeJson(n1.node.netns, ['fdb', 'show', 'dev', 'podwire.1']).some((e: any) => e.mac === vtepMacFor('node3')));
  t.same(planFor(n1, without3), []);
  t.same(finish(), [], 'no namespace or process left');
});

t.test('agent network, host-gw: build, traffic, then switch to vxlan and back', { skip: SKIP_NOT_ROOT }, async (t) => {
  const { nodes, finish } = setUp(t);
  for (const n of nodes) sync(t, n, inputFor(n, nodes, 'host-gw'));
  for (const n of nodes) addPod(n, 1500);
  await pingAll(t, nodes, 'host-gw');
  const [n1, n2] = nodes;
  const route = ipJson(n1.node.netns, ['route', 'show', '10.244.2.0/24'])[0];
  t.same([route.gateway, route.dev, String(route.protocol)], [n2.node.underlayIp, 'eth0', String(ROUTE_PROTOCOL)]);
  t.same(ipJson(n1.node.netns, ['link', 'show', 'type', 'vxlan']), [], 'no vxlan device with host-gw');
  for (const n of nodes) t.same(planFor(n, inputFor(n, nodes, 'host-gw')), [], `${n.node.name}: second plan is empty`);

  for (const n of nodes) {
    const steps = sync(t, n, inputFor(n, nodes, 'vxlan'));
    t.ok(steps.some((s) => s.startsWith('link add podwire.1')) && steps.filter((s) => s.startsWith('route replace')).length === 2, `${n.node.name}: device added, routes moved`);
  }
  await pingAll(t, nodes, 'after switching to vxlan');
  for (const n of nodes) t.same(planFor(n, inputFor(n, nodes, 'vxlan')), []);

  for (const n of nodes) sync(t, n, inputFor(n, nodes, 'host-gw'));
  t.same(ipJson(n1.node.netns, ['link', 'show', 'type', 'vxlan']), [], 'device deleted when back on host-gw');
  await pingAll(t, nodes, 'back on host-gw');
  for (const n of nodes) t.same(planFor(n, inputFor(n, nodes, 'host-gw')), []);
  t.same(finish(), [], 'no namespace or process left');
});
