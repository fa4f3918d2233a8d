// `podwire status --lab PREFIX` against a real lab (2 nodes): the real CLI binary, run as an
// operator would from the root netns (the control plane's and agents' unix sockets are files).
// Healthy → JSON of the documented shape, exit 0; one agent killed by its recorded PID → that
// node reported down, exit 1; an unknown --node → exit 2 with the close match.
import t from 'tap';
import { waitFor } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabStates } from '../../src/lab/lab.js';
import type { StatusReport } from '../../src/cli/debug/status.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(30_000);

t.test('podwire status --lab: healthy, an agent down, an unknown node', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1 });
  const prefix = c.lab.prefix;

  // The proxy's first sync may still be running right after the cluster is up.
  const ok = await waitFor('status healthy', () => {
    const r = podwire(['status', '--lab', prefix, '-o', 'json']);
    return r.code === 0 ? r : undefined;
  }, 20_000);
  const report = JSON.parse(ok.stdout) as StatusReport;
  t.equal(report.where, `lab ${prefix}`);
  t.same(Object.keys(report).sort(), ['controlPlane', 'healthy', 'nodes', 'summary', 'where']);
  t.equal(report.controlPlane.reachable, true);
  t.type(report.controlPlane.version, 'string');
  t.equal(report.healthy, true);
  t.same(report.summary, { nodes: 2, agentsUp: 2, agentsDown: 0, agentsUnknown: 0, problems: 0 });
  t.same(report.nodes.map((n) => n.name), ['node1', 'node2']);
  for (const n of report.nodes) {
    t.same(Object.keys(n).sort(), ['agent', 'backend', 'internalIp', 'name', 'networkReady', 'podCidr', 'pods', 'problems'], `${n.name}: node fields`);
    t.match(n.podCidr, /^10\.244\.\d+\.0\/24$/);
    t.equal(n.backend, 'vxlan');
    t.equal(n.networkReady, true);
    t.equal(n.pods, 1, 'one pod each (the CNI plugin registered it)');
    t.equal(n.agent.state, 'up');
    t.equal(n.agent.peers, 1);
    t.equal(n.agent.controlPlane, 'connected');
    t.same(n.agent.network!.errors, []);
    t.type(n.agent.network!.lastSyncAt, 'string');
    t.type(n.agent.network!.durationMs, 'number');
    t.same(n.agent.outOfSync, [], 'the kernel matches the plan (the agent\'s new outOfSync)');
    t.equal(n.agent.proxy!.mode, 'nftables');
    t.ok(n.agent.memoryMB! > 0, `memory ${n.agent.memoryMB} MB`);
    t.equal(n.agent.dns?.serving, true, `${n.name}: the cluster DNS serves (${n.agent.dns?.listening.join(', ')})`);
    t.same(n.problems, []);
  }
  const table = podwire(['status', '--lab', prefix]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^NODE\s+PODCIDR\s+BACKEND\s+AGENT/m);
  t.match(table.stdout, /2 nodes, agents 2 up: healthy/);
  t.notMatch(table.stdout, /\x1b\[/, 'no colour in a pipe');

  const bad = podwire(['status', '--lab', prefix, '--node', 'nod2']);
  t.equal(bad.code, 2, 'an unknown node is a usage error');
  t.match(bad.stderr, /unknown node "nod2"; did you mean node2/);
  const badLab = podwire(['status', '--lab', `${prefix.slice(0, -2)}-`]);
  t.equal(badLab.code, 2);
  t.match(badLab.stderr, new RegExp(`did you mean ${prefix}`));

  // Stop node2's agent by the PID the lab recorded (the lab's teardown then finds it gone).
  const recorded = readLabStates().find((s) => s.prefix === prefix)!.procs.find((p) => p.what.startsWith(`${c!.nodes[1]!.netns}: `) && p.what.includes('/src/agent/main.js'))!;
  t.equal(recorded.pid, c.nodes[1]!.agent.pid, 'the lab recorded node2\'s agent');
  process.kill(recorded.pid, 'SIGKILL');
  await waitFor('node2 agent gone', () => !isAlive(recorded));
  const down = podwire(['status', '--lab', prefix, '-o', 'json']);
  t.equal(down.code, 1, 'a node\'s agent down: exit 1');
  const r2 = JSON.parse(down.stdout) as StatusReport;
  t.equal(r2.nodes[0]!.agent.state, 'up');
  t.equal(r2.nodes[1]!.agent.state, 'down');
  t.match(r2.nodes[1]!.agent.error, /nothing answers at https:\/\/192\.0\.2\.12:10262 \(through the lab.s forwarder .*agent-https\.sock\) \(agent stopped\?\)/, "the agent's HTTPS endpoint, through the lab's forwarder");
  t.match(r2.nodes[1]!.problems[0], /^agent down: /);
  t.same(r2.summary, { nodes: 2, agentsUp: 1, agentsDown: 1, agentsUnknown: 0, problems: 1 });
  const one = podwire(['status', '--lab', prefix, '--node', 'node1', '-o', 'json']);
  t.equal(one.code, 0, '--node node1 alone is healthy');
  t.same((JSON.parse(one.stdout) as StatusReport).nodes.map((n) => n.name), ['node1']);
  const wide = podwire(['status', '--lab', prefix, '-o', 'wide']);
  t.equal(wide.code, 1);
  t.match(wide.stdout, /node2: agent down: /);
});
