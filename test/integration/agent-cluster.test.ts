// The whole thing in the netns lab: control plane, one agent per node, pods made by the CNI
// plugin. Per backend: pod↔pod across nodes (TCP both ways, ICMP) and pod→outside masqueraded to
// the node address. Then, on one VXLAN cluster: agent kill -9 and restart during a long TCP flow
// (the flow survives, nothing is recreated), control plane down (the data plane keeps working),
// a node joining (reachable within 2 s of registering), a node leaving (its routes, FDB and
// neighbours go away on the others), and stale objects under our ownership removed while
// foreign ones stay.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { execInNetns, spawnInNetns } from '../../src/netns/exec.js';
import { clusterConnectivity } from '../../src/lab/cluster-probes.js';
import {
  addPod, agentStatus, BIN, LAB_CNI_PLUGIN, restartAgent, restartControlPlane, startAgent, waitAgentSynced, waitFor, type ClusterNode, type LabCluster,
} from '../../src/lab/cluster.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { Node } from '../../src/api/objects.js';

const haveIperf = spawnSync('iperf3', ['--version'], { stdio: 'ignore' }).status === 0;
const ip = (ns: string, args: string[]) => JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }) || '[]');
const bridgeFdb = (ns: string) => JSON.parse(execFileSync('ip', ['netns', 'exec', ns, 'bridge', '-j', 'fdb', 'show', 'dev', 'podwire.1'], { encoding: 'utf8' }) || '[]');
const ifindex = (ns: string, dev: string): number => ip(ns, ['link', 'show', 'dev', dev])[0].ifindex;
const nftHandles = (ns: string): string => execFileSync('ip', ['netns', 'exec', ns, 'nft', '-a', 'list', 'chain', 'inet', 'podwire', 'pod-masquerade'], { encoding: 'utf8' }).replace(/counter packets \d+ bytes \d+/g, '');

