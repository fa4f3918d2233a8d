// The nftables service proxy end to end, in one 3-node VXLAN lab cluster (control plane, an agent
// per node, one echo pod per node made by the CNI plugin, plus a client pod on node1 and the
// "outside" host on the underlay). Every check goes through real sockets; the kernel's ruleset
// (`nft -j list table inet podwire`, conntrack) serves only as the "synced yet?" oracle and as a
// second opinion, never instead of traffic.
//
//   1. ClusterIP from a pod: 600 connections spread over 3 endpoints within a stated bound
//   2. NodePort from another node and from outside; LoadBalancer (spec.loadBalancerIP) and
//      externalIPs from outside, routed to a node in the outside netns only
//   3. ClientIP affinity: 50 connections, one endpoint (and without affinity, several)
//   4. externalTrafficPolicy Local: the client IP is kept, nodes without a local endpoint drop;
//      Cluster: masqueraded to a node address
//   5. no endpoints: TCP reset at once (ECONNREFUSED), never a timeout
//   6. hairpin: a pod reaching itself through its service
//   7. endpoint removed: a UDP flow moves on (conntrack cleaned), new TCP connections never reach it
//   8. foreign nft tables/chains and iptables rules in node1 survive everything byte-identical
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { addPod, agentStatus, createCluster, destroyCluster, restartAgent, waitAgentSynced, waitFor, type AgentStatus, type ClusterNode, type ClusterPod, type LabCluster } from '../../src/lab/cluster.js';
import type { Endpoints, Service } from '../../src/controlplane/objects.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { SHARED_PICK_MAX } from '../../src/proxy/nft/render.js';
import {
  createService, dnatTargets, inNetns, ipv4Addresses, labelPod, mapEntriesFor, mapVerdict, mergeSummaries, nftView, nodePortChain, nodePortTargets, patchService, probe, probeMany,
  checkExternalPaths, checkHairpinPorts, checkUdpFlowMoves, serviceIpTargets, waitRules, type ManySummary, type NftView,
} from '../lib/proxy-e2e.js';

const ECHO = 8080;
const LB_IP = '192.0.2.240';
const EXT_IP = '192.0.2.241';
const OUTSIDE = '192.0.2.250';
const UDP_PORT = 9000;
const haveUdpTools = ['socat', 'conntrack'].every((cmd) => spawnSync(cmd, ['-V'], { stdio: 'ignore' }).status === 0);

const sameList = (a: readonly string[] | undefined, b: readonly string[]) => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
const fmt = (s: ManySummary) => `ok ${s.ok}/${s.count}, names ${JSON.stringify(s.names)}, seen as ${JSON.stringify(s.seenAs)}${s.failed ? `, errors ${JSON.stringify(s.errors)}` : ''}, max ${s.maxMs} ms`;
const counters = (s: string) => s.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/\[\d+:\d+\]/g, '[0:0]');

// ---- Foreign rules in node1 (check 8) --------------------------------------------------------

const FOREIGN_NFT = `add table ip other
add chain ip other post { type nat hook postrouting priority 100; policy accept; }
add rule ip other post ip saddr 198.51.100.0/24 counter masquerade
add set ip other blocked { type ipv4_addr; elements = { 198.51.100.10 }; }
add chain ip other forward-filter { type filter hook forward priority 0; policy accept; }
add rule ip other forward-filter ip daddr @blocked counter drop
add rule ip other forward-filter counter
add chain inet podwire zz-foreign
add rule inet podwire zz-foreign ip daddr 198.51.100.11 counter
`;

const FOREIGN_IPTABLES = [
  ['-t', 'nat', '-N', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'PWTEST-FOREIGN', '-p', 'tcp', '-d', '198.51.100.7/32', '--dport', '80', '-j', 'DNAT', '--to-destination', '198.51.100.8:8080'],
  ['-t', 'nat', '-A', 'PREROUTING', '-d', '198.51.100.7/32', '-j', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE'],
];

function seedForeign(netns: string): void {
  inNetns(netns, 'nft', ['-f', '-'], FOREIGN_NFT);
  for (const args of FOREIGN_IPTABLES) inNetns(netns, 'iptables', args);
}

/** Everything that is not podwire's proxy, with handles (a re-created rule shows), counters blanked. */
function foreignSnapshot(netns: string): Record<string, string> {
  return {
    'nft table ip other': counters(inNetns(netns, 'nft', ['-a', 'list', 'table', 'ip', 'other'])),
    'nft table ip nat (iptables-nft)': counters(inNetns(netns, 'nft', ['-a', 'list', 'table', 'ip', 'nat'])),
    'iptables-save -t nat': counters(inNetns(netns, 'iptables-save', ['-t', 'nat']).split('\n').filter((l) => !l.startsWith('#')).join('\n')),
    'chain inet podwire zz-foreign': counters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'zz-foreign'])),
    'chain inet podwire pod-masquerade': counters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'pod-masquerade'])),
  };
}

