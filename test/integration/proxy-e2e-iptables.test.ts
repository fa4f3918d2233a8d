// The iptables service proxy (`podwire-agent --proxy-mode iptables`) end to end, in one 3-node
// VXLAN lab cluster (control plane, an agent per node, one echo pod per node made by the CNI
// plugin, plus a client pod on node1 and the "outside" host on the underlay): the twin of
// proxy-e2e.test.ts (nftables). Every check goes through real sockets; the kernel's rules
// (`iptables-save` parsed by test/lib/proxy-e2e-iptables.ts, conntrack, xt_recent) serve only as
// the "synced yet?" oracle and as a second opinion, never instead of traffic.
//
//   1. ClusterIP from a pod: 600 connections spread over 3 endpoints within a stated bound
//   2. NodePort from another node and from outside; LoadBalancer (spec.loadBalancerIP) and
//      externalIPs from outside, routed to a node in the outside netns only
//   3. ClientIP affinity: 50 connections, one endpoint (and without affinity, several)
//   4. externalTrafficPolicy Local: the client IP is kept, nodes without a local endpoint drop;
//      Cluster: masqueraded to a node address
//   5. no endpoints: an immediate failure, never a timeout (what exactly, from where: see there)
//   6. hairpin: a pod reaching itself through its service
//   7. endpoint removed: a UDP flow moves on (conntrack cleaned), new TCP connections never reach it
//   8. foreign nft tables/chains and iptables rules in node1 survive everything byte-identical;
//      every PODWIRE-* chain of a deleted service is gone
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { addPod, agentStatus, createCluster, destroyCluster, restartAgent, waitAgentSynced, waitFor, type AgentStatus, type ClusterNode, type ClusterPod, type LabCluster } from '../../src/lab/cluster.js';
import type { Endpoints, Service } from '../../src/controlplane/objects.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { createService, inNetns, ipv4Addresses, labelPod, mergeSummaries, patchService, probe, probeMany, checkExternalPaths, checkHairpinPorts, checkUdpFlowMoves, type ManySummary } from '../lib/proxy-e2e.js';
import {
  BASE_CHAINS, affinityLists, cascade, dnatTargets, filterVerdicts, foreignNftTable, foreignSave, icmpCounters, iptView, nodePortChain, onlyBaseChains, ownedChains, packetCount, recentEntries,
  recentListNames, referencesTo, rules, serviceChain, serviceIpTargets, serviceObjects, waitIpt, type IptView,
} from '../lib/proxy-e2e-iptables.js';

const ECHO = 8080;
const LB_IP = '192.0.2.240';
const EXT_IP = '192.0.2.241';
const OUTSIDE = '192.0.2.250';
const UDP_PORT = 9000;
const haveUdpTools = ['socat', 'conntrack'].every((cmd) => spawnSync(cmd, ['-V'], { stdio: 'ignore' }).status === 0);

const sameList = (a: readonly string[] | undefined, b: readonly string[]) => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
const fmt = (s: ManySummary) => `ok ${s.ok}/${s.count}, names ${JSON.stringify(s.names)}, seen as ${JSON.stringify(s.seenAs)}${s.failed ? `, errors ${JSON.stringify(s.errors)}` : ''}, max ${s.maxMs} ms`;
const counters = (s: string) => s.replace(/counter packets \d+ bytes \d+/g, 'counter');

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

