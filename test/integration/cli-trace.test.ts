// `podwire trace` against a real 2-node vxlan lab (the real CLI binary, from the root netns): the
// probe is real traffic from inside the source pod, traced with nftables on both nodes. Same-node
// pod → delivered over node1 only; cross-node pod → node1 then node2 (the nftrace mark set again
// on node2, after VXLAN); ClusterIP → the DNAT rule and the backend, one of explain's candidates;
// NodePort on node2 → masqueraded on node1, DNATed on node2; a service without endpoints →
// rejected at the reject rule, as explain says; the route to node2's podCIDR deleted by hand in
// node1's netns → dropped, on node1, where explain names the route; a trace never stopped
// removes its table after its ttl; no trace table remains on any node; usage errors exit 2; an
// agent down exits 3.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { clusterFiles, createEchoService, ECHO_PORT, ECHO_SERVICE_PORT, restartAgent, waitFor } from '../../src/lab/cluster.js';
import { ApiClient } from '../../src/client/api-client.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { Node, Service } from '../../src/api/objects.js';
import type { TraceReport } from '../../src/cli/debug/trace.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabStates } from '../../src/lab/lab.js';

const podwire = cliRunner(60_000);

const traceTables = (netns: string): string[] =>
  spawnSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('podwire-trace'));