// ---------------------------------------------------------------------------------------------

async function proxyErrors(c: LabCluster): Promise<string[]> {
  const out: string[] = [];
  for (const n of c.nodes) {
    const st = (await agentStatus(n)) as AgentStatus & { proxy?: { lastSync?: { error?: string } } };
    if (!st.proxy?.lastSync) out.push(`${n.name}: the proxy has not synced`);
    else if (st.proxy.lastSync.error) out.push(`${n.name}: ${st.proxy.lastSync.error}`);
  }
  return out;
}

t.test('nftables service proxy end to end in a 3-node lab cluster', { skip: SKIP_NOT_ROOT, timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const c = await createCluster({ nodes: 3, backend: 'vxlan', podsPerNode: 1 });
  t.teardown(() => {
    const leaks = destroyCluster(c);
    if (leaks.length) throw new Error(`lab leaked: ${leaks.join(', ')}`);
  });
  const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const podOn = (n: ClusterNode): ClusterPod => c.pods.find((p) => p.node === n.name)!;
  const [p1, p2, p3] = [podOn(n1), podOn(n2), podOn(n3)];
  const ep = (p: ClusterPod, port = ECHO) => `${p.ip}:${port}`;
  const allEps = c.pods.map((p) => ep(p)).sort();
  const echoNames = new Set(c.pods.map((p) => p.name));
  const notEcho = (s: ManySummary) => Object.keys(s.names).filter((n) => !echoNames.has(n));
  // A client pod that is no endpoint (addPod labels app=echo; relabelled before any service exists).
  const client = await addPod(c.lab, n1, 2);
  await labelPod(c, client.name, { app: 'client' });
  for (const p of c.pods) await labelPod(c, p.name, { pod: p.name, udp: 'yes' });
  const nodeAddrs = new Map(c.nodes.map((n) => [n.name, ipv4Addresses(n.netns)]));
  // Check 8 starts here: before any service.
  seedForeign(n1.netns);
  const foreignBefore = foreignSnapshot(n1.netns);
  t.comment(`cluster + client pod ready in ${Date.now() - t0} ms; pods ${c.pods.map((p) => `${p.name}=${p.ip}`).join(' ')}, client ${client.name}=${client.ip}`);

  const created = new Set<string>();
  const svc = async (name: string, spec: Service['spec']): Promise<Service> => {
    const s = await createService(c, name, { ports: [{ port: 80, targetPort: ECHO }], ...spec });
    created.add(name);
    return s;
  };
  let spread: Service | undefined;
  const spreadService = async (): Promise<Service> => {
    if (!spread) {
      spread = await svc('spread', { selector: { app: 'echo' } });
      const ip = spread.spec.clusterIP!;
      await waitRules(c, 'spread: 3 endpoints on every node', (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), allEps));
    }
    return spread;
  };
  const noProxyErrors = async (t: Test) => t.same(await proxyErrors(c), [], 'every agent\'s last proxy sync succeeded');

  await t.test('1. ClusterIP from a pod: 600 connections over 3 endpoints on 3 nodes, each gets 200 ± 52 (4.5 sigma of Binomial(600, 1/3))', async (t) => {
    const s = await spreadService();
    const target = `${s.spec.clusterIP}:80`;
    const started = Date.now();
    const batches: ManySummary[] = [];
    for (let i = 0; i < 3; i++) batches.push(await probeMany(c, client.netns, target, 200, { concurrency: 20 }));
    const sum = mergeSummaries(batches);
    t.comment(`600 connections in ${Date.now() - started} ms: ${fmt(sum)}`);
    t.equal(sum.ok, 600, `all 600 connections answered (errors ${JSON.stringify(sum.errors)})`);
    t.same(notEcho(sum), [], 'answered by echo pods only');
    for (const p of c.pods) {
      const n = sum.names[p.name] ?? 0;
      t.ok(n > 0, `${p.name} (${p.node}) got some connections`);
      t.ok(Math.abs(n - 200) <= 52, `${p.name} (${p.node}): ${n} of 600, within 148..252`);
    }
    t.same(Object.keys(sum.seenAs), [client.ip], 'pod → ClusterIP is not masqueraded: every server saw the client pod IP');
    await noProxyErrors(t);
  });

  await t.test('2. NodePort from another node and from outside; LoadBalancer IP and external IP from outside', async (t) => {
    const np = await svc('np', { type: 'NodePort', selector: { app: 'echo' } });
    const lb = await svc('lb', { type: 'LoadBalancer', loadBalancerIP: LB_IP, selector: { app: 'echo' } });
    const ext = await svc('ext', { externalIPs: [EXT_IP], selector: { app: 'echo' } });
    const npPort = np.spec.ports![0]!.nodePort!;
    t.ok(npPort >= 30000 && npPort <= 32767, `NodePort ${npPort} allocated`);
    await waitRules(c, 'NodePort, LB IP and external IP rules on every node', (v) => {
      return sameList(nodePortTargets(v, 'tcp', npPort), allEps) && sameList(serviceIpTargets(v, LB_IP, 'tcp', 80), allEps) && sameList(serviceIpTargets(v, EXT_IP, 'tcp', 80), allEps);
    });
    await checkExternalPaths(t, c, { nodePort: npPort, lbIp: LB_IP, extIp: EXT_IP, isEcho: (name) => echoNames.has(name), fmt });
    t.equal(lb.spec.type, 'LoadBalancer', 'the LB service kept its type');
    t.same(ext.spec.externalIPs, [EXT_IP], 'the external IP is in the spec');
    await noProxyErrors(t);
  });

  await t.test('3. ClientIP affinity: 50 connections from one client reach one endpoint; without affinity they do not', async (t) => {
    const aff = await svc('aff', { selector: { app: 'echo' }, sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
    const ip = aff.spec.clusterIP!;
    await waitRules(c, 'aff: 3 endpoints with affinity sets on every node', (v) => {
      const chain = mapVerdictGoto(v, `${ip} . tcp . 80`);
      return chain !== undefined && sameList(dnatTargets(v, chain), allEps) && JSON.stringify(v.chains.get(chain)).includes('"@aff-');
    });
    // One at a time: affinity is recorded by the first connection's NAT rule; concurrent first
    // connections may legitimately race to different endpoints.
    const s = await probeMany(c, client.netns, `${ip}:80`, 50, { concurrency: 1 });
    t.equal(s.ok, 50, `all 50 answered (${fmt(s)})`);
    t.equal(Object.keys(s.names).length, 1, `one endpoint served all of them: ${JSON.stringify(s.names)}`);
    // The kernel's affinity record on the client's node points at that same endpoint.
    const winner = c.pods.find((p) => p.name === Object.keys(s.names)[0]);
    t.equal(affinityEndpoint(n1.netns, ip, client.ip), winner ? ep(winner) : 'no echo pod', 'node1\'s affinity set for the client IP names the endpoint that answered');
    const spreadSvc = await spreadService();
    const without = await probeMany(c, client.netns, `${spreadSvc.spec.clusterIP}:80`, 50, { concurrency: 1 });
    t.equal(without.ok, 50, 'without affinity: all 50 answered');
    t.ok(Object.keys(without.names).length >= 2, `without affinity: several endpoints ${JSON.stringify(without.names)}`);
    await noProxyErrors(t);
  });

  await t.test('4. externalTrafficPolicy Local keeps the client IP and answers only where an endpoint is; Cluster masquerades', async (t) => {
    const loc = await svc('local', { type: 'NodePort', externalTrafficPolicy: 'Local', selector: { pod: p2.name } });
    const npPort = loc.spec.ports![0]!.nodePort!;
    const hasFib = (v: NftView) => {
      const chain = nodePortChain(v, 'tcp', npPort);
      return chain !== undefined && JSON.stringify(v.chains.get(chain) ?? []).includes('"fib"');
    };
    await waitRules(c, 'local: Local-policy rules on every node', (v) => sameList(serviceIpTargets(v, loc.spec.clusterIP!, 'tcp', 80), [ep(p2)]) && hasFib(v));
    const good = await probeMany(c, c.outside.netns, `${n2.underlayIp}:${npPort}`, 10, { concurrency: 2 });
    t.equal(good.ok, 10, `outside → node2 (has the endpoint): ${fmt(good)}`);
    t.same(good.names, { [p2.name]: 10 }, 'answered by the node2 pod');
    t.same(good.seenAs, { [OUTSIDE]: 10 }, `the pod saw the outside host's own address ${OUTSIDE} (not masqueraded)`);
    const bad = await probe(c, c.outside.netns, [`${n1.underlayIp}:${npPort}`, `${n3.underlayIp}:${npPort}`], 1500);
    for (const [i, node] of [n1, n3].entries()) {
      const a = bad[i]!;
      t.ok(!a.ok && a.name === undefined && /no answer within|ECONNREFUSED/.test(a.error ?? ''), `outside → ${node.name} (no local endpoint): not answered (${a.ok ? `answered by ${a.name}` : a.error}, ${a.ms} ms)`);
    }
    const fromNode = await probeMany(c, n1.netns, `${n1.underlayIp}:${npPort}`, 5, { concurrency: 1 });
    t.same(fromNode.names, { [p2.name]: 5 }, `node1 itself → its NodePort goes cluster-wide (${fmt(fromNode)})`);

    await patchService(c, 'local', { spec: { externalTrafficPolicy: 'Cluster' } });
    await waitRules(c, 'local → Cluster policy on every node', (v) => nodePortChain(v, 'tcp', npPort) !== undefined && !hasFib(v));
    for (const node of [n1, n2]) {
      const s = await probeMany(c, c.outside.netns, `${node.underlayIp}:${npPort}`, 10, { concurrency: 2 });
      const seen = Object.keys(s.seenAs);
      t.ok(s.ok === 10 && s.names[p2.name] === 10, `Cluster policy: outside → ${node.name} answered by ${p2.name}: ${fmt(s)}`);
      t.ok(seen.length > 0 && seen.every((a) => nodeAddrs.get(node.name)!.includes(a)), `Cluster policy via ${node.name}: source masqueraded to a ${node.name} address (${seen.join(', ')} in ${nodeAddrs.get(node.name)!.join(', ')})`);
    }
    await noProxyErrors(t);
  });

  await t.test('5. a service without endpoints refuses TCP at once (ECONNREFUSED well under 1 s), never a timeout', async (t) => {
    const none = await svc('none', { type: 'NodePort', selector: { app: 'nothing' } });
    const ip = none.spec.clusterIP!;
    const npPort = none.spec.ports![0]!.nodePort!;
    await waitRules(c, 'none: reject elements on every node', (v) =>
      mapEntriesFor(v, ip, npPort).sort().join() === [`svc-no-endpoint-nodeports: tcp . ${npPort}`, `svc-no-endpoints: ${ip} . tcp . 80`].join());
    // The reject sits in filter prerouting, so it answers before the routing decision: lab
    // nodes have no route covering the service CIDR (no default route at all), and a pod's SYN
    // must still be refused, not die in routing (kube-proxy's filter forward would miss it).
    t.notMatch(inNetns(n1.netns, 'ip', ['-4', 'route', 'show', 'default']), /default/, 'node1 has no default route');
    const runs: [string, string, string][] = [
      ['client pod → ClusterIP (node1 without a route to the service CIDR)', client.netns, `${ip}:80`],
      ['outside → node1 NodePort', c.outside.netns, `${n1.underlayIp}:${npPort}`],
      ['node2 → its own NodePort', n2.netns, `${n2.underlayIp}:${npPort}`],
    ];
    for (const [what, netns, target] of runs) {
      const s = await probeMany(c, netns, target, 5, { concurrency: 1, timeoutMs: 3000 });
      t.same(s.errors, { ECONNREFUSED: 5 }, `${what}: refused (${fmt(s)})`);
      t.ok(s.maxMs < 500, `${what}: refused within ${s.maxMs} ms (< 500 ms)`);
    }
    await noProxyErrors(t);
  });

  await t.test('6. hairpin: a pod reaches its own service when it is the only endpoint', async (t) => {
    const hp = await svc('hairpin', { selector: { pod: p1.name } });
    const ip = hp.spec.clusterIP!;
    await waitRules(c, 'hairpin: 1 endpoint on every node', (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), [ep(p1)]));
    checkHairpinPorts(t, n1.netns, 'node1');
    const s = await probeMany(c, p1.netns, `${ip}:80`, 5, { concurrency: 1 });
    t.same(s.names, { [p1.name]: 5 }, `${p1.name} → its own service answered by itself (${fmt(s)})`);
    const seen = Object.keys(s.seenAs);
    t.ok(seen.length > 0 && seen.every((a) => a !== p1.ip && nodeAddrs.get('node1')!.includes(a)), `hairpin traffic masqueraded to a node1 address (${seen.join(', ')})`);
    await noProxyErrors(t);
  });

  await t.test('7a. UDP: a flow pinned to an endpoint moves within 5 s when that endpoint is removed; conntrack holds no entry to it', { skip: haveUdpTools ? false : 'socat or conntrack missing' }, async (t) => {
    for (const p of c.pods) c.lab.spawn(p.netns, 'socat', [`UDP4-RECVFROM:${UDP_PORT},fork`, `EXEC:echo ${p.name}`], { stdio: 'ignore' });
    await waitFor('socat UDP servers bound', () => c.pods.every((p) => inNetns(p.netns, 'ss', ['-Hlun', `sport = :${UDP_PORT}`]).trim() !== ''), 10_000);
    const udp = await svc('udp', { selector: { udp: 'yes' }, ports: [{ port: UDP_PORT, targetPort: UDP_PORT, protocol: 'UDP' }] });
    const ip = udp.spec.clusterIP!;
    await waitRules(c, 'udp: 3 endpoints on every node', (v) => sameList(serviceIpTargets(v, ip, 'udp', UDP_PORT), c.pods.map((p) => ep(p, UDP_PORT)).sort()));
    await checkUdpFlowMoves(t, c, { clientNetns: client.netns, ip, port: UDP_PORT, nodeNetns: n1.netns });
    await noProxyErrors(t);
  });

  await t.test('7b. a deleted pod\'s endpoint goes: 100 new connections never reach it', async (t) => {
    const s0 = await spreadService();
    const ip = s0.spec.clusterIP!;
    const deletedAt = Date.now();
    await c.admin.delete({ plural: 'pods', namespace: 'default', name: p3.name });
    await waitFor('spread endpoints drop to 2', async () => {
      const e = await c.admin.get<Endpoints>({ plural: 'endpoints', namespace: 'default', name: 'spread' });
      return (e.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0), 0) === 2;
    });
    await waitRules(c, `spread without ${p3.name} on every node`, (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), [ep(p1), ep(p2)].sort()));
    t.comment(`pod deleted → rules updated on all nodes in ${Date.now() - deletedAt} ms`);
    const s = await probeMany(c, client.netns, `${ip}:80`, 100, { concurrency: 10 });
    t.equal(s.ok, 100, `all 100 answered (${fmt(s)})`);
    t.equal(s.names[p3.name] ?? 0, 0, `none reached ${p3.name} (its echo server still runs)`);
    t.ok((s.names[p1.name] ?? 0) > 0 && (s.names[p2.name] ?? 0) > 0, 'both remaining endpoints served');
    await noProxyErrors(t);
  });

  await t.test('8. foreign tables, chains and iptables rules in node1 are untouched by creates, changes, deletes and a full resync', async (t) => {
    // One delete while node1's agent is down: its restart does a full sync, which lists the table
    // and removes what it does not want (only its own svc-/ep-/aff- objects, it must be).
    const np = await c.admin.get<Service>({ plural: 'services', namespace: 'default', name: 'np' }).catch(() => undefined);
    n1.agent.kill('SIGKILL');
    await new Promise((r) => (n1.agent.exitCode !== null || n1.agent.signalCode !== null ? r(undefined) : n1.agent.once('exit', r)));
    if (np) {
      await c.admin.delete({ plural: 'services', namespace: 'default', name: 'np' });
      created.delete('np');
    }
    restartAgent(c, n1);
    await waitAgentSynced(n1, 2);
    if (np) {
      await waitRules(c, 'np gone on every node (node1 via its full sync)', (v) => mapEntriesFor(v, np.spec.clusterIP!, np.spec.ports![0]!.nodePort!).length === 0);
    }
    for (const name of created) await c.admin.delete({ plural: 'services', namespace: 'default', name });
    const ours = (name: string) => /^(svc|ep|aff)-/.test(name);
    const BASE = ['svc-nat-prerouting', 'svc-nat-output', 'svc-nat-postrouting', 'svc-filter-prerouting', 'svc-filter-output', 'svc-services', 'svc-reject'];
    const ms = await waitRules(c, 'every service gone on every node', (v) =>
      [...v.maps.values()].every((m) => m.length === 0) && [...v.chains.keys()].filter(ours).filter((n) => !n.startsWith('svc-pick-')).sort().join() === [...BASE].sort().join()
      && [...v.chains.keys()].filter((n) => n.startsWith('svc-pick-')).length === 2 * SHARED_PICK_MAX);
    t.comment(`all services deleted → rules gone everywhere in ${ms} ms`);
    const view = nftView(n1.netns);
    t.ok(view.chains.has('zz-foreign') && view.chains.has('pod-masquerade'), 'the foreign chain and pod-masquerade are still in inet podwire');
    const after = foreignSnapshot(n1.netns);
    for (const k of Object.keys(foreignBefore)) t.equal(after[k], foreignBefore[k], `${k}: byte-identical (counters ignored)`);
    await noProxyErrors(t);
  });

  await t.test('9. the periodic resync puts back rules someone else removed (`nft flush chain` of our prerouting chain)', async (t) => {
    n1.agent.kill('SIGKILL');
    await new Promise((r) => (n1.agent.exitCode !== null || n1.agent.signalCode !== null ? r(undefined) : n1.agent.once('exit', r)));
    n1.agentArgs.push('--resync-interval', '2');
    restartAgent(c, n1);
    await waitAgentSynced(n1, 2);
    const back = await svc('resync', { selector: { app: 'echo' } });
    const ip = back.spec.clusterIP!;
    await waitRules(c, 'resync: endpoints on every node', (v) => (serviceIpTargets(v, ip, 'tcp', 80)?.length ?? 0) >= 2);
    const jump = () => (nftView(n1.netns).chains.get('svc-nat-prerouting') ?? []).length === 1;
    t.ok(jump(), 'node1: svc-nat-prerouting jumps to svc-services');
    inNetns(n1.netns, 'nft', ['flush', 'chain', 'inet', 'podwire', 'svc-nat-prerouting']);
    t.notOk(jump(), 'flushed by hand');
    const flushedAt = Date.now();
    await waitFor('the jump back in node1\'s svc-nat-prerouting', async () => jump(), 10_000);
    t.comment(`put back ${Date.now() - flushedAt} ms after the flush (resync every 2 s)`);
    const s = await probeMany(c, client.netns, `${ip}:80`, 10, { concurrency: 2 });
    t.equal(s.ok, 10, `client pod → ClusterIP works again (${fmt(s)})`);
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'resync' });
    await noProxyErrors(t);
  });

  t.comment(`total ${Date.now() - t0} ms`);
});

