// `podwire connectivity` against a real 2-node lab (4 pods, vxlan): every pod pair ok → exit 0
// (JSON and the matrix); --services: every pod connects (TCP) to the echo ClusterIP service → ok;
// a service without endpoints → its pairs FAIL, exit 1; --dns: every pod resolves every service name; one
// pod isolated by hand (eth0 down inside its own pw- netns) → exactly its pairs FAIL, exit 1.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { clusterFiles, createEchoService, ECHO_SERVICE_PORT, waitFor } from '../../src/lab/cluster.js';
import { ApiClient, ApiClientError } from '../../src/client/api-client.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { Service } from '../../src/api/objects.js';
import type { ConnectivityReport } from '../../src/cli/debug/connectivity.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(120_000);

t.test('podwire connectivity --lab', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 2 });
  const prefix = c.lab.prefix;
  const names = c.pods.map((p) => `default/${p.name}`).sort();
  t.equal(names.length, 4);

  // The overlay may need a moment after the cluster is up.
  const ok = await waitFor('all pairs ok', () => {
    const r = podwire(['connectivity', '--lab', prefix, '-o', 'json']);
    return r.code === 0 ? r : undefined;
  }, 30_000);
  const report = JSON.parse(ok.stdout) as ConnectivityReport;
  t.same(Object.keys(report).sort(), ['healthy', 'pairs', 'skipped', 'summary']);
  t.same(report.skipped, [], 'without --services nothing is skipped');
  t.same(report.summary, { total: 12, ok: 12, failed: 0 });
  t.equal(report.healthy, true);
  t.same(Object.keys(report.pairs[0]!).sort(), ['destination', 'kind', 'ms', 'ok', 'source']);
  t.same([...new Set(report.pairs.map((p) => p.source))].sort(), names);
  t.ok(report.pairs.every((p) => p.kind === 'pod' && p.ok && typeof p.ms === 'number' && p.ms > 0 && p.source !== p.destination));

  const table = podwire(['connectivity', '--lab', prefix, '--concurrency', '2']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^SOURCE \\ DESTINATION\s+default\//m);
  t.match(table.stdout, /^12\/12 ok$/m);
  t.notMatch(table.stdout, /FAIL/);
  t.equal(table.stderr, '', 'no progress line when stderr is not a TTY');
  const wide = podwire(['connectivity', '--lab', prefix, '-o', 'wide']);
  t.equal(wide.code, 0, wide.stderr);
  t.match(wide.stdout, /\bok \d+\.\d{3}ms\b/);
  t.equal(podwire(['connectivity', '--lab', prefix, '-o', 'yaml']).code, 2, '-o yaml: usage error');

  // --services: the echo service (4 endpoints) from every pod.
  const svc = await createEchoService(c);
  const withSvc = podwire(['connectivity', '--services', '--lab', prefix, '-o', 'json']);
  t.equal(withSvc.code, 0, withSvc.stdout + withSvc.stderr);
  const sr = JSON.parse(withSvc.stdout) as ConnectivityReport;
  const svcPairs = sr.pairs.filter((p) => p.kind === 'service');
  const echoPairs = svcPairs.filter((p) => p.destination === `default/echo:${ECHO_SERVICE_PORT}`);
  t.equal(echoPairs.length, 4, 'each pod → default/echo');
  t.ok(echoPairs.every((p) => p.ok && typeof p.ms === 'number' && p.ms > 0 && p.ms < 1000), JSON.stringify(echoPairs));
  // kube-system/kube-dns is backed by every node's DNS server (the agents'): its 53/TCP answers
  // from every pod (on the pod's own node).
  const dnsPairs = svcPairs.filter((p) => p.destination === 'kube-system/kube-dns:53');
  t.equal(dnsPairs.length, 4, 'each pod → kube-system/kube-dns:53');
  t.ok(dnsPairs.every((p) => p.ok), JSON.stringify(dnsPairs));
  t.equal(sr.summary.total, 20);
  t.ok(svc.spec.clusterIP);

  // A service without endpoints is listed as not probed, not failed: the proxy rejecting it is
  // the data plane working.
  t.same(sr.skipped, [], JSON.stringify(sr.skipped));
  await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'nobody' }, spec: { selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const skipped = await waitFor('nobody listed as not probed', () => {
    const r = podwire(['connectivity', '--services', '--lab', prefix, '-o', 'json']);
    const rep = JSON.parse(r.stdout) as ConnectivityReport;
    return rep.skipped.some((x) => x.destination === 'default/nobody:80') ? { r, rep } : undefined;
  }, 30_000);
  t.equal(skipped.r.code, 0, 'services without endpoints are not failures');
  t.notOk(skipped.rep.pairs.some((p) => p.destination === 'default/nobody:80'), 'no connect to a service without endpoints');
  t.match(skipped.rep.skipped.find((x) => x.destination === 'default/nobody:80')?.reason ?? '', /no ready endpoint/);
  const skippedTable = podwire(['connectivity', '--services', '--lab', prefix]);
  t.match(skippedTable.stdout, /^not probed:\n  default\/nobody:80: no ready endpoint/m);
  t.match(skippedTable.stdout, /^20\/20 ok, 1 not probed$/m);
  await c.admin.delete({ plural: 'services', namespace: 'default', name: 'nobody' });

  // A service whose endpoints refuse (every echo pod, on a port nothing listens on): a TCP connect to it fails from every pod, exit 1.
  await c.admin.create<Service>({ plural: 'services', namespace: 'default' }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'closed' }, spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 9 }] },
  });
  const empty = await waitFor('closed probed', () => {
    const r = podwire(['connectivity', '--services', '--lab', prefix, '-o', 'json', '--timeout-ms', '500']);
    const rep = JSON.parse(r.stdout) as ConnectivityReport;
    return rep.pairs.some((p) => p.destination === 'default/closed:80') ? { r, rep } : undefined;
  }, 30_000);
  t.equal(empty.r.code, 1, 'a failed service pair: exit 1');
  const closed = empty.rep.pairs.filter((p) => p.destination === 'default/closed:80');
  t.equal(closed.length, 4);
  t.ok(closed.every((p) => !p.ok && p.ms === null && /^TCP connect to [\d.]+:80: /.test(p.error ?? '')), JSON.stringify(closed));
  t.equal(empty.rep.summary.failed, 4);
  await c.admin.delete({ plural: 'services', namespace: 'default', name: 'closed' });

  // The agent's route itself: a bad body is a 400 naming the field, an unknown source pod a 404.
  const agent = new ApiClient({ server: 'http://podwire-agent', socketPath: clusterFiles(prefix).agentSocket('node1'), timeoutMs: 10_000 });
  t.teardown(() => agent.close());
  const badPort = await agent.request('POST', '/v1/debug/connect', { srcIp: c.pods[0]!.ip, dst: svc.spec.clusterIP, port: 70000, timeoutMs: 500 }).catch((e: unknown) => e);
  t.ok(badPort instanceof ApiClientError && badPort.code === 400, 'port 70000: 400');
  t.match((badPort as Error).message, /port must be an integer 1-65535/);
  const notHere = await agent.request('POST', '/v1/debug/connect', { srcIp: '10.244.250.9', dst: svc.spec.clusterIP, port: ECHO_SERVICE_PORT, timeoutMs: 500 }).catch((e: unknown) => e);
  t.ok(notHere instanceof ApiClientError && notHere.code === 404, 'no such pod: 404');

  // --dns: every pod looks up every ClusterIP service's name at 10.96.0.10 (its own node's server).
  const dns = podwire(['connectivity', '--dns', '--lab', prefix, '-o', 'json']);
  t.equal(dns.code, 0, dns.stdout + dns.stderr);
  const dr = JSON.parse(dns.stdout) as ConnectivityReport;
  const dnsProbes = dr.pairs.filter((p) => p.kind === 'dns');
  t.same([...new Set(dnsProbes.map((p) => p.destination))].sort(), ['echo.default.svc.cluster.local', 'kube-dns.kube-system.svc.cluster.local'], 'the names of the ClusterIP services');
  t.ok(dnsProbes.length === 8 && dnsProbes.every((p) => p.ok && typeof p.ms === 'number'), JSON.stringify(dnsProbes));
  t.match(podwire(['connectivity', '--dns', '--lab', prefix]).stdout, /^20\/20 ok$/m, '--dns matrix');
  const extra = podwire(['connectivity', 'x', '--lab', prefix]);
  t.equal(extra.code, 2);

  // Isolate one pod: eth0 down inside its own netns (a pw- lab netns).
  const isolated = c.pods[c.pods.length - 1]!;
  const nsName = path.basename(isolated.netns);
  t.ok(nsName.startsWith('pw-'), `pod netns ${nsName}`);
  const down = spawnSync('ip', ['-n', nsName, 'link', 'set', 'eth0', 'down'], { encoding: 'utf8' });
  t.equal(down.status, 0, down.stderr);
  const bad = podwire(['connectivity', '--lab', prefix, '-o', 'json', '--timeout-ms', '500']);
  t.equal(bad.code, 1, 'an isolated pod: exit 1');
  const br = JSON.parse(bad.stdout) as ConnectivityReport;
  const iso = `default/${isolated.name}`;
  const involved = br.pairs.filter((p) => p.source === iso || p.destination === iso);
  t.equal(involved.length, 6);
  t.ok(involved.every((p) => !p.ok && p.error), JSON.stringify(involved));
  t.ok(br.pairs.filter((p) => p.source !== iso && p.destination !== iso).every((p) => p.ok), 'the other pairs are ok');
  t.same(br.summary, { total: 12, ok: 6, failed: 6 });
  t.equal(br.healthy, false);
  const badTable = podwire(['connectivity', '--lab', prefix, '--timeout-ms', '300']);
  t.equal(badTable.code, 1);
  t.match(badTable.stdout, new RegExp(`^${iso.replace(/[./]/g, '\\$&')}\\s+(FAIL|-)(\\s+(FAIL|-))+$`, 'm'));
  t.match(badTable.stdout, /^6\/12 ok, 6 failed$/m);
  const badDns = JSON.parse(podwire(['connectivity', '--dns', '--lab', prefix, '-o', 'json', '--timeout-ms', '1000']).stdout) as ConnectivityReport;
  const isoDns = badDns.pairs.filter((p) => p.kind === 'dns' && p.source === iso);
  t.ok(isoDns.length === 2 && isoDns.every((p) => !p.ok && /A .* from 10\.96\.0\.10: /.test(p.error ?? '')), `the isolated pod's lookups fail: ${JSON.stringify(isoDns)}`);
  const otherDns = badDns.pairs.filter((p) => p.kind === 'dns' && p.source !== iso);
  t.ok(otherDns.length === 6 && otherDns.every((p) => p.ok), `the other pods' lookups are ok: ${JSON.stringify(otherDns.filter((p) => !p.ok))}`);
});
