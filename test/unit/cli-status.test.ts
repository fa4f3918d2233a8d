// `podwire status`, pure (src/cli/debug/status.ts): fixture Nodes, Pods and agent answers → the
// report (the -o json fields documented in src/cli/README.md), the table, and the exit code.
import t from 'tap';
import type { Node, Pod } from '../../src/api/objects.js';
import type { AgentAnswer, AgentStatusView } from '../../src/cli/debug/agent.js';
import { painter } from '../../src/cli/debug/output.js';
import { buildStatusReport, renderStatus, statusExitCode, summaryLine, type StatusInput } from '../../src/cli/debug/status.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

const node = (name: string, podCIDR: string, ip: string, ready = true): Node => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name, annotations: { 'podwire.io/backend': 'vxlan', 'podwire.io/public-ip': ip } },
  spec: { podCIDR },
  status: { addresses: [{ type: 'InternalIP', address: ip }], conditions: [{ type: 'NetworkUnavailable', status: ready ? 'False' : 'True', message: ready ? 'ok' : 'route add failed' }] },
});
const pod = (name: string, nodeName: string): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { nodeName } });

function agent(name: string, podCidr: string, over: Partial<AgentStatusView> = {}): AgentAnswer {
  return {
    ok: true,
    status: {
      nodeName: name, podCidr, backend: 'vxlan', controlPlane: 'connected',
      peers: [{ name: 'peer', podCidr: '10.244.9.0/24', publicIp: '192.0.2.99' }],
      lastSync: { at: at(5), steps: [], errors: [], ms: 12, objects: { routes: 1, neighbours: 1, fdb: 1 } },
      proxy: { mode: 'nftables', services: 1, servicePorts: 2, endpoints: 4, lastSync: { at: at(3), scope: 'partial', ms: 7 } },
      process: { rssMB: 61.5, heapUsedMB: 20, uptimeS: 300 },
      outOfSync: [],
      dns: { clusterDns: '10.96.0.10', gateway: podCidr.replace(/0\/24$/, '1'), synced: true, listening: ['10.96.0.10:53', `${podCidr.replace(/0\/24$/, '1')}:53`], upstreams: ['192.0.2.250:53'], loops: [], fallback: [] },
      ...over,
    },
  };
}

const CP = { server: 'unix:/run/podwire/lab/pw-t.d/controlplane/api.sock', reachable: true, version: 'v0.1.0' };
const NODES = [node('node1', '10.244.0.0/24', '192.0.2.10'), node('node2', '10.244.1.0/24', '192.0.2.11')];
const PODS = [pod('a', 'node1'), pod('b', 'node1'), pod('c', 'node2')];

function input(agents: Array<[string, AgentAnswer | undefined]>, over: Partial<StatusInput> = {}): StatusInput {
  return { where: 'lab pw-t-', controlPlane: CP, nodes: NODES.map((n) => ({ name: n.metadata.name, node: n })), pods: PODS, agents: new Map(agents), ...over };
}

