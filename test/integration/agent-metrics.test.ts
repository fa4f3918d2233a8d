// The agent's /metrics in the netns lab: real agents (default --metrics-listen 127.0.0.1:10249,
// inside each node's netns), scraped from inside node1's netns with curl and parsed by
// test/lib/prom-text.ts. The network sync moved its counters, the gauges agree with the kernel
// (`ip route` proto 158) and the IPAM directory, the pod registrations the CNI plugin made through
// the agent are counted, and creating a Service moves the proxy sync counters, the services gauge
// and the network programming latency histogram.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createEchoService, waitFor } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { SKIP_NOT_ROOT, haveCommand } from '../lib/netns.js';
import { parseExposition, sampleValue, type Exposition } from '../lib/prom-text.js';

const METRICS = 'http://127.0.0.1:10249';

/** GET inside the netns (the metrics server listens on the node's own loopback). */
function curl(ns: string, path: string): { code: string; body: string } {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'curl', '-s', '-m', '5', '-w', '\n%{http_code}', `${METRICS}${path}`], { encoding: 'utf8' });
  const cut = out.lastIndexOf('\n');
  return { code: out.slice(cut + 1), body: out.slice(0, cut) };
}

function scrape(ns: string): Exposition {
  const r = curl(ns, '/metrics');
  if (r.code !== '200') throw new Error(`GET /metrics in ${ns}: ${r.code} ${r.body.slice(0, 200)}`);
  return parseExposition(r.body);
}

const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number => sampleValue(e, name, labels) ?? NaN;

t.test('agent /metrics in a node netns: syncs, gauges, pod registrations; a Service moves the proxy counters', { skip: SKIP_NOT_ROOT || (haveCommand('curl') ? false : 'curl missing') }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1 });
  const ns = c.nodes[0]!.netns;

  const before = await waitFor('node1 serves /metrics with a network sync and the proxy synced', () => {
    try {
      const e = scrape(ns);
      return value(e, 'podwire_sync_duration_seconds_count', { subsystem: 'network' }) >= 1 && value(e, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' }) >= 1 ? e : undefined;
    } catch {
      return undefined;
    }
  });
  t.equal(before.types.get('podwire_sync_duration_seconds'), 'histogram', 'sync duration is a histogram');
  t.equal(value(before, 'podwire_sync_errors_total', { subsystem: 'network' }), 0, 'no network sync errors');
  const lastNetwork = value(before, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'network' });
  t.ok(Math.abs(lastNetwork - Date.now() / 1000) < 120, `last network success is recent wall time (${lastNetwork})`);
  t.equal(value(before, 'podwire_network_peers'), 1, 'one peer');
  const routes = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'route', 'show', 'proto', '158'], { encoding: 'utf8' }) || '[]') as unknown[];
  t.equal(value(before, 'podwire_network_kernel_objects', { kind: 'route' }), routes.length, `route gauge = ip route proto 158 (${routes.length})`);
  t.equal(value(before, 'podwire_ipam_addresses', { state: 'used' }), 1, 'one pod address reserved on node1 (from the lab\'s IPAM dir)');
  t.equal(value(before, 'podwire_ipam_addresses', { state: 'free' }), 252, '/24: 253 allocatable − 1');
  t.ok(value(before, 'podwire_cni_pod_requests_total', { method: 'POST', code: '201' }) >= 1, 'the CNI ADD registered its pod through the agent');
  t.equal(value(before, 'podwire_proxy_services'), 1, 'one service yet: the control plane\'s kube-system/kube-dns');
  t.equal(value(before, 'podwire_proxy_endpoints'), 4, 'its endpoints: both nodes\' DNS servers × its two ports (dns, dns-tcp)');

  const proxySyncs = value(before, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' });
  const programmed = value(before, 'podwire_network_programming_duration_seconds_count');
  await createEchoService(c);
  const after = await waitFor('node1 /metrics shows the service', () => {
    const e = scrape(ns);
    return value(e, 'podwire_proxy_services') === 2 && value(e, 'podwire_network_programming_duration_seconds_count') > programmed ? e : undefined;
  }, 10_000);
  t.ok(value(after, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' }) > proxySyncs, `a Service moved the proxy sync count (${proxySyncs} → ${value(after, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' })})`);
  t.ok(value(after, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'proxy' }) >= value(before, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'proxy' }), 'and its last success');
  t.equal(value(after, 'podwire_proxy_endpoints'), 4 + 2, 'both echo pods are endpoints too');
  t.ok(value(after, 'podwire_sync_proxy_rules_written_bytes_total', { scope: 'partial' }) > 0, 'rules were written by a partial sync');
  const latency = value(after, 'podwire_network_programming_duration_seconds_sum') / value(after, 'podwire_network_programming_duration_seconds_count');
  t.ok(latency >= 0 && latency < 10, `network programming latency observed (mean ${latency.toFixed(3)} s)`);
  t.equal(value(after, 'podwire_sync_errors_total', { subsystem: 'proxy' }), 0, 'no proxy sync errors');
  t.same(curl(ns, '/healthz'), { code: '200', body: 'ok\n' }, '/healthz');
});
