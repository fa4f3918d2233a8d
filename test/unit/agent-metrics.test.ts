// The agent's metrics (src/agent/metrics.ts) as main wires them: the Reconciler's onSync on
// simulated time (a sync moves the duration histogram and the last-success gauge, a failure the
// errors counter, a skipped sync nothing), the service proxy's onRulesSynced against an
// in-process control plane whose endpoints controller writes the last-change-trigger-time
// (network programming latency, the services/endpoints gauges), the IPAM usage count, the
// local API's pod requests, and the /metrics server's text read back by an independent parser.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { AgentMetrics, type AgentMetricsSources } from '../../src/agent/metrics.js';
import { parseListen, startMetricsServer } from '../../src/agent/metrics-server.js';
import { ipamUsage, readIpamUsage } from '../../src/agent/ipam-usage.js';
import { CNI_NETWORK_NAME, conflist, DEFAULT_IPAM_DATA_DIR } from '../../src/agent/cni-install.js';
import { Reconciler, type SyncOutcome } from '../../src/agent/reconciler.js';
import { ServiceProxy } from '../../src/agent/service-proxy.js';
import type { AgentLog } from '../../src/agent/agent.js';
import { ApiClient } from '../../src/client/api-client.js';
import { LAST_CHANGE_TRIGGER_TIME, type Endpoints } from '../../src/api/objects.js';
import { DEFAULT_DATA_DIR } from '../../src/cni/config.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import { FakeClock } from '../lib/fake-clock.js';
import { parseExposition, sampleValue, type Exposition } from '../lib/prom-text.js';
import { ADMIN_TOKEN, eventually, pod, service, testServer } from '../lib/controlplane.js';

const quiet: AgentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noSources: AgentMetricsSources = { network: () => undefined, proxy: () => undefined, ipam: () => undefined };
const scrape = async (m: AgentMetrics): Promise<Exposition> => parseExposition(await m.text());

t.test('reconciler → metrics on fake time: a sync moves the histogram and the last-success gauge; a failure the errors counter', async (t) => {
  const clock = new FakeClock();
  const metrics = new AgentMetrics(noSources, { now: () => clock.now(), processMetrics: false });
  const outcomes: Array<SyncOutcome | Error> = [{ ok: true, skipped: true }, { ok: true }, { ok: false }, new Error('crashed')];
  // Each sync takes 30 ms of simulated time (a timer the advance fires).
  let endedAt = 0;
  const sync = async (): Promise<SyncOutcome> => {
    await new Promise<void>((resolve) => clock.setTimer(30, resolve));
    endedAt = clock.now();
    const o = outcomes.shift() ?? { ok: true };
    if (o instanceof Error) throw o;
    return o;
  };
  const r = new Reconciler(sync, { clock, onSync: metrics.onSync('network') }, () => undefined);
  let e = await scrape(metrics);
  t.equal(e.types.get('podwire_sync_duration_seconds'), 'histogram');
  t.equal(e.types.get('podwire_sync_errors_total'), 'counter');
  t.equal(e.types.get('podwire_sync_last_success_timestamp_seconds'), 'gauge');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'network' }), 0, 'series present before any sync');
  t.equal(sampleValue(e, 'podwire_sync_errors_total', { subsystem: 'proxy' }), 0, 'both subsystems');
  t.equal(sampleValue(e, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'network' }), undefined, 'no success yet');

  r.start();
  await clock.advance(20 + 30); // coalesce, then the sync's 30 ms: skipped (not registered yet)
  e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'network' }), 0, 'a skipped sync is not counted');

  r.request('node added');
  await clock.advance(100 + 30);
  await r.settled();
  const firstEnd = endedAt;
  e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'network' }), 1, 'a sync moves the count');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_sum', { subsystem: 'network' }), 0.03, 'by its 30 ms on the clock');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_bucket', { subsystem: 'network', le: '0.032' }), 1, 'in the 32 ms bucket');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_bucket', { subsystem: 'network', le: '0.016' }), 0, 'not in the 16 ms one');
  t.equal(sampleValue(e, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'network' }), firstEnd / 1000, 'last success: when it ended');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' }), 0, 'the other subsystem did not move');

  r.request('node changed');
  await clock.advance(100 + 30); // fails; the retry 200 ms later crashes
  await clock.advance(200 + 30);
  e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_sync_errors_total', { subsystem: 'network' }), 2, 'a failed and a crashed sync are errors');
  t.equal(sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'network' }), 3, 'and are timed');
  t.equal(sampleValue(e, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'network' }), firstEnd / 1000, 'last success unchanged by failures');
  await clock.advance(400 + 30); // the next retry succeeds
  e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'network' }), endedAt / 1000, 'a good retry moves it again');
  t.ok(endedAt > firstEnd);
  await r.stop();
});

