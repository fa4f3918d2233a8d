// The service proxy end to end, in one 3-node VXLAN lab cluster (control plane, an agent per node,
// one echo pod per node made by the CNI plugin, plus a client pod on node1 and the "outside" host
// on the underlay), run once per proxy mode (test/integration/proxy-e2e.test.ts: nftables,
// proxy-e2e-iptables.test.ts: iptables). Every check goes through real sockets; the kernel's rules
// (read by the mode's oracle, proxy-e2e-oracle.ts: `nft -j list table inet podwire` or
// `iptables-save`; conntrack, xt_recent) serve only as the "synced yet?" oracle and as a second
// opinion, never instead of traffic.
//
//   0. the agents run the mode's proxy: no service chains of the other mode, only the base chains
//   1. ClusterIP from a pod: 600 connections spread over 3 endpoints within a stated bound
//   2. NodePort from another node and from outside; LoadBalancer (spec.loadBalancerIP) and
//      externalIPs from outside, routed to a node in the outside netns only
//   3. ClientIP affinity: 50 connections, one endpoint (and without affinity, several)
//   4. externalTrafficPolicy Local: the client IP is kept, nodes without a local endpoint drop;
//      Cluster: masqueraded to a node address
//   5. no endpoints: an immediate failure, never a timeout: a TCP reset (ECONNREFUSED) wherever the
//      packet is routable; from a pod on a node without a route to the service CIDR, nftables
//      still resets (its reject is in prerouting), iptables answers ICMP (see the oracles)
//   6. hairpin: a pod reaching itself through its service
//   7. endpoint removed: a UDP flow moves on (conntrack cleaned), new TCP connections never reach it
//   8. foreign nft tables/chains and iptables rules in node1 survive everything byte-identical;
//      every chain, set and rule of a deleted service is gone
//   9. the periodic resync puts back rules someone else removed (nftables: our prerouting hook
//      chain deleted; iptables: PREROUTING flushed, as a firewall reload does)
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { addPod, agentStatus, LAB_TIMEOUT_SCALE, restartAgent, waitAgentSynced, waitFor, type AgentStatus, type ClusterNode, type ClusterPod, type LabCluster } from '../../src/lab/cluster.js';
import { withCluster } from './lab-cluster.js';
import type { Endpoints, Service } from '../../src/api/objects.js';
import { SKIP_NOT_ROOT } from './netns.js';
import {
  checkExternalPaths, checkHairpinPorts, checkRefused, checkUdpFlowMoves, createService, fmt, inNetns, ipv4Addresses, labelPod, mergeSummaries, patchService, probe, probeMany, sameList,
  type ManySummary,
} from './proxy-e2e.js';
import { foreignSnapshot, hasNftChain, seedForeign } from './proxy-e2e-foreign.js';
import { waitRules, type E2EContext, type ProxyMode, type ProxyOracle } from './proxy-e2e-oracle.js';
import { otherModesObjects } from './proxy-e2e-modes.js';
import { PROXY_MODES } from '../../src/proxy/backend.js';

const ECHO = 8080;
const LB_IP = '192.0.2.240';
const EXT_IP = '192.0.2.241';
const OUTSIDE = '192.0.2.250';
const UDP_PORT = 9000;
const haveUdpTools = ['socat', 'conntrack'].every((cmd) => spawnSync(cmd, ['-V'], { stdio: 'ignore' }).status === 0);

type ProxyStatus = AgentStatus & { proxy?: { mode?: string; servicePorts?: number; endpoints?: number; lastSync?: { error?: string } } };

async function proxyErrors(c: LabCluster, mode: ProxyMode): Promise<string[]> {
  const out: string[] = [];
  for (const n of c.nodes) {
    const st = (await agentStatus(n)) as ProxyStatus;
    if (st.proxy?.mode !== mode) out.push(`${n.name}: proxy mode ${st.proxy?.mode}`);
    if (!st.proxy?.lastSync) out.push(`${n.name}: the proxy has not synced`);
    else if (st.proxy.lastSync.error) out.push(`${n.name}: ${st.proxy.lastSync.error}`);
  }
  return out;
}

