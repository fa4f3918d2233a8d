// `podwire services --lab PREFIX` against a real 2-node vxlan lab, in both proxy modes: the real CLI
// binary from the root netns. A client pod on node1 (no endpoint) makes N sequential TCP requests
// through a ClusterIP with one echo pod per node: the endpoints' counters on node1 rise by N
// connections in all (each connection's first packet is DNATed once, on the client's node), the
// summed view is node1's plus node2's, -o json has the documented shape, a service without
// endpoints is listed with exit 0, an unknown name exits 2 with the close match named.
import t from 'tap';
import { addPod, waitFor, ECHO_PORT, type ClusterNode } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';
import { createService, fmt, labelPod, probeMany } from '../lib/proxy-e2e.js';
import type { ServicesReport } from '../../src/cli/debug/services.js';

const podwire = cliRunner(60_000);
const N = 30;

const json = (args: string[]): ServicesReport => {
  const r = podwire([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`podwire ${args.join(' ')} -o json: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ServicesReport;
};
const total = (report: ServicesReport, node?: string) =>
  report.services.flatMap((s) => s.ports).flatMap((p) => p.endpoints).reduce((n, e) => n + (node === undefined ? e.packets! : e.nodes[node]?.packets ?? 0), 0);

for (const mode of ['nftables', 'iptables'] as const) {
  t.test(`podwire services --lab (${mode}): counters rise by the connections made`, { skip: SKIP_NOT_ROOT, timeout: 240_000 }, async (t) => {
    const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1, proxyMode: mode });
    const prefix = c.lab.prefix;
    const [n1] = c.nodes as [ClusterNode, ClusterNode];
    const client = await addPod(c.lab, n1, 2);
    await labelPod(c, client.name, { app: 'client' });
    const web = await createService(c, 'web', { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: ECHO_PORT }] });
    await createService(c, 'lonely', { selector: { app: 'nobody' }, ports: [{ port: 81, targetPort: ECHO_PORT }] });
    const ip = web.spec.clusterIP!;
    const eps = c.pods.filter((p) => p.name !== client.name).map((p) => `${p.ip}:${ECHO_PORT}`).sort();
    await waitFor('web with its 2 endpoints in every proxy', () => {
      const r = podwire(['services', 'default/web', '--lab', prefix, '-o', 'json']);
      if (r.code !== 0) return undefined;
      const rep = JSON.parse(r.stdout) as ServicesReport;
      const got = rep.services[0]?.ports[0]?.endpoints.map((e) => `${e.ip}:${e.port}`).sort() ?? [];
      return got.length === 2 && Object.keys(rep.services[0]!.ports[0]!.endpoints[0]!.nodes).length === 2 ? true : undefined;
    }, 30_000);
    t.same(json(['services', 'web', '--lab', prefix]).services[0]!.ports[0]!.endpoints.map((e) => `${e.ip}:${e.port}`).sort(), eps, 'web: the 2 echo pods');

    const before = json(['services', 'web', '--lab', prefix]);
    const sent = await probeMany(c, client.netns, `${ip}:80`, N, { concurrency: 1 });
    t.equal(sent.ok, N, `${N} requests answered (${fmt(sent)})`);
    const after = json(['services', 'web', '--lab', prefix]);
    const rise = total(after) - total(before);
    t.ok(rise >= N, `the endpoints' counters rose by ${rise} connections in all (≥ ${N})`);
    t.ok(rise <= N + 5, `and not by much more (${rise} ≤ ${N} + 5: nothing else talks to web)`);
    t.equal(total(after, 'node1') - total(before, 'node1'), rise, 'all of it on node1, where the client is');
    t.equal(total(after), total(after, 'node1') + total(after, 'node2'), 'the summed view is node1 + node2');
    const bytes = after.services[0]!.ports[0]!.endpoints.reduce((n, e) => n + e.bytes!, 0) - before.services[0]!.ports[0]!.endpoints.reduce((n, e) => n + e.bytes!, 0);
    t.ok(bytes >= rise * 40, `bytes rose by ${bytes} (≥ 40 per connection's first packet)`);

    // -o json's shape (src/cli/README.md)
    t.same(Object.keys(after).sort(), ['nodes', 'query', 'services']);
    t.same(after.query, { namespace: null, name: 'web' });
    t.same(after.nodes, [{ node: 'node1', agent: 'up', mode, error: null }, { node: 'node2', agent: 'up', mode, error: null }]);
    const s = after.services[0]!;
    t.same(Object.keys(s).sort(), ['clusterIPs', 'externalIPs', 'loadBalancerIPs', 'name', 'namespace', 'ports', 'type']);
    t.same([s.namespace, s.name, s.type, s.clusterIPs, s.externalIPs, s.loadBalancerIPs], ['default', 'web', 'ClusterIP', [ip], [], []]);
    t.same(Object.keys(s.ports[0]!).sort(), ['endpoints', 'name', 'nodePort', 'port', 'protocol']);
    t.same([s.ports[0]!.name, s.ports[0]!.port, s.ports[0]!.protocol, s.ports[0]!.nodePort], ['http', 80, 'TCP', null]);
    const e = s.ports[0]!.endpoints[0]!;
    t.same(Object.keys(e).sort(), ['bytes', 'ip', 'nodes', 'packets', 'port', 'ready', 'serving', 'terminating']);
    t.same([e.ready, e.serving, e.terminating], [true, true, false]);
    t.same(Object.keys(e.nodes).sort(), ['node1', 'node2']);
    t.same(Object.keys(e.nodes.node1!).sort(), ['bytes', 'local', 'packets']);

    // one node; every service; a service without endpoints; the table
    const one = json(['services', 'web', '--lab', prefix, '--node', 'node1']);
    t.same(one.nodes.map((n) => n.node), ['node1']);
    t.equal(total(one), total(after, 'node1'), '--node node1: node1\'s counts only');
    const all = json(['services', '--lab', prefix]);
    const names = all.services.map((x) => `${x.namespace}/${x.name}`);
    t.ok(names.includes('default/lonely') && names.includes('default/web'), `every service (${names.join(', ')})`);
    const lonely = podwire(['services', 'default/lonely', '--lab', prefix]);
    t.equal(lonely.code, 0, `a service without endpoints is listed, exit 0 (${lonely.stderr})`);
    t.match(lonely.stdout, /default\/lonely\s+ClusterIP\s+\S+\s+81\/TCP\s+\(no endpoints\)/);
    const table = podwire(['services', 'web', '--lab', prefix]);
    t.equal(table.code, 0);
    t.match(table.stdout, /^SERVICE\s+TYPE\s+CLUSTER-IP\s+PORT\s+ENDPOINT\s+STATE\s+CONNECTIONS\s+BYTES\n/);
    t.match(table.stdout, /summed over 2 nodes/);
    t.comment(`podwire services web --lab ${prefix}\n${table.stdout}`);
    const wide = podwire(['services', 'web', '--lab', prefix, '-o', 'wide']);
    t.match(wide.stdout, /ON node1\s+ON node2/, '-o wide: per node');
    t.comment(`podwire services web --lab ${prefix} -o wide\n${wide.stdout}\n-o json\n${JSON.stringify(after, null, 2)}`);

    // usage errors
    const typo = podwire(['services', 'wbe', '--lab', prefix]);
    t.equal(typo.code, 2, 'unknown service: exit 2');
    t.match(typo.stderr, /unknown service "wbe"; did you mean .*web/);
    t.equal(podwire(['services', 'Web!', '--lab', prefix]).code, 2, 'not a name: exit 2');
    t.equal(podwire(['services', 'web', '--lab', prefix, '--node', 'nod1']).code, 2, 'unknown node: exit 2');
  });
}
