// Cluster DNS in a lab cluster (issue 16 item 3): each pod is answered by its own node's agent at
// 10.96.0.10 with no conntrack entry (NOTRACK while the server's socket exists); kube-system/kube-dns
// lists every node's server (their pod gateways); a Service created or deleted is seen through a
// pod within 1 s; and when a node's agent is killed (-9), its pods are answered by another node's
// server through the kernel's fallback DNAT, until the agent is back and answers locally again.
// Also from the pods, through the agents: a headless service over the echo pods, ExternalName,
// PTR, Node's resolver, and names outside the zone forwarded to a fake upstream on the lab's
// outside host (the agents' --dns-upstream).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Endpoints, Node, Service } from '../../src/api/objects.js';
import { NODE_ANNOTATIONS } from '../../src/api/objects.js';
import { createCluster, destroyCluster, restartAgent, agentStatus, waitFor, OUTSIDE_IP, type ClusterNode, type ClusterPod } from '../../src/lab/cluster.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { parseExposition } from '../lib/prom-text.js';

const CLUSTER_DNS = '10.96.0.10';
const LIB = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib');

/** dig from inside the pod (its own resolv.conf through ip netns exec), one try of 1 s. */
function dig(pod: ClusterPod, ...args: string[]): { status: string; answers: string[] } {
  const r = spawnSync('ip', ['netns', 'exec', pod.netns, 'dig', '+time=1', '+tries=1', '+noall', '+comments', '+answer', ...args], { encoding: 'utf8', timeout: 5000 });
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (${(r.stdout + r.stderr).trim().split('\n').pop()})`;
  const answers = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).slice(3).join(' '));
  return { status, answers };
}

/** Conntrack entries of DNS to the cluster DNS address in a node's netns. */
function dnsConntrack(node: ClusterNode): string[] {
  const r = spawnSync('ip', ['netns', 'exec', node.netns, 'conntrack', '-L', '--orig-dst', CLUSTER_DNS], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => /dport=53\b/.test(l));
}

t.test('cluster DNS in a lab: local answers untracked, kube-dns from the nodes, changes within 1 s, fallback when an agent dies', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await createCluster({ nodes: 3, backend: 'vxlan', podsPerNode: 1 });
  t.teardown(() => void destroyCluster(c));
  const [node1, node2, node3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const pod1 = c.pods.find((p) => p.node === node1.name)!;
  const pod2 = c.pods.find((p) => p.node === node2.name)!;

  // Every node publishes its gateway; the control plane lists them as kube-dns's endpoints.
  const gateways = await waitFor('kube-dns endpoints of every node', async () => {
    const nodes = await Promise.all(c.nodes.map((n) => c.admin.get<Node>({ plural: 'nodes', name: n.name })));
    const published = nodes.map((n) => n.metadata.annotations?.[NODE_ANNOTATIONS.dnsEndpoint]);
    const ep = await c.admin.get<Endpoints>({ plural: 'endpoints', namespace: 'kube-system', name: 'kube-dns' });
    const ips = (ep.subsets?.[0]?.addresses ?? []).map((a) => a.ip).sort();
    return published.every(Boolean) && ips.join() === [...published].sort().join() ? published as string[] : undefined;
  }, 20_000);
  for (const [i, n] of c.nodes.entries()) t.match(gateways[i], /^10\.244\.\d+\.1$/, `${n.name} publishes its pod gateway ${gateways[i]}`);

  await c.admin.create({ plural: 'services', namespace: 'default' }, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] } });
  const web = await c.admin.get<Service>({ plural: 'services', namespace: 'default', name: 'web' });
  const before = dnsConntrack(node1).length;
  for (const pod of [pod1, pod2]) {
    const a = dig(pod, 'web.default.svc.cluster.local', 'A');
    t.same(a, { status: 'NOERROR', answers: [`A ${web.spec.clusterIP!}`] }, `${pod.name}: dig web.default.svc.cluster.local`);
    const srv = dig(pod, '_http._tcp.web.default.svc.cluster.local', 'SRV');
    t.same(srv.answers, ['SRV 0 100 80 web.default.svc.cluster.local.'], `${pod.name}: SRV of the named port`);
    t.equal(dig(pod, '+tcp', 'web.default.svc.cluster.local', 'A').answers[0], `A ${web.spec.clusterIP!}`, `${pod.name}: over TCP too`);
    const getent = spawnSync('ip', ['netns', 'exec', pod.netns, 'getent', 'hosts', 'web'], { encoding: 'utf8', timeout: 5000 });
    t.match(getent.stdout, new RegExp(`^${web.spec.clusterIP!.replace(/\./g, '\\.')}\\s+web\\.default\\.svc\\.cluster\\.local`), `${pod.name}: getent hosts web (search path)`);
  }
  t.equal(dnsConntrack(node1).length, before, 'node1: no conntrack entry for queries to 10.96.0.10 (NOTRACK, answered locally)');

  // Headless over the echo pods, ExternalName, PTR, Node's resolver, forwarding.
  const upstream = spawn('ip', ['netns', 'exec', c.outside.netns, process.execPath, path.join(LIB, 'dns-upstream-child.js'), 'upstream', OUTSIDE_IP, '53'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void (upstream.exitCode === null && upstream.kill()));
  const lines = readline.createInterface({ input: upstream.stdout! });
  const nextLine = () => new Promise<Record<string, unknown>>((resolve) => lines.once('line', (l) => resolve(JSON.parse(l))));
  t.match(await nextLine(), { ready: true }, `fake upstream on the outside host ${OUTSIDE_IP}:53`);
  await c.admin.create({ plural: 'services', namespace: 'default' }, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo-hl' }, spec: { clusterIP: 'None', selector: { app: 'echo' }, ports: [{ name: 'http', port: 8080 }] } });
  await c.admin.create({ plural: 'services', namespace: 'default' }, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'www.example.test' } });
  const podIps = c.pods.map((p) => `A ${p.ip}`).sort();
  await waitFor('headless echo-hl answered', async () => dig(pod1, 'echo-hl.default.svc.cluster.local', 'A').answers.sort().join() === podIps.join() || undefined, 10_000);
  t.pass(`headless echo-hl: one A per ready echo pod (${podIps.join(', ')})`);
  t.same(dig(pod2, 'ext.default.svc.cluster.local', 'A').answers, ['CNAME www.example.test.', 'A 192.0.2.53'], 'ExternalName: the CNAME, then the upstream\'s A for its target');
  t.same(dig(pod1, 'a.example.test', 'A').answers, ['A 192.0.2.53'], 'a name outside the zone: forwarded to the upstream on the outside host');
  t.equal(dig(pod1, 'nx.example.test', 'A').status, 'NXDOMAIN', 'the upstream\'s NXDOMAIN passed on');
  // ndots:5: glibc tries the three search domains first (each NXDOMAIN from the node's own index)
  // and the name as given last; only that one leaves the node, A and AAAA in parallel (no race).
  const viaSearch = spawnSync('ip', ['netns', 'exec', pod1.netns, 'getent', 'ahosts', 'ndots.example.test'], { encoding: 'utf8', timeout: 10_000 });
  t.match(viaSearch.stdout, /^192\.0\.2\.53\s/m, 'getent ahosts ndots.example.test (through the search path) resolves');
  upstream.stdin!.write('stats\n');
  const seen = ((await nextLine()).questions as string[]) ?? [];
  t.ok(seen.includes('a.example.test A udp') && seen.includes('www.example.test A udp'), `the upstream was asked: ${seen.join('; ')}`);
  t.notOk(seen.some((q) => q.includes('cluster.local') && !q.includes('loop-probe')), 'nothing of the cluster zone was forwarded');
  t.same(seen.filter((q) => q.startsWith('ndots.')).map((q) => q.split(' ')[0]).filter((n, i, a) => a.indexOf(n) === i), ['ndots.example.test'], 'the search-path expansions of ndots:5 never reach the upstream');
  // The agent's metrics (CoreDNS's names) on node1's --metrics-listen (127.0.0.1:10249 in its netns).
  const scraped = spawnSync('ip', ['netns', 'exec', node1.netns, 'curl', '-s', '-m', '5', 'http://127.0.0.1:10249/metrics'], { encoding: 'utf8' });
  const samples = parseExposition(scraped.stdout).samples;
  const sum = (name: string, labels: Record<string, string>) => samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
  t.ok(sum('coredns_dns_requests_total', { server: `dns://${CLUSTER_DNS}:53`, zone: 'cluster.local.', type: 'A' }) >= 3, 'node1: coredns_dns_requests_total of the cluster zone on dns://10.96.0.10:53');
  t.ok(sum('coredns_dns_responses_total', { server: `dns://${CLUSTER_DNS}:53`, rcode: 'NXDOMAIN' }) >= 1, 'node1: an NXDOMAIN response counted');
  t.ok(sum('coredns_forward_requests_total', { to: `${OUTSIDE_IP}:53` }) >= 2, 'node1: coredns_forward_requests_total to the upstream');
  t.same(dig(pod1, '-x', web.spec.clusterIP!).answers, ['PTR web.default.svc.cluster.local.'], 'PTR of the ClusterIP');
  const node = spawnSync('ip', ['netns', 'exec', pod2.netns, process.execPath, '-e', "require('node:dns').promises.resolve4('web.default.svc.cluster.local').then((a)=>console.log(a.join()),(e)=>{console.log(e.code);process.exit(1)})"], { encoding: 'utf8', timeout: 15_000 });
  t.equal(node.stdout.trim(), web.spec.clusterIP, `${pod2.name}: Node's dns.resolve4 (c-ares, the pod's resolv.conf)`);

  // A new Service, then its deletion, seen through a pod within 1 s (the NXDOMAIN before it is cached 1 s at most).
  t.equal(dig(pod1, 'late.default.svc.cluster.local', 'A').status, 'NXDOMAIN', 'late: NXDOMAIN before it exists');
  let t0 = Date.now();
  await c.admin.create({ plural: 'services', namespace: 'default' }, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'late' }, spec: { selector: { app: 'late' }, ports: [{ port: 80 }] } });
  await waitFor('late resolves', async () => dig(pod1, 'late.default.svc.cluster.local', 'A').status === 'NOERROR' || undefined, 3000);
  const created = Date.now() - t0;
  t.ok(created < 1000, `a new Service resolves through a pod after ${created} ms (< 1 s)`);
  t0 = Date.now();
  await c.admin.delete({ plural: 'services', namespace: 'default', name: 'late' });
  await waitFor('late gone', async () => dig(pod1, 'late.default.svc.cluster.local', 'A').status === 'NXDOMAIN' || undefined, 3000);
  const deleted = Date.now() - t0;
  t.ok(deleted < 1000, `a deleted Service is NXDOMAIN after ${deleted} ms (< 1 s)`);

  // node3's agent killed -9: it cannot withdraw its endpoint, so kube-dns still lists it; node1's
  // probes find it silent and leave it out of node1's fallback.
  node3.agent.kill('SIGKILL');
  await new Promise((r) => node3.agent.once('exit', r));
  await waitFor('node1 leaves node3\'s server out of its fallback', async () => {
    const dnsStatus = ((await agentStatus(node1)) as { dns?: { fallback: string[]; fallbackDown: string[] } }).dns;
    return dnsStatus?.fallbackDown.includes(gateways[2]!) && dnsStatus.fallback.join() === gateways[1] ? dnsStatus : undefined;
  }, 20_000);
  t.pass(`node1's fallback: ${gateways[1]} only (${gateways[2]} on node3 does not answer)`);

  // node1's agent killed too: the kernel sends its pods' queries to node2's server, every time.
  node1.agent.kill('SIGKILL');
  await new Promise((r) => node1.agent.once('exit', r));
  const viaFallback = [1, 2, 3, 4, 5, 6].map(() => dig(pod1, 'web.default.svc.cluster.local', 'A'));
  t.same(viaFallback[0], { status: 'NOERROR', answers: [`A ${web.spec.clusterIP!}`] }, 'node1 agent killed: pod on node1 still resolves');
  t.ok(viaFallback.every((r) => r.status === 'NOERROR'), `6 queries in a row answered (none sent to the dead node3): ${viaFallback.map((r) => r.status).join(' ')}`);
  const tracked = dnsConntrack(node1);
  t.ok(tracked.some((l) => l.includes(`src=${gateways[1]}`)), `the query went to node2's server ${gateways[1]} (conntrack: ${tracked[0] ?? 'none'})`);
  t.notOk(tracked.some((l) => l.includes(`src=${gateways[0]}`) || l.includes(`src=${gateways[2]}`)), 'never to node1\'s own address nor to node3\'s');

  // Back: answered locally again (no new conntrack entries).
  restartAgent(c, node1);
  await waitFor('node1 DNS serving again', async () => ((await agentStatus(node1).catch(() => undefined)) as { dns?: { listening: string[] } } | undefined)?.dns?.listening.length === 2 || undefined, 30_000);
  const after = dnsConntrack(node1).length;
  for (let i = 0; i < 3; i++) t.equal(dig(pod1, 'web.default.svc.cluster.local', 'A').status, 'NOERROR', `after the restart, query ${i + 1} answered`);
  t.equal(dnsConntrack(node1).length, after, 'after the restart: untracked again (answered on node1)');
});