async function killAgent(n: ClusterNode): Promise<void> {
  n.agent.kill('SIGKILL');
  await new Promise((r) => (n.agent.exitCode !== null || n.agent.signalCode !== null ? r(undefined) : n.agent.once('exit', r)));
}

export interface E2EOptions {
  /**
   * The mode's own checks, run after check 9 in the same cluster (a lab cluster is the costly
   * part, above all in the kernel VM): node1's agent runs with --resync-interval 2 by then, pod3
   * is deleted (pods 1 and 2 are the endpoints left), no service of the suite is left.
   */
  extra?: (t: Test, x: E2EContext) => Promise<void>;
  /** The whole test's time-out (default 300 s, times LAB_TIMEOUT_SCALE: 4x in the kernel VM). */
  timeoutMs?: number;
}

/** The whole end-to-end test for one proxy mode, as one top-level tap test of `t`. */
export function runProxyE2E<V>(t: Test, mode: ProxyMode, o: ProxyOracle<V>, opts: E2EOptions = {}): Promise<unknown> {
  return t.test(`${mode} service proxy end to end in a 3-node lab cluster`, { skip: SKIP_NOT_ROOT, timeout: (opts.timeoutMs ?? 300_000) * LAB_TIMEOUT_SCALE }, async (t) => {
    const t0 = Date.now();
    const c = await withCluster(t, { nodes: 3, backend: 'vxlan', podsPerNode: 1, proxyMode: mode });
    // The suite starts from a cluster without services (its counts are its own): the control
    // plane's kube-system/kube-dns (src/controlplane/README.md, "Cluster DNS") goes first.
    await c.admin.delete({ plural: 'services', namespace: 'kube-system', name: 'kube-dns' });
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const podOn = (n: ClusterNode): ClusterPod => c.pods.find((p) => p.node === n.name)!;
    const [p1, p2, p3] = [podOn(n1), podOn(n2), podOn(n3)];
    const ep = (p: ClusterPod, port = ECHO) => `${p.ip}:${port}`;
    const allEps = c.pods.map((p) => ep(p)).sort();
    const echoNames = new Set(c.pods.map((p) => p.name));
    const notEcho = (s: ManySummary) => Object.keys(s.names).filter((n) => !echoNames.has(n));
    const wait = (what: string, ok: (v: V, node: ClusterNode) => boolean) => waitRules(c, o, what, ok);
    // A client pod that is no endpoint (addPod labels app=echo; relabelled before any service exists).
    const client = await addPod(c.lab, n1, 2);
    await labelPod(c, client.name, { app: 'client' });
    for (const p of c.pods) await labelPod(c, p.name, { pod: p.name, udp: 'yes' });
    const nodeAddrs = new Map(c.nodes.map((n) => [n.name, ipv4Addresses(n.netns)]));
    const x: E2EContext = { c, nodes: [n1, n2, n3], pods: [p1, p2, p3], client };
    // Every agent runs this mode's proxy and has synced once (the base chains, no services yet).
    await waitFor(`every agent's ${mode} proxy synced`, async () => (await proxyErrors(c, mode)).length === 0, 30_000);
    await wait('base chains on every node', o.idle);
    // Check 8 starts here: before any service.
    seedForeign(n1.netns);
    const foreignBefore = foreignSnapshot(n1.netns);
    t.comment(`cluster + client pod ready in ${Date.now() - t0} ms; pods ${c.pods.map((p) => `${p.name}=${p.ip}`).join(' ')}, client ${client.name}=${client.ip}`);

    const created = new Map<string, Service>();
    const svc = async (name: string, spec: Service['spec']): Promise<Service> => {
      const s = await createService(c, name, { ports: [{ port: 80, targetPort: ECHO }], ...spec });
      created.set(name, s);
      return s;
    };
    let spread: Service | undefined;
    const spreadService = async (): Promise<Service> => {
      if (!spread) {
        spread = await svc('spread', { selector: { app: 'echo' } });
        const ip = spread.spec.clusterIP!;
        await wait('spread: 3 endpoints on every node', (v) => sameList(o.serviceIpTargets(v, ip, 'tcp', 80), allEps));
      }
      return spread;
    };
    const noProxyErrors = async (t: Test) => t.same(await proxyErrors(c, mode), [], `every agent runs the ${mode} proxy and its last sync succeeded`);

    const others = PROXY_MODES.filter((m) => m !== mode);
    await t.test(`0. the agents run the ${mode} proxy: nothing of the ${others.join(' and ')} modes, no proxy errors`, async (t) => {
      for (const n of c.nodes) t.same(otherModesObjects(mode, n.netns), [], `${n.name}: no ${others.join(' or ')} proxy objects`);
      const names = o.names(o.view(n1.netns));
      t.ok(o.idle(o.view(n1.netns)), `node1: exactly the base chains before any service (${names.length}: ${names.join(' ')})`);
      await noProxyErrors(t);
    });

    await t.test('1. ClusterIP from a pod: 600 connections over 3 endpoints on 3 nodes, each gets 200 ± 52 (4.5 sigma of Binomial(600, 1/3))', async (t) => {
      const s = await spreadService();
      const target = `${s.spec.clusterIP}:80`;
      // Second opinion: node1's random pick over the three endpoints.
      o.checkSpreadRules(t, o.view(n1.netns), s.spec.clusterIP!, allEps);
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
      await wait('NodePort, LB IP and external IP rules on every node', (v) =>
        sameList(o.nodePortTargets(v, 'tcp', npPort), allEps) && sameList(o.serviceIpTargets(v, LB_IP, 'tcp', 80), allEps) && sameList(o.serviceIpTargets(v, EXT_IP, 'tcp', 80), allEps));
      const v = o.view(n1.netns);
      t.match(o.serviceIpChain(v, LB_IP, 'tcp', 80) ?? '', o.externalChain, `node1: the LB IP goes to an external chain (${o.externalChain})`);
      t.match(o.nodePortChain(v, 'tcp', npPort) ?? '', o.externalChain, `node1: the NodePort goes to an external chain (${o.externalChain})`);
      await checkExternalPaths(t, c, { nodePort: npPort, lbIp: LB_IP, extIp: EXT_IP, isEcho: (name) => echoNames.has(name) });
      t.equal(lb.spec.type, 'LoadBalancer', 'the LB service kept its type');
      t.same(ext.spec.externalIPs, [EXT_IP], 'the external IP is in the spec');
      await noProxyErrors(t);
    });

    await t.test('3. ClientIP affinity: 50 connections from one client reach one endpoint; without affinity they do not', async (t) => {
      const aff = await svc('aff', { selector: { app: 'echo' }, sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
      const ip = aff.spec.clusterIP!;
      await wait(`aff: 3 endpoints with ${o.affinity.store} on every node`, (v) => o.affinity.ready(v, ip, allEps));
      // One at a time: affinity is recorded by the first connection's NAT rule; concurrent first
      // connections may legitimately race to different endpoints.
      const s = await probeMany(c, client.netns, `${ip}:80`, 50, { concurrency: 1 });
      t.equal(s.ok, 50, `all 50 answered (${fmt(s)})`);
      t.equal(Object.keys(s.names).length, 1, `one endpoint served all of them: ${JSON.stringify(s.names)}`);
      // The kernel's affinity record on the client's node points at that same endpoint.
      const winner = c.pods.find((p) => p.name === Object.keys(s.names)[0]);
      t.equal(o.affinity.endpoint(n1.netns, ip, client.ip), winner ? ep(winner) : 'no echo pod', `node1's ${o.affinity.store} hold the client IP for the endpoint that answered only`);
      const spreadSvc = await spreadService();
      const without = await probeMany(c, client.netns, `${spreadSvc.spec.clusterIP}:80`, 50, { concurrency: 1 });
      t.equal(without.ok, 50, 'without affinity: all 50 answered');
      t.ok(Object.keys(without.names).length >= 2, `without affinity: several endpoints ${JSON.stringify(without.names)}`);
      await noProxyErrors(t);
    });

    await t.test('4. externalTrafficPolicy Local keeps the client IP and answers only where an endpoint is; Cluster masquerades', async (t) => {
      const loc = await svc('local', { type: 'NodePort', externalTrafficPolicy: 'Local', selector: { pod: p2.name } });
      const npPort = loc.spec.ports![0]!.nodePort!;
      const local = { node: n2.name, endpoints: [ep(p2)] };
      await wait('local: Local-policy rules on every node', (v, n) => sameList(o.serviceIpTargets(v, loc.spec.clusterIP!, 'tcp', 80), [ep(p2)]) && o.localPolicy(v, n, npPort, local));
      const good = await probeMany(c, c.outside.netns, `${n2.underlayIp}:${npPort}`, 10, { concurrency: 2 });
      t.equal(good.ok, 10, `outside → node2 (has the endpoint): ${fmt(good)}`);
      t.same(good.names, { [p2.name]: 10 }, 'answered by the node2 pod');
      t.same(good.seenAs, { [OUTSIDE]: 10 }, `the pod saw the outside host's own address ${OUTSIDE} (not masqueraded)`);
      const bad = await probe(c, c.outside.netns, [`${n1.underlayIp}:${npPort}`, `${n3.underlayIp}:${npPort}`], 1500);
      for (const [i, node] of [n1, n3].entries()) {
        const a = bad[i]!;
        t.ok(!a.ok && a.name === undefined && /no answer within|ECONNREFUSED/.test(a.error ?? ''), `outside → ${node.name} (no local endpoint): not answered (${a.ok ? `answered by ${a.name}` : a.error}, ${a.ms} ms)`);
      }
      const fromNode = await probeMany(c, n1.netns, `${n1.underlayIp}:${npPort}`, 5, { concurrency: 1, timeoutMs: 1500 });
      const gap = o.localNodePortFromNode;
      if (gap === 'cluster') t.same(fromNode.names, { [p2.name]: 5 }, `node1 itself → its NodePort goes cluster-wide (${fmt(fromNode)})`);
      else {
        t.same(fromNode.ok, 0, `node1 itself → its NodePort (no local endpoint) is not answered in ${mode} mode (${fmt(fromNode)})`);
        t.comment(`known gap (${mode}): ${gap.gap}`);
      }

      await patchService(c, 'local', { spec: { externalTrafficPolicy: 'Cluster' } });
      await wait('local → Cluster policy on every node', (v) => o.clusterPolicy(v, npPort, [ep(p2)]));
      for (const node of [n1, n2]) {
        const s = await probeMany(c, c.outside.netns, `${node.underlayIp}:${npPort}`, 10, { concurrency: 2 });
        const seen = Object.keys(s.seenAs);
        t.ok(s.ok === 10 && s.names[p2.name] === 10, `Cluster policy: outside → ${node.name} answered by ${p2.name}: ${fmt(s)}`);
        t.ok(seen.length > 0 && seen.every((a) => nodeAddrs.get(node.name)!.includes(a)), `Cluster policy via ${node.name}: source masqueraded to a ${node.name} address (${seen.join(', ')} in ${nodeAddrs.get(node.name)!.join(', ')})`);
      }
      await noProxyErrors(t);
    });

    await t.test(o.noEndpoints.title, async (t) => {
      const none = await svc('none', { type: 'NodePort', selector: { app: 'nothing' } });
      const ip = none.spec.clusterIP!;
      const npPort = none.spec.ports![0]!.nodePort!;
      await wait(`none: ${o.noEndpoints.rules} on every node`, (v) => o.noEndpoints.ready(v, ip, npPort));
      // Lab nodes have no route covering the service CIDR (no default route at all): what a pod's
      // SYN meets there is the mode's own answer; with a default route (as real nodes have), the
      // reject is reached from everywhere.
      t.notMatch(inNetns(n1.netns, 'ip', ['-4', 'route', 'show', 'default']), /default/, 'node1 has no default route');
      await o.noEndpoints.unrouted(t, x, ip);
      const runs: [string, string, string][] = [
        ['outside → node1 NodePort', c.outside.netns, `${n1.underlayIp}:${npPort}`],
        ['node2 → its own NodePort', n2.netns, `${n2.underlayIp}:${npPort}`],
        ['node2 → node3 NodePort', n2.netns, `${n3.underlayIp}:${npPort}`],
        ['client pod → ClusterIP (node1 with a default route, as real nodes have)', client.netns, `${ip}:80`],
      ];
      const counter = o.noEndpoints.rejected;
      const rejected = () => counter?.(n1.netns, ip) ?? NaN;
      inNetns(n1.netns, 'ip', ['route', 'add', 'default', 'via', OUTSIDE]);
      try {
        const before = rejected();
        for (const [what, netns, target] of runs) await checkRefused(t, c, what, netns, target);
        if (counter) t.ok(rejected() - before >= 5, `node1's reject rule for ${ip}:80 counted the client pod's SYNs (${rejected() - before} packets)`);
      } finally {
        inNetns(n1.netns, 'ip', ['route', 'del', 'default', 'via', OUTSIDE]);
      }
      await noProxyErrors(t);
    });

    await t.test('6. hairpin: a pod reaches its own service when it is the only endpoint', async (t) => {
      const hp = await svc('hairpin', { selector: { pod: p1.name } });
      const ip = hp.spec.clusterIP!;
      await wait('hairpin: 1 endpoint on every node', (v) => sameList(o.serviceIpTargets(v, ip, 'tcp', 80), [ep(p1)]));
      o.checkHairpinRules(t, o.view(n1.netns), hp, p1);
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
      await wait('udp: 3 endpoints on every node', (v) => sameList(o.serviceIpTargets(v, ip, 'udp', UDP_PORT), c.pods.map((p) => ep(p, UDP_PORT)).sort()));
      await checkUdpFlowMoves(t, c, { clientNetns: client.netns, ip, port: UDP_PORT, nodeNetns: n1.netns,
        during: (removed) => t.notOk((o.serviceIpTargets(o.view(n1.netns), ip, 'udp', UDP_PORT) ?? []).includes(ep(removed, UDP_PORT)), `node1: no DNAT to ${ep(removed, UDP_PORT)} left`) });
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
      await wait(`spread without ${p3.name} on every node`, (v) => sameList(o.serviceIpTargets(v, ip, 'tcp', 80), [ep(p1), ep(p2)].sort()));
      t.comment(`pod deleted → rules updated on all nodes in ${Date.now() - deletedAt} ms`);
      const s = await probeMany(c, client.netns, `${ip}:80`, 100, { concurrency: 10 });
      t.equal(s.ok, 100, `all 100 answered (${fmt(s)})`);
      t.equal(s.names[p3.name] ?? 0, 0, `none reached ${p3.name} (its echo server still runs)`);
      t.ok((s.names[p1.name] ?? 0) > 0 && (s.names[p2.name] ?? 0) > 0, 'both remaining endpoints served');
      await noProxyErrors(t);
    });

    await t.test('8. foreign tables, chains and iptables rules in node1 are untouched by creates, changes, deletes and a restart; a deleted service\'s rules all go', async (t) => {
      // What each service has on each node now: chains and sets of its own, rules and map elements.
      const services = [...created.values()];
      const chains = new Map<string, Set<string>>();
      const ruleCount = new Map<string, number>();
      for (const n of c.nodes) {
        const v = o.view(n.netns);
        for (const [name, s] of created) {
          const obj = o.serviceObjects(v, s);
          const set = chains.get(name) ?? new Set<string>();
          obj.chains.forEach((ch) => set.add(ch));
          chains.set(name, set);
          ruleCount.set(name, (ruleCount.get(name) ?? 0) + obj.rules.length);
        }
      }
      const owns = (name: string) => (chains.get(name)?.size ?? 0) > 0 || (!o.chainPerService && (ruleCount.get(name) ?? 0) > 0);
      const counts = [...chains].map(([n, s]) => `${n}:${s.size}/${ruleCount.get(n)}`).join(' ');
      t.ok([...created.keys()].filter((n) => n !== 'none').every(owns), `every service with endpoints has chains${o.chainPerService ? '' : ' or map elements'} (chains/rules ${counts})`);
      const affNames = [...(chains.get('aff') ?? [])];
      // One delete while node1's agent is down: its restart syncs everything again (nftables: lists
      // the table; iptables: the applier starts without a "last written" text) and must remove the
      // stale objects, nothing else (only its own svc-/ep-/aff- or PODWIRE-* ones, it must be).
      const np = created.get('np');
      const npChains = [...(chains.get('np') ?? [])];
      await killAgent(n1);
      if (np) {
        await c.admin.delete({ plural: 'services', namespace: 'default', name: 'np' });
        created.delete('np');
      }
      restartAgent(c, n1);
      await waitAgentSynced(n1, 2);
      const npGone = (v: V) => {
        const left = np ? o.serviceObjects(v, np) : { chains: [], rules: [] };
        const names = o.names(v);
        return left.chains.length === 0 && left.rules.length === 0 && npChains.every((ch) => !names.includes(ch));
      };
      const npMs = await wait('np\'s rules gone on every node (node1 via its restart)', npGone);
      t.ok(owns('np'), `np had ${npChains.length} chains and ${ruleCount.get('np') ?? 0} rules, gone from every node ${npMs} ms after the restart`);
      await waitFor('node1\'s proxy synced after the restart', async () => (await proxyErrors(c, mode)).length === 0, 20_000);

      for (const name of created.keys()) await c.admin.delete({ plural: 'services', namespace: 'default', name });
      const ms = await wait('every service gone on every node', o.idle);
      t.comment(`all services deleted → rules gone everywhere in ${ms} ms`);
      const allChains = [...chains.values()].flatMap((s) => [...s]);
      for (const n of c.nodes) {
        const v = o.view(n.netns);
        t.same(o.names(v).filter((ch) => allChains.includes(ch)), [], `${n.name}: none of the ${allChains.length} chains (nftables: and sets) of the deleted services is left`);
        t.same(o.referencesTo(v, allChains), [], `${n.name}: no rule refers to them`);
        t.same(services.flatMap((s) => Object.values(o.serviceObjects(v, s)).flat()), [], `${n.name}: no rule or map element names a deleted service`);
      }
      const stores = o.affinity.stores(n1.netns);
      t.same(stores.filter((l) => affNames.includes(l)), [], `node1: the ${o.affinity.store} of aff went with its chains (left: ${stores.join(' ') || 'none'})`);
      t.ok(hasNftChain(n1.netns, 'zz-foreign') && hasNftChain(n1.netns, 'pod-masquerade'), 'the foreign chain and pod-masquerade are still in inet podwire');
      const after = foreignSnapshot(n1.netns);
      t.match(foreignBefore['iptables-save -t nat without PODWIRE-*'], /PWTEST-FOREIGN[\s\S]*KUBE-SERVICES/, 'the nat snapshot holds the seeded chains (it is not vacuous)');
      t.notMatch(foreignBefore['nft -a table ip nat without PODWIRE-*'], /PODWIRE-/, 'and none of ours');
      for (const k of Object.keys(foreignBefore)) t.equal(after[k], foreignBefore[k], `${k}: byte-identical (counters ignored)`);
      await noProxyErrors(t);
    });

    await t.test(`9. the periodic resync puts back rules someone else removed (${o.resync.breakage})`, async (t) => {
      const { entry, services } = o.resync;
      await killAgent(n1);
      n1.agentArgs.push('--resync-interval', '2');
      restartAgent(c, n1);
      await waitAgentSynced(n1, 2);
      const back = await svc('resync', { selector: { app: 'echo' } });
      const ip = back.spec.clusterIP!;
      await wait('resync: endpoints on every node', (v) => (o.serviceIpTargets(v, ip, 'tcp', 80)?.length ?? 0) >= 2);
      t.ok(o.resync.jumps(n1.netns), `node1: ${entry} jumps to ${services}`);
      o.resync.flush(n1.netns);
      t.notOk(o.resync.jumps(n1.netns), 'flushed by hand');
      const flushedAt = Date.now();
      await waitFor(`the jump back in node1's ${entry}`, async () => o.resync.jumps(n1.netns), 10_000);
      t.comment(`put back ${Date.now() - flushedAt} ms after the flush (resync every 2 s)`);
      const s = await probeMany(c, client.netns, `${ip}:80`, 10, { concurrency: 2 });
      t.equal(s.ok, 10, `client pod → ClusterIP works again (${fmt(s)})`);
      await c.admin.delete({ plural: 'services', namespace: 'default', name: 'resync' });
      created.delete('resync');
      await noProxyErrors(t);
    });

    if (opts.extra) await opts.extra(t, x);
    t.comment(`total ${Date.now() - t0} ms`);
  });
}