// ---- Small oracles only this file uses -------------------------------------------------------

function mapVerdictGoto(v: NftView, key: string): string | undefined {
  return (mapVerdict(v, 'svc-ips', key) as { goto?: { target: string } } | undefined)?.goto?.target;
}

/**
 * The endpoint ("ip:port") that a ClusterIP's affinity sets pin `clientIp` to on this node: the
 * svc chain's `ip saddr @aff-X goto ep-Y` rules, the element lists of the aff- sets, ep-Y's DNAT.
 */
function affinityEndpoint(netns: string, clusterIp: string, clientIp: string): string {
  const v = nftView(netns);
  const chain = mapVerdictGoto(v, `${clusterIp} . tcp . 80`);
  if (!chain) return 'no service chain';
  const hits: string[] = [];
  for (const rule of v.chains.get(chain) ?? []) {
    const text = JSON.stringify(rule);
    const set = /"right":"@(aff-[^"]+)"/.exec(text)?.[1];
    const target = /"goto":\{"target":"([^"]+)"\}/.exec(text)?.[1];
    if (!set || !target) continue;
    const elems = JSON.stringify(JSON.parse(inNetns(netns, 'nft', ['-j', 'list', 'set', 'inet', 'podwire', set])));
    if (elems.includes(`"${clientIp}"`)) hits.push(...dnatTargets(v, target));
  }
  return hits.length === 1 ? hits[0]! : `${hits.length} affinity entries (${hits.join(', ')})`;
}
