import t from 'tap';
import { buildReport, connectivityExitCode, mapBounded, planProbes, renderMatrix, type PodRef } from '../../src/cli/debug/connectivity.js';
import { validateConnectRequest } from '../../src/agent/debug/connect.js';
import { validateResolveRequest } from '../../src/agent/debug/resolve.js';
import { dnsRefs, podRefs, serviceRefs } from '../../src/cli/connectivity.js';
import type { Endpoints, Pod, Service } from '../../src/api/objects.js';

const pods: PodRef[] = [
  { name: 'default/a', ip: '10.1.1.2', node: 'node1' },
  { name: 'default/b', ip: '10.1.2.2', node: 'node2' },
  { name: 'default/c', ip: '10.1.2.3', node: 'node2' },
];

t.test('planProbes: every ordered pair of distinct pods, then services', async (t) => {
  const p = planProbes(pods);
  t.equal(p.length, 6);
  t.notOk(p.some((x) => x.source.name === x.destination));
  t.same(p.map((x) => `${x.source.name}>${x.destination}`).slice(0, 2), ['default/a>default/b', 'default/a>default/c']);
  const s = planProbes(pods, [{ name: 'default/web:80', ip: '10.96.0.10', port: 80 }]);
  t.equal(s.length, 9);
  t.same(s.filter((x) => x.kind === 'service').map((x) => [x.ip, x.port]), [['10.96.0.10', 80], ['10.96.0.10', 80], ['10.96.0.10', 80]]);
  t.same(planProbes([pods[0]!]), [], 'one pod: nothing to probe');
});

t.test('mapBounded keeps order and never exceeds the limit', async (t) => {
  let inFlight = 0;
  let max = 0;
  const progress: number[] = [];
  const out = await mapBounded([...Array(20).keys()], 3, async (i) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await new Promise((r) => setTimeout(r, (i * 7) % 5));
    inFlight--;
    return i * 2;
  }, (n) => progress.push(n));
  t.same(out, [...Array(20).keys()].map((i) => i * 2));
  t.equal(max, 3);
  t.same(progress, [...Array(20).keys()].map((i) => i + 1));
  t.same(await mapBounded([], 8, async () => 1), []);
});

t.test('report, matrix and exit code', async (t) => {
  const ok = buildReport([
    { source: 'default/a', destination: 'default/b', kind: 'pod', ok: true, ms: 0.2 },
    { source: 'default/b', destination: 'default/a', kind: 'pod', ok: true, ms: 0.3 },
  ]);
  t.same(ok.summary, { total: 2, ok: 2, failed: 0 });
  t.equal(ok.healthy, true);
  t.equal(connectivityExitCode(ok), 0);
  t.equal(renderMatrix(ok), ['SOURCE \\ DESTINATION   default/a   default/b', 'default/a              -           ok', 'default/b              ok          -', '', '2/2 ok'].join('\n'));

  t.match(renderMatrix(ok, undefined, true), /^default\/a\s+-\s+ok 0\.200ms$/m, 'wide: the time of each ok pair');

  const bad = buildReport([
    { source: 'default/a', destination: 'default/b', kind: 'pod', ok: false, ms: null, error: 'no echo reply from 10.1.2.2 within 1000 ms' },
    { source: 'default/b', destination: 'default/a', kind: 'pod', ok: true, ms: 0.3 },
    { source: 'default/b', destination: 'default/web:80', kind: 'service', ok: false, ms: null, error: 'TCP connect to 10.96.0.10:80: ECONNREFUSED' },
  ]);
  t.same(bad.summary, { total: 3, ok: 1, failed: 2 });
  t.equal(bad.healthy, false);
  t.equal(connectivityExitCode(bad), 1);
  const text = renderMatrix(bad);
  t.match(text, /^default\/a\s+-\s+FAIL\s+-$/m);
  t.match(text, /^default\/b\s+ok\s+-\s+FAIL$/m);
  t.match(text, /default\/a → default\/b \(pod\): no echo reply/);
  t.match(text, /default\/b → default\/web:80 \(service\): TCP connect to 10\.96\.0\.10:80: ECONNREFUSED/);
  t.match(text, /\n1\/3 ok, 2 failed$/);
  t.match(renderMatrix(bad, undefined, true), /^default\/b\s+ok 0\.300ms\s+-\s+FAIL$/m);
  const none = buildReport([]);
  t.same(none, { pairs: [], summary: { total: 0, ok: 0, failed: 0 }, healthy: false, skipped: [] }, 'nothing tested is not healthy');
  t.equal(connectivityExitCode(none), 1);
});

