// `podwire peers` / `podwire routes --lab PREFIX` against a real 2-node vxlan lab: the real CLI
// binary from the root netns. Healthy → every route, neighbour and FDB entry present, exit 0, JSON
// of the documented shape; then one peer route deleted by hand in node1's netns (`ip -n NETNS route
// del`, not podwire code) → that route is `missing`, exit 1. So that the agent cannot repair it
// between the delete and the check, node1's agent is first restarted with --resync-interval 3600
// and left to settle (nothing else in the lab makes it sync); it then repairs the route on the next
// sync anyway, which the test triggers by restarting it once more.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { agentStatus, restartAgent, waitAgentSynced, waitFor } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { PeersReport } from '../../src/cli/debug/peers.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(30_000);

t.test('podwire peers/routes --lab: healthy, then a route deleted by hand', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 0 });
  const prefix = c.lab.prefix;
  const [n1, n2] = c.nodes;

  const healthy = podwire(['peers', '--lab', prefix, '-o', 'json']);
  t.equal(healthy.code, 0, healthy.stderr);
  const report = JSON.parse(healthy.stdout) as PeersReport;
  t.same(Object.keys(report).sort(), ['healthy', 'nodes']);
  t.equal(report.healthy, true);
  t.same(report.nodes.map((n) => n.node), ['node1', 'node2']);
  const cidrOf = new Map<string, string>();
  for (const n of [n1!, n2!]) cidrOf.set(n.name, (await agentStatus(n)).podCidr!);
  for (const n of report.nodes) {
    t.same(Object.keys(n).sort(), ['agent', 'backend', 'error', 'node', 'peers', 'problems', 'unreachable'], `${n.node}: node fields`);
    t.equal(n.agent, 'up');
    t.equal(n.backend, 'vxlan');
    t.same(n.unreachable, []);
    t.same(n.problems, []);
    t.equal(n.peers.length, 1);
    const p = n.peers[0]!;
    const peer = n.node === 'node1' ? 'node2' : 'node1';
    t.same(Object.keys(p).sort(), ['fdb', 'mode', 'name', 'neighbour', 'podCidr', 'route', 'underlayIp', 'vtepMac']);
    t.equal(p.name, peer);
    t.equal(p.mode, 'vxlan');
    t.equal(p.podCidr, cidrOf.get(peer));
    t.match(p.vtepMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    t.match(p.underlayIp, /^\d+\.\d+\.\d+\.\d+$/);
    const vtepIp = p.podCidr.split('/')[0];
    t.same(p.route, { status: 'present', desired: { dst: p.podCidr, gateway: vtepIp, dev: 'podwire.1', onlink: true }, present: { dst: p.podCidr, gateway: vtepIp, dev: 'podwire.1', onlink: true }, detail: null });
    t.same(p.neighbour, { status: 'present', desired: { ip: vtepIp, lladdr: p.vtepMac, dev: 'podwire.1' }, present: { ip: vtepIp, lladdr: p.vtepMac, dev: 'podwire.1' }, detail: null });
    t.same(p.fdb, { status: 'present', desired: { mac: p.vtepMac, dst: p.underlayIp, dev: 'podwire.1' }, present: { mac: p.vtepMac, dst: p.underlayIp, dev: 'podwire.1' }, detail: null });
  }
  const table = podwire(['peers', '--lab', prefix]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^NODE\s+PEER\s+MODE\s+PODCIDR\s+UNDERLAY\s+VTEP-MAC\s+ROUTE\s+NEIGH\s+FDB$/m);
  t.match(table.stdout, /^node1\s+node2\s+vxlan\s+\S+\s+\S+\s+\S+\s+present\s+present\s+present$/m);
  const routes = podwire(['routes', '--lab', prefix, '--node', 'node2']);
  t.equal(routes.code, 0, routes.stderr);
  t.match(routes.stdout, new RegExp(`^node2\\s+${cidrOf.get('node1')!.replace(/\./g, '\\.')}\\s+node1\\s+via \\S+ dev podwire\\.1 onlink\\s+present$`, 'm'));
  t.notMatch(routes.stdout, /^node1/m, '--node node2 only');
  const bad = podwire(['routes', '--lab', prefix, '--node', 'nod1']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown node "nod1"; did you mean node1/);

  // node1's agent again, with no periodic resync for an hour; wait until its startup syncs are over.
  n1!.agent.kill('SIGKILL');
  await new Promise((r) => n1!.agent.once('exit', r));
  n1!.agentArgs.push('--resync-interval', '3600');
  restartAgent(c, n1!);
  await waitAgentSynced(n1!, 1);
  let last = '';
  await waitFor('node1 agent settled', async () => {
    const at = (await agentStatus(n1!)).lastSync?.at ?? '';
    const same = at === last;
    last = at;
    return same ? true : (await new Promise((r) => setTimeout(r, 1000)), undefined);
  }, 20_000);

  const dst = cidrOf.get('node2')!;
  execFileSync('ip', ['-n', n1!.netns, 'route', 'del', dst], { stdio: 'pipe' });
  const broken = podwire(['peers', '--lab', prefix, '-o', 'json']);
  t.equal(broken.code, 1, 'a missing route: exit 1');
  const r2 = JSON.parse(broken.stdout) as PeersReport;
  t.equal(r2.healthy, false);
  const p1 = r2.nodes[0]!.peers[0]!;
  t.equal(p1.route.status, 'missing');
  t.equal(p1.route.present, null);
  t.equal(p1.neighbour!.status, 'present', 'the neighbour is untouched');
  t.equal(p1.fdb!.status, 'present');
  t.match(r2.nodes[0]!.problems, [new RegExp(`^node1: route ${dst.replace(/\./g, '\\.')} via .* for peer node2 is missing$`)]);
  t.same(r2.nodes[1]!.problems, [], 'node2 is intact');
  const wide = podwire(['routes', '--lab', prefix, '-o', 'wide']);
  t.equal(wide.code, 1);
  t.match(wide.stdout, /^node1\s+\S+\s+node2\s+via \S+ dev podwire\.1 onlink\s+missing\s+-\s+-$/m);
  t.match(wide.stdout, /2 nodes, 2 peer entries: 1 problem\n {2}node1: route /);
  t.equal(podwire(['peers', '--lab', prefix, '--node', 'node2']).code, 0, 'node2 alone is healthy');

  // The next sync repairs it; then an agent down is exit 3.
  n1!.agent.kill('SIGKILL');
  await new Promise((r) => n1!.agent.once('exit', r));
  const down = podwire(['peers', '--lab', prefix, '-o', 'json']);
  t.equal(down.code, 3, 'an agent that cannot be reached: exit 3');
  const r3 = JSON.parse(down.stdout) as PeersReport;
  t.equal(r3.nodes[0]!.agent, 'down');
  t.match(r3.nodes[0]!.error, /cannot reach the agent of node1/);
  restartAgent(c, n1!);
  await waitFor('route repaired', () => (podwire(['peers', '--lab', prefix]).code === 0 ? true : undefined), 30_000);
  t.pass('the agent repaired the route on its next sync');
});
