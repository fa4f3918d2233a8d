// The agent's cluster DNS (src/agent/dns): the nft table it writes (pure), and NodeDns against a
// real control plane on loopback with a fake kernel: it serves only once the watches listed,
// answers changes within 1 s, publishes its endpoint on the Node, DNATs to the other nodes'
// servers (never its own) when down, and withdraws the endpoint when stopped.
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import type { Endpoints, Node, Service } from '../../src/api/objects.js';
import { fallbackAddresses, pickFallback, MAX_FALLBACK, NodeDns, DNS_ENDPOINT_ANNOTATION, type NodeDnsKernel, type NodeDnsOptions } from '../../src/agent/dns/node-dns.js';
import { renderDnsRules, renderDnsRulesRemove } from '../../src/agent/dns/rules.js';
import { realDnsProbe } from '../../src/agent/dns/probe.js';
import { listening, eventually } from '../lib/controlplane.js';
import { decode, query } from '../lib/dns-fixtures.js';

t.test('rules: NOTRACK while a socket is bound, fallback DNAT to the other nodes only', async (t) => {
  const none = renderDnsRules({ clusterDns: '10.96.0.10', fallback: [] });
  t.equal(none, [
    'table inet podwire-dns {}',
    'delete table inet podwire-dns',
    'table inet podwire-dns {',
    '\tchain prerouting-raw {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
    '\t\tip daddr 10.96.0.10 meta l4proto { udp, tcp } th dport 53 socket transparent 0 notrack comment "node-local DNS: answered here, untracked"',
    '\t}',
    '\tchain output-raw {',
    '\t\ttype filter hook output priority raw; policy accept;',
    '\t\tip saddr 10.96.0.10 meta l4proto { udp, tcp } th sport 53 notrack comment "node-local DNS answers"',
    '\t}',
    '}',
    '',
  ].join('\n'));
  const two = renderDnsRules({ clusterDns: '10.96.0.10', fallback: ['10.244.3.1', '10.244.2.1', '10.244.3.1', 'fd00::1', '10.96.0.10'] });
  t.match(two, /\tchain prerouting-fallback {\n\t\ttype nat hook prerouting priority dstnat - 1; policy accept;\n\t\tip daddr 10.96.0.10 meta l4proto { udp, tcp } th dport 53 dnat ip to numgen random mod 2 map { 0 : 10.244.2.1, 1 : 10.244.3.1 } comment "local DNS down: another node's"\n\t}\n}\n$/, 'sorted, deduplicated, one family, never the cluster DNS address itself');
  t.match(renderDnsRules({ clusterDns: 'fd00:96::a', fallback: ['fd00:244:2::1', '10.244.2.1'] }), /ip6 daddr fd00:96::a .* dnat ip6 to numgen random mod 1 map { 0 : fd00:244:2::1 }/);
  t.throws(() => renderDnsRules({ clusterDns: '10.96.0.300', fallback: [] }), /cluster DNS address "10.96.0.300" is not an IP address/);
  t.equal(renderDnsRulesRemove(), 'table inet podwire-dns {}\ndelete table inet podwire-dns\n');
  const ep: Endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kube-dns', namespace: 'kube-system' }, subsets: [{ addresses: [{ ip: '10.244.3.1' }, { ip: '10.244.1.1' }, { ip: 'junk' }, { ip: '10.244.2.1' }] }] };
  t.same(fallbackAddresses(ep, '10.244.1.1'), ['10.244.2.1', '10.244.3.1'], 'the own address is never a fallback');
});

class FakeKernel implements NodeDnsKernel {
  bound: string[] = [];
  scripts: string[] = [];
  bindClusterDns(ip: string): void {
    this.bound.push(ip);
  }
  applyRules(script: string): void {
    this.scripts.push(script);
  }
}

const datas = (p: ReturnType<typeof decode>): unknown[] => (p.answers ?? []).map((a) => ('data' in a ? a.data : undefined));
const silent = { info() {}, warn() {}, error() {} };

function udpQuery(port: number, bytes: Buffer, host = '127.0.0.1'): Promise<ReturnType<typeof decode>> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => (s.close(), reject(new Error('no UDP answer in 2 s'))), 2000);
    s.on('message', (m) => (clearTimeout(timer), s.close(), resolve(decode(m))));
    s.send(bytes, port, host);
  });
}

/** A control plane on loopback with Node n1 (the NodeDns's own), closed at the test's end. */
async function controlPlaneWithNode(t: Test): Promise<Awaited<ReturnType<typeof listening>>> {
  const cp = await listening(new MemoryStore());
  t.teardown(async () => {
    cp.client.close();
    await cp.app.close();
  });
  await cp.client.create<Node>({ plural: 'nodes' }, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: {} } as Node);
  return cp;
}

// 127.0.0.1 stands for the kube-dns address, 127.0.0.2 for the node's gateway (both local on lo); free ports.
const LOOPBACK_NODE: NodeDnsOptions = { nodeName: 'n1', clusterDns: '127.0.0.1', zone: 'cluster.local', gateway: '127.0.0.2', upstreams: [], ttl: 5, negativeTtl: 1, podRecords: 'insecure', port: 0, server: { loopProbe: false } };