t.test('podRefs and serviceRefs pick what can be probed', async (t) => {
  const pod = (name: string, phase: string, ip?: string, node?: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', annotations: { 'podwire.io/netns': '/run/netns/x' } }, spec: { ...(node ? { nodeName: node } : {}) }, status: { phase, ...(ip ? { podIP: ip } : {}) } }) as unknown as Pod;
  const refs = podRefs([pod('z', 'Running', '10.1.1.9', 'node1'), pod('p', 'Pending', undefined, 'node1'), pod('n', 'Running', '10.1.1.8'), pod('a', 'Running', '10.1.1.7', 'node2'), pod('v6', 'Running', 'fd00::1', 'node1')]);
  t.same(refs.map((r) => r.name), ['default/a', 'default/z']);
  const svc = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec }) as unknown as Service;
  const s = serviceRefs([
    svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }, { port: 443, protocol: 'TCP' }] }),
    svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
    svc('ext', { type: 'ExternalName', externalName: 'x.example' }),
  ]);
  t.same(s, { refs: [{ name: 'default/web:443', ip: '10.96.0.10', port: 443 }, { name: 'default/web:80', ip: '10.96.0.10', port: 80 }], skipped: [] });
  // With the Endpoints: a service without a ready address is listed as not probed, not connected to.
  const eps = (name: string, subsets: unknown[]) => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: 'default' }, subsets }) as unknown as Endpoints;
  const services = [svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }), svc('idle', { clusterIP: '10.96.0.11', ports: [{ port: 81 }] }), svc('gone', { clusterIP: '10.96.0.12', ports: [{ port: 82 }] })];
  const e = serviceRefs(services, [eps('web', [{ addresses: [{ ip: '10.1.1.7' }], ports: [{ port: 8080 }] }]), eps('idle', [{ notReadyAddresses: [{ ip: '10.1.1.8' }], ports: [{ port: 8080 }] }])]);
  t.same(e.refs, [{ name: 'default/web:80', ip: '10.96.0.10', port: 80 }]);
  t.same(e.skipped.map((x) => x.destination), ['default/gone:82', 'default/idle:81']);
  t.match(e.skipped[0]!.reason, /no ready endpoint/);
  const rendered = renderMatrix(buildReport([{ source: 'default/a', destination: 'default/web:80', kind: 'service', ok: true, ms: 1 }], e.skipped));
  t.match(rendered, /not probed:\n  default\/gone:82: no ready endpoint/);
  t.match(rendered, /1\/1 ok, 2 not probed$/);
});

t.test('validateConnectRequest', async (t) => {
  t.same(validateConnectRequest({ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 80, timeoutMs: 1000 }), { srcIp: '10.1.1.2', dst: '10.96.0.10', port: 80, timeoutMs: 1000 });
  t.same(validateConnectRequest({ srcIp: '10.1.1.2', netnsHint: '/run/netns/x', dst: '10.96.0.10', port: 65535, timeoutMs: 10 }), { srcIp: '10.1.1.2', netnsHint: '/run/netns/x', dst: '10.96.0.10', port: 65535, timeoutMs: 10 });
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[], /JSON object/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 80, timeoutMs: 1000, extra: 1 }, /unknown field extra/],
    [{ srcIp: '10.1.1.256', dst: '10.96.0.10', port: 80, timeoutMs: 1000 }, /srcIp must be an IPv4/],
    [{ srcIp: '10.1.1.2', dst: 'example.com', port: 80, timeoutMs: 1000 }, /dst must be an IPv4/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 0, timeoutMs: 1000 }, /port must be an integer 1-65535/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 65536, timeoutMs: 1000 }, /port must be/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: '80', timeoutMs: 1000 }, /port must be/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 80, timeoutMs: 60_000 }, /timeoutMs must be an integer 10-10000/],
    [{ srcIp: '10.1.1.2', dst: '10.96.0.10', port: 80 }, /timeoutMs must be/],
    [{ srcIp: '10.1.1.2', netnsHint: '', dst: '10.96.0.10', port: 80, timeoutMs: 1000 }, /netnsHint/],
  ];
  for (const [body, re] of bad) t.match(validateConnectRequest(body), re, JSON.stringify(body));
});