// Other chains in nat/filter/mangle and rules in the built-in chains next to ours (appended after
// our jumps, and some inserted before them), none of which touches the lab's traffic.
const FOREIGN_IPTABLES = [
  ['-t', 'nat', '-N', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'PWTEST-FOREIGN', '-p', 'tcp', '-d', '198.51.100.7/32', '--dport', '80', '-j', 'DNAT', '--to-destination', '198.51.100.8:8080'],
  ['-t', 'nat', '-A', 'PREROUTING', '-d', '198.51.100.7/32', '-j', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-I', 'PREROUTING', '1', '-d', '198.51.100.9/32', '-p', 'tcp', '--dport', '443', '-m', 'comment', '--comment', 'pwtest before ours', '-j', 'DNAT', '--to-destination', '198.51.100.8:8443'],
  ['-t', 'nat', '-A', 'OUTPUT', '-d', '198.51.100.7/32', '-j', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE'],
  ['-t', 'nat', '-N', 'KUBE-SERVICES'],
  ['-t', 'nat', '-A', 'KUBE-SERVICES', '-d', '198.51.100.20/32', '-p', 'tcp', '--dport', '443', '-m', 'comment', '--comment', 'another proxy\'s leftovers', '-j', 'RETURN'],
  ['-t', 'nat', '-N', 'PWTEST-EMPTY'],
  ['-t', 'filter', '-N', 'PWTEST-FILTER'],
  ['-t', 'filter', '-A', 'PWTEST-FILTER', '-s', '198.51.100.10/32', '-j', 'DROP'],
  ['-t', 'filter', '-A', 'FORWARD', '-j', 'PWTEST-FILTER'],
  ['-t', 'filter', '-I', 'OUTPUT', '1', '-d', '198.51.100.12/32', '-j', 'REJECT'],
  ['-t', 'filter', '-A', 'INPUT', '-s', '198.51.100.10/32', '-p', 'udp', '-j', 'DROP'],
  ['-t', 'mangle', '-A', 'PREROUTING', '-d', '198.51.100.13/32', '-j', 'MARK', '--set-mark', '0x1'],
];

function seedForeign(netns: string): void {
  inNetns(netns, 'nft', ['-f', '-'], FOREIGN_NFT);
  for (const args of FOREIGN_IPTABLES) inNetns(netns, 'iptables', args);
}

/** Everything that is not podwire's service proxy, with nft handles, counters blanked. */
function foreignSnapshot(netns: string): Record<string, string> {
  const snap: Record<string, string> = {
    'nft list tables': inNetns(netns, 'nft', ['list', 'tables']),
    'nft table ip other': counters(inNetns(netns, 'nft', ['-a', 'list', 'table', 'ip', 'other'])),
    'chain inet podwire zz-foreign': counters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'zz-foreign'])),
    'chain inet podwire pod-masquerade': counters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'pod-masquerade'])),
  };
  for (const table of ['nat', 'filter', 'mangle']) {
    snap[`nft -a table ip ${table} without PODWIRE-*`] = foreignNftTable(netns, table);
    snap[`iptables-save -t ${table} without PODWIRE-*`] = foreignSave(netns, table);
  }
  return snap;
}

// ---------------------------------------------------------------------------------------------

type ProxyStatus = AgentStatus & { proxy?: { mode?: string; servicePorts?: number; endpoints?: number; lastSync?: { error?: string } } };

async function proxyErrors(c: LabCluster): Promise<string[]> {
  const out: string[] = [];
  for (const n of c.nodes) {
    const st = (await agentStatus(n)) as ProxyStatus;
    if (st.proxy?.mode !== 'iptables') out.push(`${n.name}: proxy mode ${st.proxy?.mode}`);
    if (!st.proxy?.lastSync) out.push(`${n.name}: the proxy has not synced`);
    else if (st.proxy.lastSync.error) out.push(`${n.name}: ${st.proxy.lastSync.error}`);
  }
  return out;
}