const svc = (name: string, clusterIP: string): Service => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { clusterIP, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } as Service);

t.test('NodeDns: serves after the lists, follows changes within 1 s, publishes and withdraws its endpoint, fallback rules', async (t) => {
  const cp = await controlPlaneWithNode(t);
  await cp.client.create<Service>({ plural: 'services', namespace: 'default' }, svc('web', '10.96.0.20'));
  const kernel = new FakeKernel();
  const dns = new NodeDns(LOOPBACK_NODE, { client: cp.client, kernel, log: silent });
  dns.start();
  t.teardown(() => dns.stop());
  await eventually(async () => dns.servers.length === 2, 'both listeners up');
  t.same(kernel.bound, ['127.0.0.1'], 'the cluster DNS address bound once');
  t.match(kernel.scripts[0], /ip daddr 127\.0\.0\.1 .* socket transparent 0 notrack/);
  t.same(dns.status().listening.map((l) => l.replace(/:\d+$/, '')), ['127.0.0.1', '127.0.0.2']);
  const [local, gateway] = dns.servers.map((s) => s.address.port);
  const a = await udpQuery(local!, query('web.default.svc.cluster.local', 'A'));
  t.same(datas(a), ['10.96.0.20'], 'what was there before the start is answered at once');
  t.same(datas(await udpQuery(gateway!, query('WEB.default.svc.cluster.local', 'A'), '127.0.0.2')), ['10.96.0.20'], 'the gateway listener answers from the same index');
  const node = await eventually(async () => {
    const n = await cp.client.get<Node>({ plural: 'nodes', name: 'n1' });
    return n.metadata.annotations?.[DNS_ENDPOINT_ANNOTATION] ? n : undefined;
  }, 'the endpoint published');
  t.equal(node.metadata.annotations?.[DNS_ENDPOINT_ANNOTATION], '127.0.0.2');

  // A negative answer, then the service: the server sees it well within 1 s.
  t.equal((await udpQuery(local!, query('new.default.svc.cluster.local', 'A'))).rcode, 'NXDOMAIN');
  const t0 = Date.now();
  await cp.client.create<Service>({ plural: 'services', namespace: 'default' }, svc('new', '10.96.0.21'));
  await eventually(async () => datas(await udpQuery(local!, query('new.default.svc.cluster.local', 'A')))[0] === '10.96.0.21', 'a new service resolves', 1000);
  const created = Date.now() - t0;
  t.ok(created < 1000, `a created service resolved after ${created} ms`);
  const t1 = Date.now();
  await cp.client.delete({ plural: 'services', namespace: 'default', name: 'new' });
  await eventually(async () => (await udpQuery(local!, query('new.default.svc.cluster.local', 'A'))).rcode === 'NXDOMAIN', 'a deleted service is gone', 1000);
  t.ok(Date.now() - t1 < 1000, `a deleted service was NXDOMAIN after ${Date.now() - t1} ms`);

  // kube-dns endpoints (the control plane derives them from the nodes' annotations) become the
  // fallback (this node's own address is left out: the pure test above; the API refuses loopback).
  await cp.client.create<Endpoints>({ plural: 'endpoints', namespace: 'kube-system' }, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kube-dns', namespace: 'kube-system' }, subsets: [{ addresses: [{ ip: '10.244.3.1' }, { ip: '10.244.2.1' }], ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }] });
  await eventually(async () => /map \{ 0 : 10\.244\.2\.1, 1 : 10\.244\.3\.1 \}/.test(kernel.scripts.at(-1) ?? ''), 'fallback rules written');
  t.same(dns.status().fallback, ['10.244.2.1', '10.244.3.1']);
  const writes = kernel.scripts.length;
  await cp.client.update<Endpoints>({ plural: 'endpoints', namespace: 'kube-system', name: 'kube-dns' }, { ...(await cp.client.get<Endpoints>({ plural: 'endpoints', namespace: 'kube-system', name: 'kube-dns' })), subsets: [{ addresses: [{ ip: '10.244.2.1' }, { ip: '10.244.3.1' }], ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }] });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(kernel.scripts.length, writes, 'the same addresses in another order: no write');

  await dns.stop();
  t.same(dns.servers, [], 'listeners closed: the kernel now sends this node\'s pods to the fallback');
  t.equal((await cp.client.get<Node>({ plural: 'nodes', name: 'n1' })).metadata.annotations?.[DNS_ENDPOINT_ANNOTATION], undefined, 'the endpoint withdrawn');
  t.notMatch(kernel.scripts.at(-1), /delete table inet podwire-dns\n$/, 'the table stays (its fallback works while the agent is away)');
});

t.test('NodeDns: not serving before the lists are in; a failed bring-up is retried', async (t) => {
  const cp = await controlPlaneWithNode(t);
  let fail = 1;
  const kernel = new FakeKernel();
  const flaky: NodeDnsKernel = {
    bindClusterDns: (ip) => {
      if (fail-- > 0) throw new Error('RTNETLINK: lo is down');
      kernel.bindClusterDns(ip);
    },
    applyRules: (s) => kernel.applyRules(s),
  };
  const dns = new NodeDns(LOOPBACK_NODE, { client: cp.client, kernel: flaky, log: silent });
  t.equal(dns.status().synced, false);
  dns.start();
  t.teardown(() => dns.stop());
  await eventually(async () => dns.status().error !== undefined, 'the failure reported');
  t.match(dns.status().error, /lo is down/);
  t.same(dns.servers, []);
  await eventually(async () => dns.servers.length === 2 && dns.status().error === undefined, 'retried and up, the error cleared', 5000);
  t.equal(dns.status().synced, true);
});

t.test('NodeDns: fallback servers that do not answer the probe are left out (all kept when none answers)', async (t) => {
  const cp = await controlPlaneWithNode(t);
  const kernel = new FakeKernel();
  const up = new Set(['10.244.2.1', '10.244.3.1']);
  const asked: string[] = [];
  const probe = async (ip: string) => (asked.push(ip), up.has(ip));
  const dns = new NodeDns(LOOPBACK_NODE, { client: cp.client, kernel, log: silent, probe, probeIntervalMs: 50 });
  dns.start();
  t.teardown(() => dns.stop());
  await eventually(async () => dns.servers.length === 2, 'both listeners up');
  const ep = (ips: string[]): Endpoints => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kube-dns', namespace: 'kube-system' }, subsets: [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }] });
  await cp.client.create<Endpoints>({ plural: 'endpoints', namespace: 'kube-system' }, ep(['10.244.2.1', '10.244.3.1']));
  const map = (s: string | undefined) => /map \{ ([^}]*) \}/.exec(s ?? '')?.[1];
  await eventually(async () => map(kernel.scripts.at(-1)) === '0 : 10.244.2.1, 1 : 10.244.3.1', 'both in the fallback');
  up.delete('10.244.3.1');
  await eventually(async () => map(kernel.scripts.at(-1)) === '0 : 10.244.2.1', 'the silent one left out');
  t.same([dns.status().fallback, dns.status().fallbackDown], [['10.244.2.1'], ['10.244.3.1']]);
  const writes = kernel.scripts.length;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(kernel.scripts.length, writes, 'probes that change nothing write nothing');
  up.clear();
  await eventually(async () => map(kernel.scripts.at(-1)) === '0 : 10.244.2.1, 1 : 10.244.3.1', 'none answers: all kept (a guess beats no fallback)');
  up.add('10.244.3.1');
  await eventually(async () => map(kernel.scripts.at(-1)) === '0 : 10.244.3.1', 'only the one that answers');
  t.ok(asked.every((a) => a === '10.244.2.1' || a === '10.244.3.1'), 'only kube-dns\'s listed servers are probed');
});