t.test('a throwing onSync does not stop the loop', async (t) => {
  const clock = new FakeClock();
  let syncs = 0;
  const r = new Reconciler(async () => (syncs++, { ok: true }), { clock, onSync: () => { throw new Error('listener bug'); } });
  r.start();
  await clock.advance(20);
  r.request('again');
  await clock.advance(200);
  t.equal(syncs, 2);
  await r.stop();
});

function recordingBackend(fail: () => boolean): ProxyBackend {
  return {
    mode: 'nftables',
    sync(_input, changed) {
      if (fail()) throw new Error('nft -f failed (exit 1): injected');
      return { scope: changed === undefined ? 'full' : 'partial', bytes: 100, ms: 0 };
    },
    remove: () => undefined,
    intact: () => true,
  };
}

async function listeningServer(t: Test) {
  const server = await testServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-metrics-'));
  const socketPath = path.join(dir, 'api.sock');
  await server.app.listen({ path: socketPath });
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const client = new ApiClient({ server: 'http://podwire', socketPath, token: ADMIN_TOKEN, timeoutMs: 5000 });
  t.teardown(() => client.close());
  return { server, client };
}

t.test('service proxy → metrics: programming latency from the trigger time, services/endpoints gauges, errors', async (t) => {
  const { server, client } = await listeningServer(t);
  let failing = false;
  const running: { proxy?: ServiceProxy } = {};
  const metrics = new AgentMetrics({ ...noSources, proxy: () => running.proxy?.status }, { processMetrics: false });
  const proxy = (running.proxy = new ServiceProxy({
    client, backend: recordingBackend(() => failing), others: [], runner: { run: () => ({ code: 0, stdout: '', stderr: '' }) },
    nodeName: 'n1', nodeIPs: ['192.0.2.11'], clusterCidrs: ['10.244.0.0/16'], log: quiet,
    reconciler: { onSync: metrics.onSync('proxy'), maxBackoffMs: 50 }, onRulesSynced: (s) => metrics.rulesSynced(s),
  }));
  t.teardown(() => proxy.stop());
  proxy.start();
  const proxySyncs = async () => sampleValue(await scrape(metrics), 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' }) ?? 0;
  await eventually(async () => (await proxySyncs()) >= 1, 'the first proxy sync');
  await proxy.settled();
  let e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_proxy_services'), 0, 'no services yet');
  t.equal(sampleValue(e, 'podwire_network_programming_duration_seconds_count'), 0, 'nothing programmed yet');
  const before = await proxySyncs();

  const created = await server.call('POST', '/api/v1/namespaces/default/services', service('web', { ports: [{ port: 80, targetPort: 8080 }] }));
  t.equal(created.statusCode, 201, `service created${created.statusCode === 201 ? '' : `: ${created.body}`}`);
  t.equal((await server.call('POST', '/api/v1/namespaces/default/pods', pod('web-1', 'n1', '10.244.1.5', { app: 'web' }))).statusCode, 201, 'pod created');
  const ep = await eventually(async () => {
    const r = await server.call('GET', '/api/v1/namespaces/default/endpoints/web');
    return r.json?.subsets?.[0]?.addresses?.length === 1 ? (r.json as Endpoints) : undefined;
  }, 'endpoints of web');
  const trigger = ep.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME];
  t.ok(trigger && Math.abs(Date.parse(trigger) - Date.now()) < 5000, `the endpoints controller set ${LAST_CHANGE_TRIGGER_TIME} (${trigger})`);
  await eventually(async () => sampleValue(await scrape(metrics), 'podwire_proxy_endpoints') === 1, 'the endpoint is in the rules');
  await proxy.settled();
  e = await scrape(metrics);
  t.ok((sampleValue(e, 'podwire_sync_duration_seconds_count', { subsystem: 'proxy' }) ?? 0) > before, 'creating a Service moved the proxy sync count');
  t.equal(sampleValue(e, 'podwire_proxy_services'), 1, 'services gauge');
  t.equal(sampleValue(e, 'podwire_proxy_service_ports'), 1, 'service ports gauge');
  const programmed = sampleValue(e, 'podwire_network_programming_duration_seconds_count') ?? 0;
  t.ok(programmed >= 1, `network programming latency observed (${programmed})`);
  t.ok((sampleValue(e, 'podwire_network_programming_duration_seconds_sum') ?? 99) < 5, 'seconds, not ms');
  t.ok((sampleValue(e, 'podwire_sync_proxy_rules_written_bytes_total', { scope: 'partial' }) ?? 0) >= 100, 'written bytes counted by scope');
  t.ok((sampleValue(e, 'podwire_sync_last_success_timestamp_seconds', { subsystem: 'proxy' }) ?? 0) * 1000 > Date.now() - 10_000, 'last success is wall time');

  // A write that fails: an error, no programming latency until a good sync covers the change.
  failing = true;
  t.equal((await server.call('POST', '/api/v1/namespaces/default/pods', pod('web-2', 'n1', '10.244.1.6', { app: 'web' }))).statusCode, 201);
  await eventually(async () => (sampleValue(await scrape(metrics), 'podwire_sync_errors_total', { subsystem: 'proxy' }) ?? 0) >= 1, 'the failure counted');
  t.equal(sampleValue(await scrape(metrics), 'podwire_network_programming_duration_seconds_count'), programmed, 'a failed sync programs nothing');
  failing = false;
  await eventually(async () => sampleValue(await scrape(metrics), 'podwire_proxy_endpoints') === 2, 'the retry programs the second endpoint');
  t.equal(sampleValue(await scrape(metrics), 'podwire_network_programming_duration_seconds_count'), programmed + 1, 'its change observed once, by the good retry');
});

