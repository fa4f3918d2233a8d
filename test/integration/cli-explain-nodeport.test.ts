// `podwire explain` to NODE:NODEPORT against a real 2-node vxlan lab (the real CLI binary, from the
// root netns), checked against real TCP connections through the same NodePort (the lab's echo
// probe, run in the client's netns; the echo server says who answered and which client address it
// saw). externalTrafficPolicy Cluster, pod on node1 → node2:NODEPORT: node1 masquerades the pod
// (it leaves the cluster CIDR), node2's nodeport hop lists every echo pod, node2 masquerades and
// the path ends at the pod it followed — a real connection answered by that pod arrives from the
// address explain's last masquerade hop names. Policy Local (a selector-less service whose one
// endpoint is on node1): pod on node1 → node2:NODEPORT is dropped at node2's filter hop and a real
// connection fails; pod on node2 → node1:NODEPORT is delivered to the local endpoint, client IP
// (node2's address) kept, as the real connection sees it. From a node: node1 → node2:NODEPORT.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { BIN, createEchoService, ECHO_PORT, waitFor, type LabCluster } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { Endpoints, Service } from '../../src/api/objects.js';
import type { ExplainReport } from '../../src/cli/debug/explain.js';
import type { ProbeAnswer } from '../../src/lab/echo.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(60_000);
const kinds = (r: ExplainReport) => r.hops.map((h) => `${h.node}:${h.kind}`);