for (const backend of ['vxlan', 'host-gw', 'auto'] as const) {
  t.test(`${backend}: pods reach each other across nodes and the outside host through masquerade`, { skip: SKIP_NOT_ROOT }, async (t) => {
    const c = await withCluster(t, { nodes: 3, backend, podsPerNode: 1 });
    const results = await clusterConnectivity(c);
    const failed = results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}: ${r.detail}`);
    t.same(failed, [], `all ${results.length} TCP paths (pod↔pod keeps the pod IP, pod→outside seen as the node IP)`);
    const [a, b] = c.pods;
    const ping = await execInNetns(a!.netns, 'ping', ['-c', '2', '-W', '2', '-i', '0.2', b!.ip], { timeoutMs: 10_000 });
    t.equal(ping.code, 0, `ICMP ${a!.name} -> ${b!.name} across nodes`);
    const mtu = ip(c.nodes[0]!.netns, ['link', 'show', 'dev', 'cni0'])[0].mtu;
    t.equal(mtu, backend === 'host-gw' ? 1500 : 1450, `cni0 MTU follows the backend (${mtu})`);
  });
}

function iperf(c: LabCluster, seconds: number): { done: Promise<{ code: number | null; out: string }> } {
  const [client, server] = [c.pods[0]!, c.pods[1]!];
  c.lab.spawn(server.netns, 'iperf3', ['-s', '-1', '-p', '5201'], { stdio: 'ignore' });
  const done = new Promise<{ code: number | null; out: string }>((resolve) => {
    setTimeout(() => {
      const child = spawnInNetns(client.netns, 'iperf3', ['-c', server.ip, '-p', '5201', '-t', String(seconds), '-i', '1', '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    }, 300);
  });
  return { done };
}

t.test('vxlan cluster: agent restart, control plane outage, node join and leave, stale objects', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 4, startNodes: 3, backend: 'vxlan', podsPerNode: 1 });
  const [n1, n2] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];

  await t.test('the lab\'s pods were set up through their node\'s agent (the native CNI client\'s fast path)', { skip: LAB_CNI_PLUGIN === BIN.cniClient ? false : 'the native CNI client is not built' }, async (t) => {
    for (const n of c.nodes) {
      const pods = c.pods.filter((p) => p.node === n.name).length;
      const st = await agentStatus(n);
      t.ok(st.cni && st.cni.requests >= pods && st.cni.failed === 0, `${n.name}: ${pods} pods, the agent ran ${st.cni?.requests} CNI requests, ${st.cni?.failed} failed`);
    }
  });

  await t.test('agent kill -9 + restart during a TCP flow: the flow survives, nothing is recreated', { skip: haveIperf ? false : 'iperf3 missing' }, async (t) => {
    const before = { cni0: ifindex(n1.netns, 'cni0'), vxlan: ifindex(n1.netns, 'podwire.1'), nft: nftHandles(n1.netns), routes: ip(n1.netns, ['route', 'show', 'proto', '158']) };
    const flow = iperf(c, 5);
    await new Promise((r) => setTimeout(r, 1500));
    n1.agent.kill('SIGKILL');
    await new Promise((r) => n1.agent.once('exit', r));
    restartAgent(c, n1);
    const st = await waitAgentSynced(n1, 2);
    t.same(st.lastSync?.steps, [], 'the restarted agent found nothing to change (adopted the kernel state)');
    const { code, out } = await flow.done;
    t.equal(code, 0, 'iperf3 finished without error');
    const report = JSON.parse(out);
    const intervals: number[] = report.intervals.map((i: { sum: { bytes: number } }) => i.sum.bytes);
    t.ok(intervals.length >= 4 && intervals.every((b) => b > 0), `data moved in every second of the flow (${intervals.map((b) => Math.round(b / 1e6)).join(', ')} MB)`);
    t.same({ cni0: ifindex(n1.netns, 'cni0'), vxlan: ifindex(n1.netns, 'podwire.1'), nft: nftHandles(n1.netns), routes: ip(n1.netns, ['route', 'show', 'proto', '158']) }, before, 'same ifindexes, same nft rule handles, same routes');
  });

  await t.test('control plane down: the data plane keeps working; agents reconnect when it returns', async (t) => {
    c.controlPlane.child.kill('SIGKILL');
    await new Promise((r) => c.controlPlane.child.once('exit', r));
    const results = await clusterConnectivity(c);
    t.same(results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}: ${r.detail}`), [], 'every path still works');
    await waitFor('agents notice the outage', async () => (await agentStatus(n1)).controlPlane === 'unreachable', 20_000);
    await restartControlPlane(c);
    await waitFor('agents reconnect', async () => (await agentStatus(n1)).controlPlane === 'connected', 20_000);
    t.pass('agent on node1 reconnected');
  });

  await t.test('a node joins: reachable from the others within 2 s of registering', async (t) => {
    const labNode = c.lab.nodes[3]!;
    const started = Date.now();
    const n4 = await startAgent(c.lab, c.admin, labNode, c.dir, 'vxlan');
    c.nodes.push(n4);
    const registered: number = await waitFor('node4 registered', async () => ((await c.admin.get<Node>({ plural: 'nodes', name: 'node4' }).catch(() => undefined))?.spec.podCIDR ? Date.now() : undefined));
    await Promise.all(c.nodes.slice(0, 3).map((n) => waitAgentSynced(n, 3, 5000)));
    const converged = Date.now() - registered;
    t.ok(converged < 2000, `the other agents routed node4 ${converged} ms after it registered (agent start to registration: ${registered - started} ms)`);
    await waitAgentSynced(n4, 3);
    c.pods.push(await addPod(c.lab, n4, 1));
    const results = await clusterConnectivity(c);
    t.same(results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}: ${r.detail}`), [], 'node4 pod reaches and is reached by all');
  });

  await t.test('a node leaves: its route, neighbour and FDB entry go away on the others', async (t) => {
    const n4 = c.nodes[3]!;
    const node4 = await c.admin.get<Node>({ plural: 'nodes', name: 'node4' });
    const podCidr = node4.spec.podCIDR!;
    const mac = node4.metadata.annotations!['podwire.io/vtep-mac']!;
    t.ok(ip(n1.netns, ['route', 'show', 'proto', '158']).some((r: { dst: string }) => r.dst === podCidr), 'node1 routes node4 first');
    n4.agent.kill('SIGKILL');
    c.pods = c.pods.filter((p) => p.node !== 'node4');
    await c.admin.delete({ plural: 'nodes', name: 'node4' });
    for (const n of c.nodes.slice(0, 3)) {
      await waitFor(`${n.name} forgets node4`, () => {
        const route = ip(n.netns, ['route', 'show', 'proto', '158']).some((r: { dst: string }) => r.dst === podCidr);
        const fdb = bridgeFdb(n.netns).some((e: { mac: string }) => e.mac === mac);
        const neigh = ip(n.netns, ['neigh', 'show', 'dev', 'podwire.1']).some((e: { lladdr?: string }) => e.lladdr === mac);
        return !route && !fdb && !neigh;
      }, 5000);
    }
    t.pass('route, FDB and neighbour of node4 removed on node1..3');
  });

  await t.test('stale objects under our ownership are removed; foreign ones stay', async (t) => {
    const ns = n2.netns;
    execFileSync('ip', ['-n', ns, 'route', 'add', '10.244.99.0/24', 'via', '10.244.99.0', 'dev', 'podwire.1', 'onlink', 'proto', '158']);
    execFileSync('ip', ['-n', ns, 'neigh', 'replace', '10.244.99.0', 'lladdr', '0e:00:00:00:99:99', 'dev', 'podwire.1', 'nud', 'permanent']);
    execFileSync('ip', ['netns', 'exec', ns, 'bridge', 'fdb', 'append', '0e:00:00:00:99:99', 'dev', 'podwire.1', 'dst', '192.0.2.99']);
    execFileSync('ip', ['-n', ns, 'route', 'add', '10.99.0.0/24', 'dev', 'eth0']);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', 'add table ip other; add chain ip other post { type nat hook postrouting priority 100; }; add rule ip other post counter']);
    // A node change the network plan reads makes every agent sync (a label would not): node1
    // gains an ExternalIP (its peers still tunnel to its podwire.io/public-ip).
    const node1 = await c.admin.get<Node>({ plural: 'nodes', name: 'node1' });
    await c.admin.update({ plural: 'nodes', name: 'node1' }, { ...node1, status: { ...node1.status, addresses: [...(node1.status?.addresses ?? []), { type: 'ExternalIP', address: '198.51.100.11' }] } });
    await waitFor('the stale route is removed', () => !ip(ns, ['route', 'show', 'proto', '158']).some((r: { dst: string }) => r.dst === '10.244.99.0/24'), 5000);
    await waitFor('the stale neighbour and FDB entry are removed', () => !bridgeFdb(ns).some((e: { mac: string }) => e.mac === '0e:00:00:00:99:99') && !ip(ns, ['neigh', 'show', 'dev', 'podwire.1']).some((e: { dst: string }) => e.dst === '10.244.99.0'), 5000);
    t.ok(ip(ns, ['route', 'show', '10.99.0.0/24']).length === 1, 'a route of another protocol is untouched');
    t.match(execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'other'], { encoding: 'utf8' }), /chain post/, 'a foreign nft table is untouched');
  });
});