t.test('IPAM usage: reservation files in the podCIDR against its allocatable size', async (t) => {
  t.same(ipamUsage('10.244.1.0/24', []), { used: 0, free: 253 }, '/24: 256 − network, gateway, broadcast');
  t.same(ipamUsage('10.244.1.0/24', ['10.244.1.2', '10.244.1.3', '10.244.2.9', 'lock', 'last_reserved_ip.0']), { used: 2, free: 251 }, 'only addresses inside the podCIDR count');
  t.same(ipamUsage('fd00::/120', ['fd00::5']), { used: 1, free: 253 }, 'IPv6: network and gateway');
  t.equal(ipamUsage('nonsense', []), undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ipam-usage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.same(readIpamUsage(path.join(dir, 'podwire'), '10.244.1.0/24'), { used: 0, free: 253 }, 'no directory yet: no pods');
  fs.mkdirSync(path.join(dir, 'podwire'));
  for (const f of ['10.244.1.2', '10.244.1.7', 'lock', 'last_reserved_ip.0', '.tmp-1-ab']) fs.writeFileSync(path.join(dir, 'podwire', f), 'x');
  fs.mkdirSync(path.join(dir, 'podwire', '10.244.1.9'));
  t.same(readIpamUsage(path.join(dir, 'podwire'), '10.244.1.0/24'), { used: 2, free: 251 }, 'regular files named by an IP');
  t.equal(DEFAULT_IPAM_DATA_DIR, DEFAULT_DATA_DIR, 'the agent reads where the plugin writes by default');
  t.equal((conflist({ subnetFile: '/s', agentSocket: '/a', nodeName: 'n' }, false) as { name: string }).name, CNI_NETWORK_NAME, 'under the conflist\'s network name');
});

t.test('pod requests through the local API: counted by method and code, 5xx as errors, timed', async (t) => {
  const metrics = new AgentMetrics(noSources, { processMetrics: false });
  metrics.podRequest({ method: 'POST', code: 201, seconds: 0.004 });
  metrics.podRequest({ method: 'POST', code: 409, seconds: 0.002 });
  metrics.podRequest({ method: 'DELETE', code: 503, seconds: 0.3 });
  const e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_cni_pod_requests_total', { method: 'POST', code: '201' }), 1);
  t.equal(sampleValue(e, 'podwire_cni_pod_requests_total', { method: 'POST', code: '409' }), 1);
  t.equal(sampleValue(e, 'podwire_cni_pod_request_errors_total', { method: 'DELETE' }), 1, '503: an error');
  t.equal(sampleValue(e, 'podwire_cni_pod_request_errors_total', { method: 'POST' }), undefined, '4xx: not the agent\'s error');
  t.equal(sampleValue(e, 'podwire_cni_pod_request_duration_seconds_count', { method: 'POST' }), 2);
});

t.test('CNI commands through the agent: counted by command and result, timed; the fast DELs\' gauges', async (t) => {
  const del = { pending: 2, failed: 1 };
  const metrics = new AgentMetrics({ ...noSources, cniDel: () => del }, { processMetrics: false });
  metrics.cniRequest({ command: 'ADD', code: 0, seconds: 0.008 });
  metrics.cniRequest({ command: 'ADD', code: 1, seconds: 0.002 });
  metrics.cniRequest({ command: 'DEL', code: 0, seconds: 0.004 });
  metrics.cniRequest({ command: 'FROB', code: 1, seconds: 0.001 });
  const e = await scrape(metrics);
  t.equal(sampleValue(e, 'podwire_cni_requests_total', { command: 'ADD', result: 'ok' }), 1);
  t.equal(sampleValue(e, 'podwire_cni_requests_total', { command: 'ADD', result: 'error' }), 1);
  t.equal(sampleValue(e, 'podwire_cni_requests_total', { command: 'DEL', result: 'ok' }), 1);
  t.equal(sampleValue(e, 'podwire_cni_requests_total', { command: 'other', result: 'error' }), 1, 'an unknown command under one bounded label');
  t.equal(sampleValue(e, 'podwire_cni_request_duration_seconds_count', { command: 'ADD' }), 2);
  t.equal(sampleValue(e, 'podwire_cni_request_duration_seconds_bucket', { command: 'DEL', le: '0.005' }), 1, 'a 4 ms DEL in the 5 ms bucket');
  t.equal(sampleValue(e, 'podwire_cni_del_pending'), 2);
  t.equal(sampleValue(e, 'podwire_cni_del_failures'), 1);
  const none = await scrape(new AgentMetrics(noSources, { processMetrics: false }));
  t.equal(sampleValue(none, 'podwire_cni_del_pending'), 0, 'without a CNI server the gauge reads 0');
});

t.test('metrics server: /metrics in the text format, /healthz, 404, bounded close; --metrics-listen parsing', async (t) => {
  t.same(parseListen('127.0.0.1:10249'), { host: '127.0.0.1', port: 10249 });
  t.same(parseListen('[::1]:9000'), { host: '::1', port: 9000 });
  t.equal(parseListen('off'), undefined);
  t.equal(parseListen(''), undefined);
  for (const bad of ['10249', '127.0.0.1', '1.2.3.4:99999', 'a:b:c']) t.throws(() => parseListen(bad), /HOST:PORT/, `refused: ${bad}`);
  const metrics = new AgentMetrics({ network: () => ({ peers: 2, objects: { routes: 2, neighbours: 2, fdb: 2 } }), proxy: () => undefined, ipam: () => ({ used: 3, free: 250 }) });
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, metrics);
  const get = (p: string) => new Promise<{ code: number; type: string; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.address.port, path: p }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ code: res.statusCode!, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
  const m = await get('/metrics');
  t.equal(m.code, 200);
  t.match(m.type, /^text\/plain; version=0\.0\.4/, 'Prometheus text content type');
  const e = parseExposition(m.body);
  t.equal(sampleValue(e, 'podwire_network_peers'), 2);
  t.equal(sampleValue(e, 'podwire_network_kernel_objects', { kind: 'fdb' }), 2);
  t.equal(sampleValue(e, 'podwire_ipam_addresses', { state: 'used' }), 3);
  t.equal(sampleValue(e, 'podwire_ipam_addresses', { state: 'free' }), 250);
  t.equal(sampleValue(e, 'podwire_proxy_services'), 0, 'no proxy: nothing programmed');
  t.ok(sampleValue(e, 'podwire_agent_process_resident_memory_bytes')! > 0, 'process metrics, prefixed');
  t.equal((await get('/healthz')).body, 'ok\n');
  t.equal((await get('/nope')).code, 404);
  // A client that sent half a request must not hold close() (src/http/close.ts).
  const net = await import('node:net');
  const half = net.connect(server.address.port, '127.0.0.1');
  await new Promise((r) => half.once('connect', r));
  half.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  const t0 = Date.now();
  await server.close();
  t.ok(Date.now() - t0 < 3000, `closed in ${Date.now() - t0} ms despite a half-sent request`);
  half.destroy();
});