t.test('podwire trace --lab', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 2 });
  const prefix = c.lab.prefix;
  const trace = (...args: string[]) => {
    const r = podwire(['trace', ...args, '--lab', prefix, '-o', 'json']);
    return { ...r, report: r.stdout ? (JSON.parse(r.stdout) as TraceReport) : undefined };
  };
  const [a, a2] = c.pods.filter((p) => p.node === 'node1');
  const b = c.pods.find((p) => p.node === 'node2')!;
  const endpoints = c.pods.map((p) => `${p.ip}:${ECHO_PORT}`);

  // Same node: the SYN's chains on node1 only, the probe connected.
  const same = trace(a!.name, `${a2!.name}:${ECHO_PORT}`);
  t.equal(same.code, 0, same.stderr);
  const sr = same.report!;
  t.same(Object.keys(sr).sort(), ['agree', 'destination', 'explain', 'hops', 'notes', 'probe', 'source', 'verdict']);
  t.same(Object.keys(sr.hops.find((h) => h.handle !== undefined)!).sort(), ['chain', 'handle', 'hook', 'node', 'rule', 'table', 'verdict']);
  t.equal(sr.verdict, 'delivered');
  t.same(sr.explain, { verdict: 'delivered' });
  t.ok(sr.probe.ok, 'the probe really connected');
  t.same([...new Set(sr.hops.map((h) => h.node))], ['node1']);
  t.ok(sr.hops.some((h) => h.hook === 'prerouting') && sr.hops.some((h) => h.hook === 'postrouting'), 'routed: prerouting then postrouting');

  // Cross node: node1, then node2 (marked again after decapsulation).
  const cross = await waitFor('cross-node delivered', () => {
    const r = trace(a!.name, `${b.name}:${ECHO_PORT}`);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const cr = cross.report!;
  t.same([...new Set(cr.hops.map((h) => h.node))], ['node1', 'node2']);
  t.ok(cr.hops.some((h) => h.node === 'node2' && h.hook === 'postrouting'), 'node2 routed it on towards its pod');
  const table = podwire(['trace', a!.name, `${b.ip}:${ECHO_PORT}`, '--lab', prefix]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^NODE\s+HOOK\s+TABLE\s+CHAIN\s+RULE\s+VERDICT$/m);
  t.match(table.stdout, new RegExp(`→ pod default/${b.name}:${ECHO_PORT}/TCP: delivered$`, 'm'));
  t.match(table.stdout, /^explain: delivered; agrees$/m);

  // ClusterIP: the DNAT rule on node1 and the backend it picked, one of explain's candidates.
  const svc = await createEchoService(c);
  const svcIp = svc.spec.clusterIP!;
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const r = trace(a!.name, `${svcIp}:${ECHO_SERVICE_PORT}`);
    t.equal(r.code, 0, r.stderr);
    const rep = r.report!;
    t.equal(rep.verdict, 'delivered');
    t.ok(rep.backend && endpoints.includes(rep.backend), `backend ${rep.backend} is an echo pod`);
    t.same([...(rep.explain.candidates ?? [])].sort(), [...endpoints].sort(), 'explain lists every echo pod as a DNAT candidate');
    t.ok(rep.hops.some((h) => h.node === 'node1' && h.hook === 'prerouting' && /^dnat /.test(h.rule) && h.verdict === 'accept'), 'the DNAT rule matched on node1');
    const backendNode = c.pods.find((p) => `${p.ip}:${ECHO_PORT}` === rep.backend)!.node;
    t.ok(rep.hops.some((h) => h.node === backendNode), `the probe is seen on the backend's node ${backendNode}`);
    seen.add(rep.backend!);
  }
  t.ok(seen.size >= 1);

  // NodePort on node2 from a pod on node1: masqueraded leaving node1, DNATed on node2.
  const nodePort = svc.spec.ports![0]!.nodePort!;
  const node2Ip = c.nodes[1]!.underlayIp;
  const np = trace(a!.name, `${node2Ip}:${nodePort}`);
  t.equal(np.code, 0, np.stderr);
  const npr = np.report!;
  t.equal(npr.verdict, 'delivered');
  t.ok(npr.backend && endpoints.includes(npr.backend), `NodePort backend ${npr.backend} is an echo pod`);
  t.ok(npr.hops.some((h) => h.node === 'node1' && /masquerade/.test(h.rule) && h.verdict === 'accept'), 'node1 masquerades pod → node traffic');
  t.ok(npr.hops.some((h) => h.node === 'node2' && /^dnat /.test(h.rule) && h.verdict === 'accept'), 'node2 DNATs the NodePort');

  // A service without endpoints: rejected by the reject rule; explain breaks at the service.
  await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'nobody' },
    spec: { type: 'ClusterIP', selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const rejected = await waitFor('the proxy rejects service nobody', () => {
    const r = trace(a!.name, 'nobody:80');
    return r.code === 1 && r.report?.verdict === 'rejected' ? r : undefined;
  }, 20_000);
  const rr = rejected.report!;
  t.equal(rr.agree, true, rr.disagreement ?? '');
  t.match(rr.explain.brokenAt, { node: 'node1', kind: 'service', name: 'default/nobody' });
  const drop = rr.hops.find((h) => h.verdict === 'drop')!;
  t.match(drop, { node: 'node1', hook: 'prerouting' });
  t.match(drop.rule, /reject/);
  t.equal(rr.probe.ok, false, 'and the real connect was refused');

  // The route to node2's podCIDR deleted by hand in node1's netns: dropped on node1 after
  // prerouting, where explain's route hop breaks. The agent restores the route on its next
  // resync, so delete and trace right away, a few times if needed.
  const node2 = await c.admin.get<Node>({ plural: 'nodes', name: 'node2' });
  t.ok(c.nodes[0]!.netns.startsWith('pw-'), c.nodes[0]!.netns);
  let dropped: TraceReport | undefined;
  for (let i = 0; i < 5 && !dropped; i++) {
    spawnSync('ip', ['-n', c.nodes[0]!.netns, 'route', 'del', node2.spec.podCIDR!], { encoding: 'utf8' });
    const r = trace(a!.name, `${b.name}:${ECHO_PORT}`);
    if (r.report?.verdict === 'dropped' && r.report.explain.verdict === 'dropped') {
      t.equal(r.code, 1);
      dropped = r.report;
    }
  }
  t.ok(dropped, 'trace and explain saw the route gone');
  const firstBad = dropped!.hops.find((h) => h.verdict === 'drop')!;
  t.match(firstBad, { node: 'node1', hook: 'routing' });
  t.match(firstBad.rule, /route lookup dropped it/);
  t.match(dropped!.explain.brokenAt, { node: 'node1', kind: 'route', name: b.ip });
  t.equal(dropped!.agree, true, dropped!.disagreement ?? '');
  t.equal(dropped!.probe.ok, false, 'and the real connect failed');
  await waitFor('the agent restores the route', () => trace(a!.name, `${b.name}:${ECHO_PORT}`).code === 0, 60_000);

  // A trace never stopped: its table goes away after its ttl.
  const agent = new ApiClient({ server: 'http://podwire-agent', socketPath: clusterFiles(prefix).agentSocket('node2'), timeoutMs: 5000 });
  try {
    await agent.request('POST', '/v1/debug/trace/start', { id: 'leftover1', src: a!.ip, sport: 20001, proto: 'TCP', ttlMs: 1000 });
    t.same(traceTables(c.nodes[1]!.netns), ['table inet podwire-trace-leftover1']);
    await waitFor('the leftover trace table is removed', () => traceTables(c.nodes[1]!.netns).length === 0, 5000);
    await t.rejects(agent.request('POST', '/v1/debug/trace/stop', { id: 'leftover1' }), { code: 404 });
    await t.rejects(agent.request('POST', '/v1/debug/trace/start', { id: 'x', src: a!.ip, sport: 1, proto: 'TCP' }), { code: 400 });
  } finally {
    agent.close();
  }
  for (const n of c.nodes) t.same(traceTables(n.netns), [], `no trace table left on ${n.name}`);

  // Usage errors: exit 2.
  t.equal(podwire(['trace', a!.name, b.name, '--lab', prefix]).code, 2, 'no port');
  t.equal(podwire(['trace', a!.name, `${b.name}:99999`, '--lab', prefix]).code, 2, 'a bad port');
  t.equal(podwire(['trace', a!.name, `${b.name}:80/SCTP`, '--lab', prefix]).code, 2, 'SCTP');
  t.equal(podwire(['trace', 'node1', `${b.name}:80`, '--lab', prefix]).code, 2, 'SRC not a pod');
  t.equal(podwire(['trace', a!.name, `${b.name}:80`, '--timeout', '99', '--lab', prefix]).code, 2, 'a bad timeout');
  const unknown = podwire(['trace', a!.name, `${b.name}x:80`, '--lab', prefix]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, new RegExp(`did you mean [^\\n]*${b.name}`));

  // node2's agent down: exit 3 naming it (trace starts on every node of the lab).
  const recorded = readLabStates().find((s) => s.prefix === prefix)!.procs.find((p) => p.what.startsWith(`${c.nodes[1]!.netns}: `) && p.what.includes('/src/agent/main.js'))!;
  t.equal(recorded.pid, c.nodes[1]!.agent.pid, 'the lab recorded node2\'s agent');
  process.kill(recorded.pid, 'SIGKILL');
  await waitFor('node2 agent gone', () => !isAlive(recorded));
  const down = podwire(['trace', a!.name, `${a2!.name}:${ECHO_PORT}`, '--lab', prefix]);
  t.equal(down.code, 3, down.stderr);
  t.match(down.stderr, /cannot reach the agent of node2/);
  t.same(traceTables(c.nodes[0]!.netns), [], 'node1\'s trace was stopped when node2\'s could not start');

  // An agent killed mid-trace leaves its table (no ttl timer survives it): the next start removes it, and only it.
  const n2 = c.nodes[1]!;
  spawnSync('ip', ['netns', 'exec', n2.netns, 'nft', 'add', 'table', 'inet', 'podwire-trace-stale1'], { stdio: 'inherit' });
  spawnSync('ip', ['netns', 'exec', n2.netns, 'nft', 'add', 'table', 'inet', 'someone-elses'], { stdio: 'inherit' });
  t.same(traceTables(n2.netns), ['table inet podwire-trace-stale1']);
  restartAgent(c, n2);
  await waitFor('the restarted agent removes the stale trace table', () => traceTables(n2.netns).length === 0, 20_000);
  t.match(spawnSync('ip', ['netns', 'exec', n2.netns, 'nft', 'list', 'tables'], { encoding: 'utf8' }).stdout, /table inet someone-elses/, 'a table not of podwire trace is left alone');
});