t.test('iptables service proxy end to end in a 3-node lab cluster', { skip: SKIP_NOT_ROOT, timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const c = await createCluster({ nodes: 3, backend: 'vxlan', podsPerNode: 1, proxyMode: 'iptables' });
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
  // Every agent runs the iptables proxy and has synced once (the base chains, no services yet).
  await waitFor('every agent\'s iptables proxy synced', async () => (await proxyErrors(c)).length === 0, 30_000);
  await waitIpt(c, 'base PODWIRE-* chains on every node', onlyBaseChains);
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
      await waitIpt(c, 'spread: 3 endpoints on every node', (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), allEps));
    }
    return spread;
  };
  const noProxyErrors = async (t: Test) => t.same(await proxyErrors(c), [], 'every agent runs the iptables proxy and its last sync succeeded');

  await t.test('0. the agents run the iptables proxy: no nftables service chains, no proxy errors', async (t) => {
    for (const n of c.nodes) {
      const nft = inNetns(n.netns, 'nft', ['list', 'table', 'inet', 'podwire']);
      t.notMatch(nft, /chain (svc|ep)-/, `${n.name}: no nftables proxy chains in inet podwire`);
    }
    t.same(ownedChains(iptView(n1.netns)), BASE_CHAINS, 'node1: exactly the base PODWIRE-* chains before any service');
    await noProxyErrors(t);
  });

  await t.test('1. ClusterIP from a pod: 600 connections over 3 endpoints on 3 nodes, each gets 200 ± 52 (4.5 sigma of Binomial(600, 1/3))', async (t) => {
    const s = await spreadService();
    const target = `${s.spec.clusterIP}:80`;
    // Second opinion: node1's SVC chain is a 1/3, 1/2, rest cascade over the three SEP chains.
    const v = iptView(n1.netns);
    const arms = cascade(v, serviceChain(v, s.spec.clusterIP!, 'tcp', 80)!);
    t.ok(arms.length === 3 && Math.abs(arms[0]![0] - 1 / 3) < 1e-6 && Math.abs(arms[1]![0] - 1 / 2) < 1e-6 && arms[2]![0] === 1, `node1: statistic cascade ${JSON.stringify(arms.map((a) => a[0]))} is 1/3, 1/2, 1`);
    t.same(arms.map((a) => dnatTargets(v, a[1])[0]).sort(), allEps, 'the arms DNAT to the three endpoints');
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
    await waitIpt(c, 'NodePort, LB IP and external IP rules on every node', (v) => {
      const chain = nodePortChain(v, 'tcp', npPort);
      return chain !== undefined && sameList(dnatTargets(v, chain), allEps) && sameList(serviceIpTargets(v, LB_IP, 'tcp', 80), allEps) && sameList(serviceIpTargets(v, EXT_IP, 'tcp', 80), allEps);
    });
    const v = iptView(n1.netns);
    t.match(serviceChain(v, LB_IP, 'tcp', 80) ?? '', /^PODWIRE-EXT-/, 'node1: the LB IP goes to an EXT chain');
    t.match(nodePortChain(v, 'tcp', npPort) ?? '', /^PODWIRE-EXT-/, 'node1: the NodePort goes to an EXT chain');
    await checkExternalPaths(t, c, { nodePort: npPort, lbIp: LB_IP, extIp: EXT_IP, isEcho: (name) => echoNames.has(name), fmt });
    t.equal(lb.spec.type, 'LoadBalancer', 'the LB service kept its type');
    t.same(ext.spec.externalIPs, [EXT_IP], 'the external IP is in the spec');
    await noProxyErrors(t);
  });

  await t.test('3. ClientIP affinity: 50 connections from one client reach one endpoint; without affinity they do not', async (t) => {
    const aff = await svc('aff', { selector: { app: 'echo' }, sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
    const ip = aff.spec.clusterIP!;
    await waitIpt(c, 'aff: 3 endpoints with recent --rcheck rules on every node', (v) => {
      const chain = serviceChain(v, ip, 'tcp', 80);
      return chain !== undefined && sameList(dnatTargets(v, chain), allEps) && affinityLists(v, chain).length === 3;
    });
    // One at a time: affinity is recorded by the first connection's NAT rule; concurrent first
    // connections may legitimately race to different endpoints.
    const s = await probeMany(c, client.netns, `${ip}:80`, 50, { concurrency: 1 });
    t.equal(s.ok, 50, `all 50 answered (${fmt(s)})`);
    t.equal(Object.keys(s.names).length, 1, `one endpoint served all of them: ${JSON.stringify(s.names)}`);
    // The kernel's affinity record on the client's node points at that same endpoint.
    const winner = c.pods.find((p) => p.name === Object.keys(s.names)[0]);
    t.equal(affinityEndpoint(n1.netns, ip, client.ip), winner ? ep(winner) : 'no echo pod', 'node1\'s xt_recent lists hold the client IP for the endpoint that answered only');
    const spreadSvc = await spreadService();
    const without = await probeMany(c, client.netns, `${spreadSvc.spec.clusterIP}:80`, 50, { concurrency: 1 });
    t.equal(without.ok, 50, 'without affinity: all 50 answered');
    t.ok(Object.keys(without.names).length >= 2, `without affinity: several endpoints ${JSON.stringify(without.names)}`);
    await noProxyErrors(t);
  });

  await t.test('4. externalTrafficPolicy Local keeps the client IP and answers only where an endpoint is; Cluster masquerades', async (t) => {
    const loc = await svc('local', { type: 'NodePort', externalTrafficPolicy: 'Local', selector: { pod: p2.name } });
    const npPort = loc.spec.ports![0]!.nodePort!;
    // Local: EXT short-circuits the node's own traffic (--src-type LOCAL) to SVC; node2 (the
    // endpoint's node) goes on to an SVL chain, the others drop the NodePort in the filter table.
    const isLocal = (v: IptView, node: ClusterNode) => {
      const ext = nodePortChain(v, 'tcp', npPort);
      if (!ext || !rules(v, 'nat', ext).some((r) => /--src-type LOCAL/.test(r))) return false;
      const svl = rules(v, 'nat', ext).map((r) => /-j (PODWIRE-SVL-\S+)/.exec(r)?.[1]).find(Boolean);
      const drop = filterVerdicts(v, undefined, 'tcp', npPort);
      return node.name === n2.name ? svl !== undefined && sameList(dnatTargets(v, svl), [ep(p2)]) && drop.length === 0 : svl === undefined && sameList(drop, ['DROP']);
    };
    const isCluster = (v: IptView) => {
      const ext = nodePortChain(v, 'tcp', npPort);
      return ext !== undefined && !rules(v, 'nat', ext).some((r) => /--src-type LOCAL|PODWIRE-SVL-/.test(r)) && filterVerdicts(v, undefined, 'tcp', npPort).length === 0 && sameList(dnatTargets(v, ext), [ep(p2)]);
    };
    await waitIpt(c, 'local: Local-policy rules on every node', (v, n) => sameList(serviceIpTargets(v, loc.spec.clusterIP!, 'tcp', 80), [ep(p2)]) && isLocal(v, n));
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
    await waitIpt(c, 'local → Cluster policy on every node', isCluster);
    for (const node of [n1, n2]) {
      const s = await probeMany(c, c.outside.netns, `${node.underlayIp}:${npPort}`, 10, { concurrency: 2 });
      const seen = Object.keys(s.seenAs);
      t.ok(s.ok === 10 && s.names[p2.name] === 10, `Cluster policy: outside → ${node.name} answered by ${p2.name}: ${fmt(s)}`);
      t.ok(seen.length > 0 && seen.every((a) => nodeAddrs.get(node.name)!.includes(a)), `Cluster policy via ${node.name}: source masqueraded to a ${node.name} address (${seen.join(', ')} in ${nodeAddrs.get(node.name)!.join(', ')})`);
    }
    await noProxyErrors(t);
  });

  await t.test('5. a service without endpoints fails at once (well under 1 s), never a timeout', async (t) => {
    const none = await svc('none', { type: 'NodePort', selector: { app: 'nothing' } });
    const ip = none.spec.clusterIP!;
    const npPort = none.spec.ports![0]!.nodePort!;
    const RESET = 'REJECT --reject-with tcp-reset';
    await waitIpt(c, 'none: REJECT rules (and nothing else) on every node', (v) =>
      sameList(filterVerdicts(v, ip, 'tcp', 80), [RESET]) && sameList(filterVerdicts(v, undefined, 'tcp', npPort), [RESET]) &&
      serviceChain(v, ip, 'tcp', 80) === undefined && nodePortChain(v, 'tcp', npPort) === undefined);
    // The REJECT for a ClusterIP sits in filter FORWARD/OUTPUT (as kube-proxy's), so the packet
    // must be routable on its node to get there. Lab nodes have no route covering the service
    // CIDR (real nodes have a default route): the pod's SYN dies in node1's routing, which
    // answers with ICMP net unreachable (ENETUNREACH at the client), and a node's own connect()
    // fails in its route lookup. The kernel rate-limits those ICMP errors per client host, though
    // (ip_error's net.ipv4.route.error_cost/error_burst and net.ipv4.icmp_ratelimit, drawing on
    // the same per-host tokens; IcmpOutRateLimitHost counts some), so only a client's first
    // attempts are refused at once: attempts soon after it time out.
    const immediate = /^(ENETUNREACH|EHOSTUNREACH|ECONNREFUSED)$/;
    const icmp0 = icmpCounters(n1.netns);
    const [first] = await probe(c, client.netns, [`${ip}:80`], 3000);
    t.ok(!first!.ok && immediate.test(first!.error ?? '') && first!.ms < 500, `client pod → ClusterIP (node1 has no route to the service CIDR): the first attempt fails at once: ${first!.error} after ${first!.ms} ms (< 500 ms)`);
    const again = await probeMany(c, client.netns, `${ip}:80`, 4, { concurrency: 4, timeoutMs: 1000 });
    const icmp1 = icmpCounters(n1.netns);
    const icmpNote = `node1 sent ${icmp1.OutDestUnreachs! - icmp0.OutDestUnreachs!} ICMP dest-unreachable, rate-limited ${(icmp1.OutRateLimitHost ?? NaN) - (icmp0.OutRateLimitHost ?? NaN)} per host + ${(icmp1.OutRateLimitGlobal ?? NaN) - (icmp0.OutRateLimitGlobal ?? NaN)} globally (IcmpOutRateLimitHost/Global)`;
    // Known gap, kube-proxy's too (so recorded, not asserted): without a route covering the
    // service CIDR the refusal is an ICMP error, which the node rate-limits per client host, so
    // attempts right after the first may time out; with a route it is a TCP reset (below).
    t.comment(`known gap: client pod → unrouted ClusterIP: first ${first!.error} in ${first!.ms} ms, then 4 at once: ${JSON.stringify(again.errors)} (max ${again.maxMs} ms); ${icmpNote}`);
    const s2 = await probeMany(c, n2.netns, `${ip}:80`, 5, { concurrency: 1, timeoutMs: 3000 });
    t.ok(s2.failed === 5 && Object.keys(s2.errors).every((e) => immediate.test(e)) && s2.maxMs < 500, `node2 itself → ClusterIP (no route to the service CIDR): fails at once, 5 of 5: ${JSON.stringify(s2.errors)}, max ${s2.maxMs} ms (< 500 ms)`);
    const refusedRuns: [string, string, string][] = [
      ['outside → node1 NodePort', c.outside.netns, `${n1.underlayIp}:${npPort}`],
      ['node2 → its own NodePort', n2.netns, `${n2.underlayIp}:${npPort}`],
      ['node2 → node3 NodePort', n2.netns, `${n3.underlayIp}:${npPort}`],
      ['client pod → ClusterIP (node1 with a default route, as real nodes have)', client.netns, `${ip}:80`],
    ];
    const rejects = () => packetCount(n1.netns, 'filter', 'PODWIRE-SERVICES-FILTER', (r) => r.includes(`-d ${ip}/32 `) && r.includes('tcp-reset'));
    inNetns(n1.netns, 'ip', ['route', 'add', 'default', 'via', OUTSIDE]);
    try {
      const before = rejects();
      for (const [what, netns, target] of refusedRuns) {
        const s = await probeMany(c, netns, target, 5, { concurrency: 1, timeoutMs: 3000 });
        t.same(s.errors, { ECONNREFUSED: 5 }, `${what}: refused (${fmt(s)})`);
        t.ok(s.maxMs < 500, `${what}: refused within ${s.maxMs} ms (< 500 ms)`);
      }
      t.ok(rejects() - before >= 5, `node1's REJECT rule for ${ip}:80 counted the client pod's SYNs (${rejects() - before} packets)`);
    } finally {
      inNetns(n1.netns, 'ip', ['route', 'del', 'default', 'via', OUTSIDE]);
    }
    await noProxyErrors(t);
  });

  await t.test('6. hairpin: a pod reaches its own service when it is the only endpoint', async (t) => {
    const hp = await svc('hairpin', { selector: { pod: p1.name } });
    const ip = hp.spec.clusterIP!;
    await waitIpt(c, 'hairpin: 1 endpoint on every node', (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), [ep(p1)]));
    const v = iptView(n1.netns);
    const sep = [...serviceObjects(v, 'default/hairpin').chains].find((ch) => ch.startsWith('PODWIRE-SEP-'));
    t.ok(sep && rules(v, 'nat', sep).some((r) => r.startsWith(`-s ${p1.ip}/32 `) && / -j PODWIRE-MARK-MASQ$/.test(r)), `node1: ${sep} marks the endpoint's own traffic for masquerade`);
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
    await waitIpt(c, 'udp: 3 endpoints on every node', (v) => sameList(serviceIpTargets(v, ip, 'udp', UDP_PORT), c.pods.map((p) => ep(p, UDP_PORT)).sort()));
    await checkUdpFlowMoves(t, c, { clientNetns: client.netns, ip, port: UDP_PORT, nodeNetns: n1.netns,
      during: (removed) => t.notOk(dnatTargets(iptView(n1.netns), serviceChain(iptView(n1.netns), ip, 'udp', UDP_PORT) ?? '-').includes(ep(removed, UDP_PORT)), `node1: no DNAT to ${ep(removed, UDP_PORT)} left`) });
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
    await waitIpt(c, `spread without ${p3.name} on every node`, (v) => sameList(serviceIpTargets(v, ip, 'tcp', 80), [ep(p1), ep(p2)].sort()));
    t.comment(`pod deleted → rules updated on all nodes in ${Date.now() - deletedAt} ms`);
    const s = await probeMany(c, client.netns, `${ip}:80`, 100, { concurrency: 10 });
    t.equal(s.ok, 100, `all 100 answered (${fmt(s)})`);
    t.equal(s.names[p3.name] ?? 0, 0, `none reached ${p3.name} (its echo server still runs)`);
    t.ok((s.names[p1.name] ?? 0) > 0 && (s.names[p2.name] ?? 0) > 0, 'both remaining endpoints served');
    await noProxyErrors(t);
  });

  await t.test('8. foreign tables, chains and iptables rules in node1 are untouched by creates, changes, deletes and a restart; a deleted service\'s chains all go', async (t) => {
    // What each service owns on each node now: its chains (SVC/SVL/EXT/SEP) and base-chain rules.
    const owned = new Map<string, Set<string>>();
    for (const n of c.nodes) {
      const v = iptView(n.netns);
      for (const name of created) {
        const o = serviceObjects(v, `default/${name}`);
        const set = owned.get(name) ?? new Set<string>();
        o.chains.forEach((ch) => set.add(ch));
        owned.set(name, set);
      }
    }
    t.ok([...created].filter((n) => n !== 'none').every((n) => (owned.get(n)?.size ?? 0) > 0), `every service with endpoints has chains (${[...owned].map(([n, s]) => `${n}:${s.size}`).join(' ')})`);
    const affLists = [...(owned.get('aff') ?? [])].filter((ch) => ch.startsWith('PODWIRE-SEP-'));
    // One delete while node1's agent is down: its restart writes everything again (the applier
    // starts without a "last written" text) and must delete the stale chains, nothing else.
    const npChains = [...(owned.get('np') ?? [])];
    n1.agent.kill('SIGKILL');
    await new Promise((r) => (n1.agent.exitCode !== null || n1.agent.signalCode !== null ? r(undefined) : n1.agent.once('exit', r)));
    if (created.has('np')) {
      await c.admin.delete({ plural: 'services', namespace: 'default', name: 'np' });
      created.delete('np');
    }
    restartAgent(c, n1);
    await waitAgentSynced(n1, 2);
    const npGone = (v: IptView) => {
      const o = serviceObjects(v, 'default/np');
      const names = Object.values(ownedChains(v)).flat();
      return o.chains.length === 0 && o.baseRules.length === 0 && npChains.every((ch) => !names.includes(ch));
    };
    const npMs = await waitIpt(c, 'np\'s chains gone on every node (node1 via its restart)', npGone);
    t.ok(npChains.length > 0, `np had ${npChains.length} chains, gone from every node ${npMs} ms after the restart`);
    await waitFor('node1\'s proxy synced after the restart', async () => (await proxyErrors(c)).length === 0, 20_000);

    for (const name of created) await c.admin.delete({ plural: 'services', namespace: 'default', name });
    const ms = await waitIpt(c, 'every service gone on every node', (v) =>
      onlyBaseChains(v) && rules(v, 'nat', 'PODWIRE-SERVICES').length === 1 &&
      rules(v, 'nat', 'PODWIRE-NODEPORTS').length === 0 && rules(v, 'filter', 'PODWIRE-SERVICES-FILTER').length === 0);
    t.comment(`all services deleted → rules gone everywhere in ${ms} ms`);
    const allChains = [...owned.values()].flatMap((s) => [...s]);
    for (const n of c.nodes) {
      const v = iptView(n.netns);
      const left = Object.values(ownedChains(v)).flat().filter((ch) => allChains.includes(ch));
      t.same(left, [], `${n.name}: none of the ${allChains.length} chains of the deleted services is left in iptables-save`);
      t.same(referencesTo(v, allChains), [], `${n.name}: no rule refers to them`);
      t.same(serviceObjectsAll(v, [...owned.keys()]), [], `${n.name}: no rule carries a deleted service's comment`);
    }
    const lists = recentListNames(n1.netns);
    t.same(lists.filter((l) => affLists.includes(l)), [], `node1: the affinity xt_recent lists of aff went with its chains (left: ${lists.join(' ') || 'none'})`);
    t.ok(hasChain(n1.netns, 'zz-foreign') && hasChain(n1.netns, 'pod-masquerade'), 'the foreign chain and pod-masquerade are still in inet podwire');
    const after = foreignSnapshot(n1.netns);
    t.match(foreignBefore['iptables-save -t nat without PODWIRE-*'], /PWTEST-FOREIGN[\s\S]*KUBE-SERVICES/, 'the nat snapshot holds the seeded chains (it is not vacuous)');
    t.notMatch(foreignBefore['nft -a table ip nat without PODWIRE-*'], /PODWIRE-/, 'and none of ours');
    for (const k of Object.keys(foreignBefore)) t.equal(after[k], foreignBefore[k], `${k}: byte-identical (counters ignored)`);
    await noProxyErrors(t);
  });

  await t.test('9. the periodic resync puts back rules someone else removed (a firewall reload flushing PREROUTING)', async (t) => {
    n1.agent.kill('SIGKILL');
    await new Promise((r) => (n1.agent.exitCode !== null || n1.agent.signalCode !== null ? r(undefined) : n1.agent.once('exit', r)));
    n1.agentArgs.push('--resync-interval', '2');
    restartAgent(c, n1);
    await waitAgentSynced(n1, 2);
    const back = await svc('resync', { selector: { app: 'echo' } });
    const ip = back.spec.clusterIP!;
    await waitIpt(c, 'resync: endpoints on every node', (v) => (serviceIpTargets(v, ip, 'tcp', 80)?.length ?? 0) >= 2);
    const jump = () => inNetns(n1.netns, 'iptables-save', ['-t', 'nat']).split('\n').some((l) => /^-A PREROUTING .*-j PODWIRE-SERVICES/.test(l));
    t.ok(jump(), 'node1: PREROUTING jumps to PODWIRE-SERVICES');
    inNetns(n1.netns, 'iptables', ['-t', 'nat', '-F', 'PREROUTING']);
    t.notOk(jump(), 'flushed by hand');
    const flushedAt = Date.now();
    await waitFor('the jump back in node1\'s PREROUTING', async () => jump(), 10_000);
    t.comment(`put back ${Date.now() - flushedAt} ms after the flush (resync every 2 s)`);
    const s = await probeMany(c, client.netns, `${ip}:80`, 10, { concurrency: 2 });
    t.equal(s.ok, 10, `client pod → ClusterIP works again (${fmt(s)})`);
    await c.admin.delete({ plural: 'services', namespace: 'default', name: 'resync' });
    created.delete('resync');
    await noProxyErrors(t);
  });

  t.comment(`total ${Date.now() - t0} ms`);
});