t.test('realDnsProbe: true when a server answers, false on silence, never throws', async (t) => {
  const server = dgram.createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  server.on('message', (m, rinfo) => server.send(m, rinfo.port, rinfo.address)); // echoes: our id comes back
  const silentSock = dgram.createSocket('udp4');
  await new Promise<void>((r) => silentSock.bind(0, '127.0.0.1', r));
  t.teardown(() => (server.close(), silentSock.close()));
  t.equal(await realDnsProbe('cluster.local', server.address().port, 500)('127.0.0.1'), true, 'an answer with our id');
  t.equal(await realDnsProbe('cluster.local', silentSock.address().port, 200)('127.0.0.1'), false, 'silence: false after the timeout');
  t.equal(await realDnsProbe('cluster.local', 53, 200)('not-an-ip'), false, 'not an IP: false, nothing sent');
});

t.test('pickFallback: at most MAX_FALLBACK servers, stable while they are listed, spread over nodes', async (t) => {
  const all = Array.from({ length: 40 }, (_, i) => `10.244.${i}.1`).sort();
  t.same(pickFallback(all.slice(0, 5), 'n1'), all.slice(0, 5), 'a small list: all of it');
  const p1 = pickFallback(all, 'n1');
  t.equal(p1.length, MAX_FALLBACK);
  t.same(p1, [...p1].sort(), 'sorted');
  t.ok(p1.every((a) => all.includes(a)));
  t.same(pickFallback([...all].reverse(), 'n1'), p1, 'the order of the list does not matter');
  const dropped = all.filter((a) => !p1.includes(a)).slice(0, 10);
  t.same(pickFallback(all.filter((a) => !dropped.includes(a)), 'n1'), p1, 'servers it did not pick leaving: the same picks');
  const picks = new Set(Array.from({ length: 20 }, (_, i) => pickFallback(all, `node${i}`)).flat());
  t.ok(picks.size > 20, `20 nodes pick ${picks.size} different servers of 40 (spread, not all the same 8)`);
});
