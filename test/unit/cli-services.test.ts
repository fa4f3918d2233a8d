// `podwire services`' pure part: NAME / NS/NAME, merging the nodes' answers (counters summed per
// endpoint, kept per node; null when a node could not split them), the exit codes, the tables.
import t from 'tap';
import { buildServicesReport, parseServiceArg, renderServices, servicesExitCode, type AgentServicesAnswer, type ServicesNodeAnswer } from '../../src/cli/debug/services.js';
import { painter } from '../../src/cli/debug/output.js';
import { UsageError } from '../../src/flags/flags.js';

const ep = (ip: string, packets: number | null, local = false) => ({ ip, port: 8080, ready: true, serving: true, terminating: false, local, packets, bytes: packets === null ? null : packets * 60 });
const answer = (node: string, a: number | null, b: number, extra: AgentServicesAnswer['services'] = []): ServicesNodeAnswer => ({
  node, ok: true, answer: { node, mode: 'nftables', services: [
    { namespace: 'default', name: 'web', type: 'NodePort', clusterIPs: ['10.96.0.10'], externalIPs: [], loadBalancerIPs: [], ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080, endpoints: [ep('10.244.1.5', a, node === 'node1'), ep('10.244.2.5', b, node === 'node2')] }] },
    ...extra,
  ] },
});
const lonely = { namespace: 'apps', name: 'lonely', type: 'ClusterIP', clusterIPs: ['10.96.0.11'], externalIPs: [], loadBalancerIPs: [], ports: [{ name: '', port: 81, protocol: 'TCP', nodePort: null, endpoints: [] }] };

t.test('NAME and NS/NAME', async (t) => {
  t.same(parseServiceArg(undefined), {});
  t.same(parseServiceArg('web'), { name: 'web' });
  t.same(parseServiceArg('apps/web'), { namespace: 'apps', name: 'web' });
  for (const bad of ['Web', 'a/b/c', '/web', 'web/', 'we b']) t.throws(() => parseServiceArg(bad), UsageError, bad);
});

t.test('merged over the nodes', async (t) => {
  const r = buildServicesReport({ name: 'web' }, [answer('node1', 3, 1, [lonely]), answer('node2', 0, 2)]);
  t.same(r.query, { namespace: null, name: 'web' });
  t.same(r.nodes, [{ node: 'node1', agent: 'up', mode: 'nftables', error: null }, { node: 'node2', agent: 'up', mode: 'nftables', error: null }]);
  t.same(r.services.map((s) => `${s.namespace}/${s.name}`), ['apps/lonely', 'default/web'], 'sorted by namespace, name');
  const eps = r.services[1]!.ports[0]!.endpoints;
  t.same(eps.map((e) => [e.ip, e.packets, e.bytes]), [['10.244.1.5', 3, 180], ['10.244.2.5', 3, 180]], 'summed');
  t.same(eps[0]!.nodes, { node1: { packets: 3, bytes: 180, local: true }, node2: { packets: 0, bytes: 0, local: false } }, 'per node');
  t.equal(servicesExitCode(r), 0, 'a service without endpoints is not an error');
  const unsplit = buildServicesReport({}, [answer('node1', null, 1), answer('node2', 4, 2)]);
  t.equal(unsplit.services[0]!.ports[0]!.endpoints[0]!.packets, null, 'a node without a per-endpoint count makes the sum unknown');
  const down = buildServicesReport({}, [answer('node1', 1, 1), { node: 'node2', ok: false, reached: false, error: 'cannot reach the agent of node2' }]);
  t.same(down.nodes[1], { node: 'node2', agent: 'down', mode: null, error: 'cannot reach the agent of node2' });
  t.equal(servicesExitCode(down), 3, 'an agent down: 3');
  t.equal(servicesExitCode(buildServicesReport({}, [{ node: 'node1', ok: false, reached: true, error: 'answered 500' }])), 1, 'an agent that could not read its counters: 1');
});

t.test('tables', async (t) => {
  const paint = painter(false);
  const r = buildServicesReport({}, [answer('node1', 3, 1, [lonely]), answer('node2', 0, 2)]);
  const table = renderServices(r, 'table', paint);
  t.match(table, /^SERVICE\s+TYPE\s+CLUSTER-IP\s+PORT\s+ENDPOINT\s+STATE\s+CONNECTIONS\s+BYTES\n/);
  t.match(table, /apps\/lonely\s+ClusterIP\s+10\.96\.0\.11\s+81\/TCP\s+\(no endpoints\)/);
  t.match(table, /default\/web\s+NodePort\s+10\.96\.0\.10\s+80:30080\/TCP \(http\)\s+10\.244\.1\.5:8080\s+ready\s+3\s+180\n/);
  t.match(table, /2 services, 2 endpoints; .* summed over 2 nodes \(node1, node2; -o wide: per node\)/);
  const wide = renderServices(r, 'wide', paint);
  t.match(wide, /EXTERNAL-IP\s+PORT\s+ENDPOINT\s+STATE\s+CONNECTIONS\s+BYTES\s+ON node1\s+ON node2\n/);
  t.match(wide, /10\.244\.1\.5:8080\s+ready\s+3\s+180\s+3\/180 \(local\)\s+0\/0\n/);
  const unsplit = renderServices(buildServicesReport({}, [answer('node1', null, 1)]), 'table', paint);
  t.match(unsplit, /10\.244\.1\.5:8080\s+ready\s+\?\s+\?/);
  t.match(unsplit, /counts that port as a whole/);
  t.match(renderServices(buildServicesReport({}, []), 'table', paint), /^no services/);
});