/** `count` real TCP connections from inside netns `ns` to target (one probe process). */
function probe(ns: string, target: string, count: number, timeoutMs = 2000): ProbeAnswer[] {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN.echo, 'probe', String(timeoutMs), ...Array.from({ length: count }, () => target)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`probe in ${ns} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeAnswer);
}

/** A NodePort service with no selector, externalTrafficPolicy Local, and manual Endpoints: one pod. */
async function localOnlyService(c: LabCluster, pod: { ip: string; node: string }): Promise<Service> {
  const svc = await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'local-only' },
    spec: { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: ECHO_PORT }] },
  });
  await c.admin.create<Endpoints>({ plural: 'endpoints', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'local-only' },
    subsets: [{ addresses: [{ ip: pod.ip, nodeName: pod.node }], ports: [{ port: ECHO_PORT }] }],
  });
  return svc;
}

t.test('podwire explain NODE:NODEPORT --lab agrees with real traffic', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 2 });
  const prefix = c.lab.prefix;
  const explain = (...args: string[]) => podwire(['explain', ...args, '--lab', prefix, '-o', 'json']);
  const [node1, node2] = c.nodes as [LabCluster['nodes'][0], LabCluster['nodes'][0]];
  const a = c.pods.find((p) => p.node === 'node1')!;
  const b = c.pods.find((p) => p.node === 'node2')!;

  // Policy Cluster: the lab's echo service (NodePort, every echo pod an endpoint).
  const svc = await createEchoService(c);
  const nodePort = svc.spec.ports![0]!.nodePort!;
  t.ok(nodePort >= 30000, `nodePort ${nodePort}`);
  const viaNode2 = await waitFor('pod → node2:NODEPORT delivered', () => {
    const r = explain(a.name, `node2:${nodePort}`);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const vr = JSON.parse(viaNode2.stdout) as ExplainReport;
  t.equal(vr.destination, `node node2:${nodePort}/TCP`);
  t.same(kinds(vr).slice(0, 8), ['node1:pod', 'node1:veth', 'node1:bridge', 'node1:route', 'node1:masquerade', 'node1:underlay', 'node2:underlay', 'node2:nodeport']);
  const podMasq = vr.hops[4]!;
  t.equal(podMasq.name, node1.underlayIp, 'node1 masquerades the pod to its underlay address');
  t.match(podMasq.detail, new RegExp(`^SNAT ${a.ip.replace(/\./g, '\\.')} → ${node1.underlayIp.replace(/\./g, '\\.')} \\(\\S+'s address\\): pod traffic leaving the cluster CIDR`));
  const np = vr.hops[7]!;
  t.equal(np.name, 'default/echo:http');
  const m = new RegExp(`^NodePort ${nodePort}/TCP on ${node2.underlayIp.replace(/\./g, '\\.')}, externalTrafficPolicy Cluster: DNAT to one of (.+); following (\\S+)$`).exec(np.detail);
  t.ok(m, np.detail);
  t.same(m![1]!.split(', ').sort(), c.pods.map((p) => `${p.ip}:${ECHO_PORT}`).sort(), 'every echo pod is a candidate');
  const followed = m![2]!.split(':')[0]!;
  t.equal(vr.hops[8]!.kind, 'route');
  const svcMasq = vr.hops[9]!;
  t.equal(svcMasq.kind, 'masquerade', 'node2 masquerades NodePort traffic under policy Cluster');
  t.match(svcMasq.detail, /externalTrafficPolicy Cluster: the proxy masquerades NodePort traffic/);
  t.equal(vr.hops.at(-1)!.kind, 'pod');
  t.equal(vr.hops.at(-1)!.name, followed, 'the path ends at the candidate it followed');
  // Real traffic: every connection through node2's NodePort is answered; one answered by the
  // followed pod arrives from the address of node2's masquerade hop.
  const followedPod = c.pods.find((p) => p.ip === followed)!;
  const answers = probe(a.netns, `${node2.underlayIp}:${nodePort}`, 24);
  t.ok(answers.every((x) => x.ok), `every connection answered ${JSON.stringify(answers.filter((x) => !x.ok))}`);
  const byFollowed = answers.filter((x) => x.name === followedPod.name);
  t.ok(byFollowed.length > 0, `one of 24 connections reached ${followedPod.name}: ${JSON.stringify(answers.map((x) => x.name))}`);
  t.same([...new Set(byFollowed.map((x) => x.seenAs))], [svcMasq.name], 'and saw the client as explain\'s masquerade address');

  // From node1 itself: its own address as the source, node2 takes the NodePort.
  const fromNode = explain('node1', `${node2.underlayIp}:${nodePort}`);
  t.equal(fromNode.code, 0, fromNode.stderr);
  const fr = JSON.parse(fromNode.stdout) as ExplainReport;
  t.same(kinds(fr).slice(0, 4), ['node1:route', 'node1:underlay', 'node2:underlay', 'node2:nodeport']);
  t.ok(probe(node1.netns, `${node2.underlayIp}:${nodePort}`, 2).every((x) => x.ok), 'and node1 really connects through it');

  // Policy Local, the only endpoint on node1.
  const local = await localOnlyService(c, a);
  const localPort = local.spec.ports![0]!.nodePort!;
  const dropped = await waitFor('node2 knows service local-only', () => {
    const r = explain(a.name, `node2:${localPort}`);
    return r.code === 1 && (JSON.parse(r.stdout) as ExplainReport).verdict === 'dropped' ? r : undefined;
  }, 20_000);
  const dr = JSON.parse(dropped.stdout) as ExplainReport;
  const broken = dr.hops.find((h) => !h.ok)!;
  t.same([broken.node, broken.kind, broken.name], ['node2', 'filter', 'default/local-only'], JSON.stringify(broken));
  t.match(broken.detail, /externalTrafficPolicy Local and no local endpoint/);
  t.match(dr.hops.find((h) => h.kind === 'nodeport')!.detail, /externalTrafficPolicy Local: no endpoint on this node \(1 elsewhere in the cluster\): not translated$/);
  const refused = probe(a.netns, `${node2.underlayIp}:${localPort}`, 1, 1500);
  t.equal(refused[0]!.ok, false, `a real connection fails too (${refused[0]!.error})`);
  const table = podwire(['explain', a.name, `node2:${localPort}`, '--lab', prefix]);
  t.equal(table.code, 1);
  t.match(table.stdout, new RegExp(`→ node node2:${localPort}/TCP: dropped at filter default/local-only on node node2: `));

  t.comment(table.stdout);
  const kept = await waitFor('node1 knows service local-only', () => {
    const r = explain(b.name, `node1:${localPort}`);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const kr = JSON.parse(kept.stdout) as ExplainReport;
  t.same(kinds(kr), ['node2:pod', 'node2:veth', 'node2:bridge', 'node2:route', 'node2:masquerade', 'node2:underlay', 'node1:underlay', 'node1:nodeport', 'node1:route', 'node1:bridge', 'node1:veth', 'node1:pod']);
  t.match(kr.hops[7]!.detail, new RegExp(`externalTrafficPolicy Local: this node's endpoints only, client IP kept: DNAT to ${a.ip.replace(/\./g, '\\.')}:${ECHO_PORT}$`));
  const real = probe(b.netns, `${node1.underlayIp}:${localPort}`, 2);
  t.same(real.map((x) => [x.ok, x.name, x.seenAs]), [[true, a.name, kr.hops[4]!.name], [true, a.name, kr.hops[4]!.name]], 'answered by the local endpoint, the client seen as node2\'s masquerade address');
  t.equal(kr.hops[4]!.name, node2.underlayIp);
  t.comment(podwire(['explain', a.name, `node2:${nodePort}`, '--lab', prefix]).stdout);
});
