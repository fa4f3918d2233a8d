// `podwire explain` against a real 2-node vxlan lab (the real CLI binary, from the root netns):
// same-node pod → pod delivered over the bridge; cross-node pod → pod delivered with a vxlan hop
// naming the peer (and `podwire ping` really gets its replies); ClusterIP:port → a service hop with
// the DNAT candidates, then delivered; a service without endpoints → rejected; the route to the
// peer's podCIDR deleted by hand in node1's netns → dropped, the first broken hop the route hop
// (and ping really loses its packets); usage errors exit 2, SRC's agent down exits 3. host-gw: the
// direct next hop on the underlay names the peer.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createEchoService, ECHO_PORT, ECHO_SERVICE_PORT, waitFor } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabStates } from '../../src/lab/lab.js';
import type { Node, Service } from '../../src/api/objects.js';
import type { ExplainReport } from '../../src/cli/debug/explain.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(60_000);

const kinds = (r: ExplainReport) => r.hops.map((h) => `${h.node}:${h.kind}`);

t.test('podwire explain --lab', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 2 });
  const prefix = c.lab.prefix;
  const explain = (...args: string[]) => podwire(['explain', ...args, '--lab', prefix, '-o', 'json']);
  const [a, a2] = c.pods.filter((p) => p.node === 'node1');
  const b = c.pods.find((p) => p.node === 'node2')!;

  // Same node: eth0 → veth → cni0 → route dev cni0 → cni0 → veth → pod.
  const same = explain(a!.name, a2!.name);
  t.equal(same.code, 0, same.stderr);
  const sr = JSON.parse(same.stdout) as ExplainReport;
  t.same(Object.keys(sr).sort(), ['destination', 'hops', 'source', 'verdict']);
  t.same(Object.keys(sr.hops[0]!).sort(), ['detail', 'kind', 'name', 'node', 'ok']);
  t.equal(sr.verdict, 'delivered');
  t.same(kinds(sr), ['node1:pod', 'node1:veth', 'node1:bridge', 'node1:route', 'node1:bridge', 'node1:veth', 'node1:pod']);
  t.equal(sr.hops.at(-1)!.name, a2!.ip);
  t.match(sr.hops[3]!.detail, /dev cni0/);

  // Cross node: out podwire.1 via the peer's VTEP (neighbour + FDB) → node2 → bridge → pod.
  const cross = await waitFor('cross-node delivered', () => {
    const r = explain(a!.name, b.name);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const cr = JSON.parse(cross.stdout) as ExplainReport;
  t.same(kinds(cr), ['node1:pod', 'node1:veth', 'node1:bridge', 'node1:route', 'node1:vxlan', 'node2:underlay', 'node2:route', 'node2:bridge', 'node2:veth', 'node2:pod']);
  const vx = cr.hops.find((h) => h.kind === 'vxlan')!;
  t.equal(vx.name, 'node2', 'the vxlan hop names the peer');
  t.match(vx.detail, /neighbour 10\.244\.\d+\.0 lladdr [0-9a-f:]{17}, FDB [0-9a-f:]{17} dst 192\.0\.2\.\d+ → node node2/);
  t.match(cr.hops[3]!.detail, /via 10\.244\.\d+\.0 dev podwire\.1/);
  t.equal(podwire(['ping', a!.name, b.name, '-c', '2', '--interval-ms', '50', '--lab', prefix]).code, 0, 'and a ping really gets through');
  const table = podwire(['explain', a!.name, b.ip, '--lab', prefix]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^NODE\s+KIND\s+NAME\s+DETAIL\s+OK$/m);
  t.match(table.stdout, new RegExp(`→ pod default/${b.name}: delivered$`, 'm'));

  // From a node (its own packet): the route lookup picks the source (podwire.1's address).
  const fromNode = explain('node1', b.name);
  t.equal(fromNode.code, 0, fromNode.stderr);
  const fr = JSON.parse(fromNode.stdout) as ExplainReport;
  t.same(kinds(fr), ['node1:route', 'node1:vxlan', 'node2:underlay', 'node2:route', 'node2:bridge', 'node2:veth', 'node2:pod']);
  t.match(fr.hops[0]!.detail, /dev podwire\.1 src 10\.244\.\d+\.0$/);

  // A ClusterIP:port: the service hop with its DNAT candidates (all 4 echo pods), then delivered to the first.
  const svc = await createEchoService(c);
  const svcIp = svc.spec.clusterIP!;
  const viaSvc = explain(a!.name, `${svcIp}:${ECHO_SERVICE_PORT}/TCP`);
  t.equal(viaSvc.code, 0, viaSvc.stderr);
  const vr = JSON.parse(viaSvc.stdout) as ExplainReport;
  t.equal(vr.verdict, 'delivered');
  t.equal(vr.destination, `service default/echo:${ECHO_SERVICE_PORT}/TCP`);
  const sh = vr.hops.find((h) => h.kind === 'service')!;
  t.equal(sh.name, 'default/echo:http');
  const m = new RegExp(`^${svcIp.replace(/\./g, '\\.')}:${ECHO_SERVICE_PORT}/TCP DNAT to one of (.+); following (\\S+)$`).exec(sh.detail);
  t.ok(m, sh.detail);
  t.same(m![1]!.split(', ').sort(), c.pods.map((p) => `${p.ip}:${ECHO_PORT}`).sort(), 'every echo pod is a candidate');
  const followed = m![2]!.split(':')[0]!;
  t.equal(vr.hops.at(-1)!.kind, 'pod');
  t.equal(vr.hops.at(-1)!.name, followed, 'the path ends at the candidate it followed');
  const noPort = explain(a!.name, svcIp);
  t.equal(noPort.code, 1);
  t.match((JSON.parse(noPort.stdout) as ExplainReport).hops.find((h) => !h.ok)!.detail, /give DST:PORT/);

  // A service without endpoints: rejected at the service hop.
  const empty = await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'nobody' },
    spec: { type: 'ClusterIP', selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const rejected = await waitFor('the proxy knows service nobody', () => {
    const r = explain(a!.name, `nobody:80`);
    return r.code === 1 && (JSON.parse(r.stdout) as ExplainReport).verdict === 'rejected' ? r : undefined;
  }, 20_000);
  const rr = JSON.parse(rejected.stdout) as ExplainReport;
  const broken = rr.hops.find((h) => !h.ok)!;
  t.equal(broken.kind, 'service');
  t.equal(broken.name, 'default/nobody');
  t.match(broken.detail, new RegExp(`^${empty.spec.clusterIP!.replace(/\./g, '\\.')}:80/TCP: no usable endpoints`));

  // The route to node2's podCIDR deleted by hand in node1's netns (a pw- lab netns). The agent
  // puts it back on its next resync, so delete and explain right away, a few times if needed.
  const node2 = await c.admin.get<Node>({ plural: 'nodes', name: 'node2' });
  const peerCidr = node2.spec.podCIDR!;
  t.ok(c.nodes[0]!.netns.startsWith('pw-'), c.nodes[0]!.netns);
  let dropped: ExplainReport | undefined;
  let pingLost = false;
  for (let i = 0; i < 5 && !dropped; i++) {
    spawnSync('ip', ['-n', c.nodes[0]!.netns, 'route', 'del', peerCidr], { encoding: 'utf8' });
    const r = explain(a!.name, b.name);
    const rep = JSON.parse(r.stdout) as ExplainReport;
    if (rep.verdict === 'dropped') {
      t.equal(r.code, 1);
      dropped = rep;
      pingLost = podwire(['ping', a!.name, b.name, '-c', '1', '--timeout-ms', '300', '--lab', prefix]).code === 1;
    }
  }
  t.ok(dropped, 'explain saw the route gone');
  const firstBad = dropped!.hops.find((h) => !h.ok)!;
  t.equal(firstBad.kind, 'route', JSON.stringify(firstBad));
  t.equal(firstBad.node, 'node1');
  t.equal(firstBad.name, b.ip);
  t.ok(pingLost, 'and a ping really gets no reply');
  await waitFor('the agent restores the route', () => explain(a!.name, b.name).code === 0, 60_000);

  // Usage errors: exit 2 with the close match; SRC's agent down: exit 3.
  const unknown = podwire(['explain', a!.name, b.name + 'x', '--lab', prefix]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, new RegExp(`did you mean [^\\n]*${b.name}`));
  t.equal(podwire(['explain', a!.name, `${b.name}:99999`, '--lab', prefix]).code, 2, 'a bad port');
  t.equal(podwire(['explain', a!.name, '--lab', prefix]).code, 2, 'DST missing');
  const recorded = readLabStates().find((s) => s.prefix === prefix)!.procs.find((p) => p.what.startsWith(`${c.nodes[0]!.netns}: `) && p.what.includes('/src/agent/main.js'))!;
  t.equal(recorded.pid, c.nodes[0]!.agent.pid, 'the lab recorded node1\'s agent');
  process.kill(recorded.pid, 'SIGKILL');
  await waitFor('node1 agent gone', () => !isAlive(recorded));
  const down = podwire(['explain', a!.name, b.name, '--lab', prefix]);
  t.equal(down.code, 3, down.stderr);
  t.match(down.stderr, /cannot reach the agent of node1/);
});

t.test('podwire explain --lab, host-gw: the direct next hop on the underlay', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'host-gw', podsPerNode: 1 });
  const a = c.pods.find((p) => p.node === 'node1')!;
  const b = c.pods.find((p) => p.node === 'node2')!;
  const r = await waitFor('host-gw delivered', () => {
    const x = podwire(['explain', a.name, b.name, '--lab', c.lab.prefix, '-o', 'json']);
    return x.code === 0 ? x : undefined;
  }, 20_000);
  const rep = JSON.parse(r.stdout) as ExplainReport;
  t.same(kinds(rep), ['node1:pod', 'node1:veth', 'node1:bridge', 'node1:route', 'node1:underlay', 'node2:underlay', 'node2:route', 'node2:bridge', 'node2:veth', 'node2:pod']);
  const next = rep.hops[4]!;
  t.equal(next.name, 'node2');
  t.match(next.detail, /^next hop 192\.0\.2\.\d+ on \S+ is node node2$/);
  t.match(rep.hops[3]!.detail, /^via 192\.0\.2\.\d+ dev \S+$/);
  t.equal(podwire(['ping', a.name, b.name, '-c', '1', '--lab', c.lab.prefix]).code, 0, 'and a ping really gets through');
});