t.test('a healthy cluster: every field, exit 0', async (t) => {
  const r = buildStatusReport(input([['node1', agent('node1', '10.244.0.0/24')], ['node2', agent('node2', '10.244.1.0/24')]]));
  t.same(r.controlPlane, { server: CP.server, reachable: true, version: 'v0.1.0', error: null });
  t.same(r.nodes[0], {
    name: 'node1', podCidr: '10.244.0.0/24', internalIp: '192.0.2.10', backend: 'vxlan', networkReady: true, pods: 2,
    agent: {
      state: 'up', error: null, controlPlane: 'connected', peers: 1,
      network: { lastSyncAt: at(5), durationMs: 12, steps: 0, errors: [], routes: 1, neighbours: 1, fdb: 1 },
      proxy: { mode: 'nftables', lastSyncAt: at(3), durationMs: 7, error: null, services: 1, servicePorts: 2, endpoints: 4 },
      memoryMB: 61.5, uptimeS: 300, outOfSync: [],
      dns: { serving: true, listening: ['10.96.0.10:53', '10.244.0.1:53'], upstreams: ['192.0.2.250:53'], error: null },
    },
    problems: [],
  });
  t.same(r.summary, { nodes: 2, agentsUp: 2, agentsDown: 0, agentsUnknown: 0, problems: 0 });
  t.equal(r.healthy, true);
  t.equal(statusExitCode(r), 0);
  t.same(JSON.parse(JSON.stringify(r)), r, 'JSON round trip (no undefined fields: every documented field is present)');
  const table = renderStatus(r, 'table', NOW);
  t.equal(table, [
    `lab pw-t-: control plane ${CP.server} reachable (v0.1.0)`,
    '',
    'NODE    PODCIDR         BACKEND   AGENT   LAST SYNC   DURATION   PEERS   PODS   SERVICES   MEMORY   PROBLEMS',
    'node1   10.244.0.0/24   vxlan     up      5s ago      12ms       1       2      1          61.5MB   0',
    'node2   10.244.1.0/24   vxlan     up      5s ago      12ms       1       1      1          61.5MB   0',
    '',
    '2 nodes, agents 2 up: healthy',
  ].join('\n'));
  const wide = renderStatus(r, 'wide', NOW);
  t.match(wide, /INTERNAL-IP\s+ROUTES\/NEIGH\/FDB\s+PROXY\s+DNS\s+UPTIME\s+PROBLEMS/);
  t.match(wide, /192\.0\.2\.10\s+1\/1\/1\s+nftables 2p\/4e 7ms\s+serving\s+5m\s+0/);
  t.notMatch(table, /\x1b\[/, 'no colour unless asked');
  t.match(renderStatus(r, 'table', NOW, painter(true)), /\x1b\[32mup\x1b\[0m/, 'up in green when colour is on');
});

t.test('an agent down, a failed sync, drift: problems named, exit 1', async (t) => {
  const r = buildStatusReport(input([
    ['node1', agent('node1', '10.244.0.0/24', { lastSync: { at: at(5), steps: ['route add 10.244.1.0/24'], errors: ['route add 10.244.1.0/24: EEXIST'], ms: 3 }, outOfSync: ['route add 10.244.1.0/24 via podwire.1'] })],
    ['node2', { ok: false, error: 'nothing listens on /x/agent.sock (agent stopped?)' }],
  ]));
  t.same(r.nodes[0]!.problems, ['last network sync failed: route add 10.244.1.0/24: EEXIST', 'network out of sync: 1 step(s) pending: route add 10.244.1.0/24 via podwire.1']);
  t.equal(r.nodes[1]!.agent.state, 'down');
  t.equal(r.nodes[1]!.agent.network, null);
  t.same(r.nodes[1]!.problems, ['agent down: nothing listens on /x/agent.sock (agent stopped?); check its log and restart it']);
  t.same(r.summary, { nodes: 2, agentsUp: 1, agentsDown: 1, agentsUnknown: 0, problems: 3 });
  t.equal(statusExitCode(r), 1);
  const text = renderStatus(r, 'table', NOW);
  t.match(text, /node2\s+10\.244\.1\.0\/24\s+vxlan\s+down\s+-\s+-\s+-\s+1\s+-\s+-\s+1/);
  t.match(text, /problems:\n {2}node1: last network sync failed/);
  t.match(text, /2 nodes, agents 1 up, 1 down: 3 problems$/);
});

t.test('more problems: proxy error, podCIDR mismatch, agent cut off, not synced yet, NetworkUnavailable', async (t) => {
  const r = buildStatusReport(input([
    ['node1', agent('node1', '10.244.7.0/24', { controlPlane: 'unreachable', proxy: { mode: 'iptables', services: 0, servicePorts: 0, endpoints: 0, lastSync: { at: at(1), scope: 'full', ms: 0, error: 'iptables-restore: exit 4' } } })],
    ['node2', agent('node2', '10.244.1.0/24', { lastSync: undefined, outOfSync: undefined })],
  ], { nodes: [{ name: 'node1', node: NODES[0]! }, { name: 'node2', node: node('node2', '10.244.1.0/24', '192.0.2.11', false) }] }));
  t.same(r.nodes[0]!.problems, [
    'the agent uses podCIDR 10.244.7.0/24, the control plane says 10.244.0.0/24',
    'the agent cannot reach the control plane (it keeps the last state it synced)',
    'last proxy sync failed: iptables-restore: exit 4',
  ]);
  t.same(r.nodes[1]!.problems, ['the agent has not synced the network yet', 'node reports NetworkUnavailable: route add failed']);
  t.equal(r.nodes[1]!.agent.outOfSync, null, 'an agent without the field: null, not []');
  t.equal(statusExitCode(r), 1);
});

t.test('control plane unreachable: exit 3 whatever the agents say; agents not reachable from here are unknown, not problems', async (t) => {
  const down = buildStatusReport(input([['node1', agent('node1', '10.244.0.0/24')]], {
    controlPlane: { server: 'http://10.0.0.1:6443', reachable: false, error: 'connect ECONNREFUSED' },
    nodes: [{ name: 'node1' }], pods: undefined,
  }));
  t.equal(down.controlPlane.reachable, false);
  t.equal(down.nodes[0]!.pods, null);
  t.equal(down.nodes[0]!.podCidr, null);
  t.equal(down.nodes[0]!.backend, 'vxlan', 'the agent\'s backend when the control plane has no Node');
  t.equal(statusExitCode(down), 3);
  t.equal(down.healthy, false);
  t.match(summaryLine(down), /control plane unreachable$/);
  t.match(renderStatus(down, 'table', NOW), /control plane http:\/\/10\.0\.0\.1:6443 UNREACHABLE: connect ECONNREFUSED/);
  const remote = buildStatusReport(input([['node1', agent('node1', '10.244.0.0/24')], ['node2', undefined]]));
  t.equal(remote.nodes[1]!.agent.state, 'unknown');
  t.same(remote.nodes[1]!.problems, []);
  t.equal(statusExitCode(remote), 0);
  t.match(summaryLine(remote), /agents 1 up, 1 not reachable from here: healthy/);
});

t.test('the cluster DNS not serving is a problem; an agent without DNS (--dns off, older) is not', async (t) => {
  const down = agent('node1', '10.244.0.0/24', { dns: { clusterDns: '10.96.0.10', gateway: '10.244.0.1', synced: true, listening: ['10.244.0.1:53'], upstreams: [], loops: [], fallback: ['10.244.1.1'], error: 'listen EADDRINUSE: address already in use 10.96.0.10:53' } });
  const off = agent('node2', '10.244.1.0/24', { dns: undefined });
  const r = buildStatusReport(input([['node1', down], ['node2', off]]));
  t.same(r.nodes[0]!.agent.dns, { serving: false, listening: ['10.244.0.1:53'], upstreams: [], error: 'listen EADDRINUSE: address already in use 10.96.0.10:53' });
  t.same(r.nodes[0]!.problems, ['cluster DNS not serving (listening: 10.244.0.1:53): listen EADDRINUSE: address already in use 10.96.0.10:53; its pods are answered by other nodes; see podwire doctor']);
  t.equal(r.nodes[1]!.agent.dns, null);
  t.same(r.nodes[1]!.problems, []);
  t.equal(statusExitCode(r), 1);
  t.match(renderStatus(r, 'wide', NOW), /nftables 2p\/4e 7ms\s+DOWN\s+5m/);
  const notListed = buildStatusReport(input([['node1', agent('node1', '10.244.0.0/24', { dns: { clusterDns: '10.96.0.10', gateway: '10.244.0.1', synced: false, listening: [], upstreams: [], loops: [], fallback: [] } })], ['node2', off]]));
  t.match(notListed.nodes[0]!.problems[0] ?? '', /^cluster DNS not serving \(listening: nothing\)/);
});