t.test('--dns: dnsRefs names every IPv4 ClusterIP service by its FQDN; planProbes puts names last; the matrix shows them', async (t) => {
  const svc = (name: string, ns: string, spec: Partial<Service['spec']>): Service => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ port: 80 }], ...spec } }) as Service;
  const refs = dnsRefs([
    svc('web', 'default', { clusterIP: '10.96.0.20' }),
    svc('kube-dns', 'kube-system', { clusterIP: '10.96.0.10' }),
    svc('headless', 'default', { clusterIP: 'None' }),
    svc('ext', 'default', { type: 'ExternalName', externalName: 'example.org' }),
    svc('v6', 'default', { clusterIP: 'fd00::1' }),
  ], 'cluster.local');
  t.same(refs, [{ name: 'kube-dns.kube-system.svc.cluster.local', ip: '10.96.0.10' }, { name: 'web.default.svc.cluster.local', ip: '10.96.0.20' }]);
  const p = planProbes(pods.slice(0, 2), [{ name: 'default/web:80', ip: '10.96.0.20', port: 80 }], refs);
  t.same(p.filter((x) => x.source.name === 'default/a').map((x) => `${x.kind} ${x.destination}`), ['pod default/b', 'service default/web:80', 'dns kube-dns.kube-system.svc.cluster.local', 'dns web.default.svc.cluster.local']);
  const report = buildReport([
    { source: 'default/a', destination: 'web.default.svc.cluster.local', kind: 'dns', ok: true, ms: 0.5 },
    { source: 'default/b', destination: 'web.default.svc.cluster.local', kind: 'dns', ok: false, ms: null, error: 'A web.default.svc.cluster.local from 10.96.0.10: NXDOMAIN (ENOTFOUND)' },
  ]);
  const m = renderMatrix(report);
  t.match(m, /^SOURCE \\ DESTINATION\s+web\.default\.svc\.cluster\.local$/m);
  t.match(m, /default\/b → web\.default\.svc\.cluster\.local \(dns\): A web\.default\.svc\.cluster\.local from 10\.96\.0\.10: NXDOMAIN/);
});

t.test('validateResolveRequest', async (t) => {
  const ok = { srcIp: '10.244.1.2', server: '10.96.0.10', name: 'web.default.svc.cluster.local', timeoutMs: 1000 };
  t.same(validateResolveRequest(ok), ok);
  t.same(validateResolveRequest({ ...ok, netnsHint: '/run/netns/x' }), { ...ok, netnsHint: '/run/netns/x' });
  for (const [bad, why] of [
    [{ ...ok, name: 'a..b' }, /name must be a DNS name/],
    [{ ...ok, name: 'x'.repeat(64) }, /name must be a DNS name/],
    [{ ...ok, name: '-rf /' }, /name must be a DNS name/],
    [{ ...ok, server: 'dns.example' }, /server must be an IPv4 address/],
    [{ ...ok, srcIp: 'fd00::1' }, /srcIp must be an IPv4 address/],
    [{ ...ok, timeoutMs: 5 }, /timeoutMs must be an integer 10-10000/],
    [{ ...ok, extra: 1 }, /unknown field extra/],
    [[], /must be a JSON object/],
  ] as const) t.match(validateResolveRequest(bad), why, JSON.stringify(bad));
});