// ---- Small oracles only this file uses -------------------------------------------------------

/** Rules and chains that still name one of these services (comment "default/NAME:…"). */
function serviceObjectsAll(v: IptView, names: string[]): string[] {
  return names.flatMap((n) => {
    const o = serviceObjects(v, `default/${n}`);
    return [...o.chains, ...o.baseRules];
  });
}

function hasChain(netns: string, chain: string): boolean {
  try {
    inNetns(netns, 'nft', ['list', 'chain', 'inet', 'podwire', chain]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The endpoint ("ip:port") whose xt_recent list holds `clientIp` on this node, among the lists
 * the ClusterIP's chain checks (`-m recent --rcheck --name PODWIRE-SEP-…`, one per endpoint);
 * the SEP chain of the same name does the DNAT.
 */
function affinityEndpoint(netns: string, clusterIp: string, clientIp: string): string {
  const v = iptView(netns);
  const chain = serviceChain(v, clusterIp, 'tcp', 80);
  if (!chain) return 'no service chain';
  const hits = affinityLists(v, chain).filter((list) => recentEntries(netns, list).includes(clientIp)).flatMap((list) => dnatTargets(v, list));
  return hits.length === 1 ? hits[0]! : `${hits.length} affinity entries (${hits.join(', ')})`;
}
