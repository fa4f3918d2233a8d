// The cluster DNS server's metrics (src/dns/metrics.ts's observer, src/agent/dns-metrics.ts's
// CoreDNS names) end to end: a DnsServer on 127.0.0.1 port 0 with the observer of a fresh
// AgentMetrics, real UDP and TCP queries (cluster names, NXDOMAIN, a type outside CoreDNS's list,
// a packet too short to answer, forwarded names twice each to a fake upstream so the cache answers
// the second), then the scraped text read back by an independent parser. A second server on the
// same registry (one agent runs several) with a dead upstream and one forwarding slot; ::1 for the
// IPv6 family; a throwing observer changes no answer. Every observer method must have been called
// by a real query, so a call site taken out fails here.
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { AgentMetrics, type AgentMetricsSources } from '../../src/agent/metrics.js';
import type { DnsObserver } from '../../src/dns/metrics.js';
import { buildDnsIndex } from '../../src/dns/records.js';
import { DnsServer, type DnsServerOptions } from '../../src/dns/server.js';
import { fakeUpstream } from '../lib/dns-fake-upstream.js';
import { decode, query, service } from '../lib/dns-fixtures.js';
import { parseExposition, sampleValue, type Exposition } from '../lib/prom-text.js';

const noSources: AgentMetricsSources = { network: () => undefined, proxy: () => undefined, ipam: () => undefined };
const index = buildDnsIndex({
  services: [
    service('web', 'default', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] }),
    service('ext', 'default', { type: 'ExternalName', externalName: 'www.example.test' }),
  ],
  endpoints: [],
});

/** Sends the messages in order on one socket and resolves with the `answers` responses it gets. */
function udp(port: number, msgs: Buffer[], answers = msgs.length, host = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`${got.length} of ${answers} UDP answers from ${host}:${port} in 3 s`));
    }, 3000);
    s.on('message', (m) => {
      got.push(m);
      if (got.length === answers) {
        clearTimeout(timer);
        s.close();
        resolve(got);
      }
    });
    for (const m of msgs) s.send(m, port, host);
  });
}

function tcp(port: number, msg: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(new Error(`no TCP answer from ${host}:${port} in 3 s`)), 3000);
    s.on('error', (err) => (clearTimeout(timer), reject(err)));
    s.on('connect', () => s.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 255]), msg])));
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
  });
}

async function deadPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const metrics = new AgentMetrics(noSources, { processMetrics: false });
// The observer the servers get counts its calls on the way to the agent's: the keys must name
// every method of DnsObserver (the compiler checks), and the last test wants each called.
const calls: Record<keyof DnsObserver, number> = { query: 0, cacheHit: 0, cacheMiss: 0, forwardRequest: 0, forwardResponse: 0, forwardRejected: 0 };
const real = metrics.dnsObserver();
const observer: DnsObserver = {
  query: (e) => (calls.query++, real.query(e)),
  cacheHit: (s, k) => (calls.cacheHit++, real.cacheHit(s, k)),
  cacheMiss: (s) => (calls.cacheMiss++, real.cacheMiss(s)),
  forwardRequest: (to) => (calls.forwardRequest++, real.forwardRequest(to)),
  forwardResponse: (to, rcode, s) => (calls.forwardResponse++, real.forwardResponse(to, rcode, s)),
  forwardRejected: () => (calls.forwardRejected++, real.forwardRejected()),
};
const scrape = async (): Promise<Exposition> => parseExposition(await metrics.text());
const data = (b: Buffer): unknown[] => (decode(b).answers ?? []).map((a) => (a as { data?: unknown }).data);
const sum = (bs: Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);
let mainServer = '';

t.test('queries, cache and forwarding counted with CoreDNS names and labels', async (t) => {
  t.equal(metrics.dnsObserver(), real, 'one observer per AgentMetrics (a second call registers nothing twice)');
  const upstream = await fakeUpstream();
  const opts: Partial<DnsServerOptions> = { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: upstream.port }], loopProbe: false };
  const server = new DnsServer(index, { ...opts, observer });
  const plain = new DnsServer(index, opts);
  await server.start();
  await plain.start();
  t.teardown(async () => {
    await server.stop();
    await plain.stop();
    await upstream.close();
  });
  const port = server.address.port;
  const S = `dns://127.0.0.1:${port}`;
  mainServer = S;
  const to = `127.0.0.1:${upstream.port}`;

  // The cluster zone over UDP: an A, an NXDOMAIN, a type CoreDNS lumps into "other"; then a packet
  // too short for a header (dropped, no answer) before an answer on the same socket.
  const clusterQ = [query('web.default.svc.cluster.local', 'A', { id: 1 }), query('nope.default.svc.cluster.local', 'A', { id: 2 }), query('web.default.svc.cluster.local', 'CAA', { id: 3 })];
  const clusterA = await udp(port, clusterQ);
  t.same(clusterA.map((b) => decode(b).rcode), ['NOERROR', 'NXDOMAIN', 'NOERROR']);
  t.same(await udp(plain.address.port, clusterQ), clusterA, 'the same bytes as from a server without an observer');
  const junk = Buffer.from([1, 2, 3, 4, 5]);
  const webAgain = query('web.default.svc.cluster.local', 'A', { id: 4 });
  const afterJunk = await udp(port, [junk, webAgain], 1);
  t.equal(decode(afterJunk[0]!).id, 4, 'the short packet got no answer');
  // TCP: SRV.
  const srvQ = query('_http._tcp.web.default.svc.cluster.local', 'SRV', { id: 5 });
  const srvA = await tcp(port, srvQ);
  t.equal(decode(srvA).answers?.length, 1);
  // Forwarded, each twice (the second from the cache), then the ExternalName (its target cached).
  const fwdQ = [query('www.example.test', 'A', { id: 6 }), query('WWW.example.test', 'A', { id: 7 }), query('nx.example.test', 'A', { id: 8 }), query('nx.example.test', 'A', { id: 9 })];
  const fwdA: Buffer[] = [];
  for (const q of fwdQ) fwdA.push(...(await udp(port, [q])));
  t.same(fwdA.map((b) => decode(b).rcode), ['NOERROR', 'NOERROR', 'NXDOMAIN', 'NXDOMAIN']);
  t.equal(upstream.questions.length, 2, 'the upstream was asked each name once');
  const extQ = query('ext.default.svc.cluster.local', 'A', { id: 10 });
  const [extA] = await udp(port, [extQ]);
  t.same(decode(extA!).answers?.map((a) => a.type), ['CNAME', 'A'], 'ExternalName: CNAME + the cached target');

  const e = await scrape();
  const zone = 'cluster.local.';
  const udp4 = { server: S, proto: 'udp', family: '1' };
  for (const [name, type] of [['coredns_dns_requests_total', 'counter'], ['coredns_dns_responses_total', 'counter'], ['coredns_dns_request_duration_seconds', 'histogram'], ['coredns_dns_request_size_bytes', 'histogram'], ['coredns_dns_response_size_bytes', 'histogram'], ['coredns_cache_hits_total', 'counter'], ['coredns_cache_misses_total', 'counter'], ['coredns_cache_requests_total', 'counter'], ['coredns_forward_requests_total', 'counter'], ['coredns_forward_responses_total', 'counter'], ['coredns_forward_request_duration_seconds', 'histogram'], ['coredns_proxy_request_duration_seconds', 'histogram'], ['coredns_forward_max_concurrent_rejects_total', 'counter']]) {
    t.equal(e.types.get(name!), type, `${name} is a ${type}`);
  }
  const requests = (labels: Record<string, string>) => sampleValue(e, 'coredns_dns_requests_total', labels);
  t.equal(requests({ ...udp4, zone, type: 'A' }), 4, 'cluster names, A, UDP: web, nope, web after the short packet, ext');
  t.equal(requests({ ...udp4, zone, type: 'other' }), 1, 'CAA is "other"');
  t.equal(requests({ server: S, proto: 'tcp', family: '1', zone, type: 'SRV' }), 1, 'SRV over TCP');
  t.equal(requests({ ...udp4, zone: 'dropped', type: 'other' }), 1, 'the short packet: zone "dropped"');
  t.equal(requests({ ...udp4, zone: '.', type: 'A' }), 4, 'forwarded names: zone "."');
  const responses = (z: string, rcode: string) => sampleValue(e, 'coredns_dns_responses_total', { server: S, zone: z, rcode });
  t.equal(responses(zone, 'NOERROR'), 5, 'web ×2, CAA (NODATA), SRV, ext');
  t.equal(responses(zone, 'NXDOMAIN'), 1);
  t.equal(responses('.', 'NOERROR'), 2);
  t.equal(responses('.', 'NXDOMAIN'), 2, 'relayed from the upstream, then from the cache');
  t.equal(sampleValue(e, 'coredns_dns_responses_total', { server: S, zone: 'dropped' }), undefined, 'no response to the dropped packet');
  const duration = (z: string, type: string) => sampleValue(e, 'coredns_dns_request_duration_seconds_count', { server: S, zone: z, type });
  t.same([duration(zone, 'A'), duration(zone, 'other'), duration(zone, 'SRV'), duration('.', 'A')], [4, 1, 1, 4], 'one duration per response');
  t.equal(sampleValue(e, 'coredns_dns_request_duration_seconds_bucket', { server: S, zone, type: 'A', le: '0.00025' }) !== undefined, true, 'CoreDNS\'s first bucket, 0.25 ms …');
  t.equal(sampleValue(e, 'coredns_dns_request_duration_seconds_bucket', { server: S, zone, type: 'A', le: '8.192' }), 4, '… and its last, 8.192 s');
  const size = (metric: string, z: string, proto: string) => sampleValue(e, `${metric}_sum`, { server: S, zone: z, proto });
  t.equal(size('coredns_dns_request_size_bytes', zone, 'udp'), sum([...clusterQ, webAgain, extQ]), 'request bytes: what was sent');
  t.equal(size('coredns_dns_request_size_bytes', 'dropped', 'udp'), 5);
  t.equal(size('coredns_dns_response_size_bytes', zone, 'udp'), sum([...clusterA, ...afterJunk, extA!]), 'response bytes: what came back');
  t.equal(size('coredns_dns_response_size_bytes', zone, 'tcp'), srvA.length, 'TCP: the message, not its length prefix');
  t.equal(size('coredns_dns_response_size_bytes', '.', 'udp'), sum(fwdA));
  t.equal(sampleValue(e, 'coredns_dns_response_size_bytes_bucket', { server: S, zone: '.', proto: 'udp', le: '511' }), 4, 'CoreDNS\'s size buckets');

  const cache = { server: S, zones: '.' };
  t.equal(sampleValue(e, 'coredns_cache_requests_total', cache), 5, 'www ×2, nx ×2, ext\'s target');
  t.equal(sampleValue(e, 'coredns_cache_misses_total', cache), 2);
  t.equal(sampleValue(e, 'coredns_cache_hits_total', { ...cache, type: 'success' }), 2, 'WWW and ext\'s target');
  t.equal(sampleValue(e, 'coredns_cache_hits_total', { ...cache, type: 'denial' }), 1, 'the second nx');
  t.equal(sampleValue(e, 'coredns_forward_requests_total', { to }), 2);
  t.equal(sampleValue(e, 'coredns_forward_responses_total', { to, rcode: 'NOERROR' }), 1);
  t.equal(sampleValue(e, 'coredns_forward_responses_total', { to, rcode: 'NXDOMAIN' }), 1);
  t.equal(sampleValue(e, 'coredns_forward_request_duration_seconds_count', { to, rcode: 'NOERROR' }), 1);
  t.equal(sampleValue(e, 'coredns_proxy_request_duration_seconds_count', { proxy_name: 'forward', to, rcode: 'NXDOMAIN' }), 1, 'also under CoreDNS 1.11\'s name');
  t.ok(sampleValue(e, 'coredns_forward_request_duration_seconds_sum', { to, rcode: 'NOERROR' })! > 0, 'timed');
  t.equal(sampleValue(e, 'coredns_forward_max_concurrent_rejects_total'), 0, 'no rejects yet');
});

t.test('a second server on the same registry: its own server label; an upstream that never answers; the forwarding bound', async (t) => {
  const dead = await deadPort();
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: dead }], upstreamTimeoutMs: 200, maxForwarding: 1, loopProbe: false, observer });
  await server.start();
  t.teardown(() => server.stop());
  const S2 = `dns://127.0.0.1:${server.address.port}`;
  const before = await scrape();
  // Both at once: the first takes the one forwarding slot and times out, the second is rejected.
  const answers = await udp(server.address.port, [query('a.example.test', 'A', { id: 1 }), query('b.example.test', 'A', { id: 2 })]);
  t.same(answers.map((b) => decode(b).rcode), ['SERVFAIL', 'SERVFAIL']);
  const e = await scrape();
  const to = `127.0.0.1:${dead}`;
  t.equal(sampleValue(e, 'coredns_forward_max_concurrent_rejects_total'), 1, 'the second one');
  t.equal(sampleValue(e, 'coredns_forward_requests_total', { to }), 1, 'the first one was sent …');
  t.equal(sampleValue(e, 'coredns_forward_responses_total', { to }), undefined, '… and never answered');
  t.equal(sampleValue(e, 'coredns_forward_request_duration_seconds_count', { to }), undefined, 'no answer, no duration');
  t.equal(sampleValue(e, 'coredns_dns_responses_total', { server: S2, zone: '.', rcode: 'SERVFAIL' }), 2);
  t.equal(sampleValue(e, 'coredns_cache_misses_total', { server: S2, zones: '.' }), 1, 'the rejected one never reached the cache');
  t.ok(sampleValue(e, 'coredns_dns_request_duration_seconds_sum', { server: S2, zone: '.', type: 'A' })! >= 0.2, 'the timeout is in the duration');
  const main = { server: mainServer, zone: '.', rcode: 'NOERROR' };
  t.equal(sampleValue(e, 'coredns_dns_responses_total', main), sampleValue(before, 'coredns_dns_responses_total', main), 'the first server\'s series did not move');
});

const probe = dgram.createSocket('udp6');
const haveV6 = await new Promise<boolean>((r) => {
  probe.once('error', () => r(false));
  probe.bind(0, '::1', () => r(true));
});
probe.close();

t.test('IPv6: family 2 and the server label in brackets', { skip: !haveV6 && '::1 cannot be bound here' }, async (t) => {
  const server = new DnsServer(index, { listen: { host: '::1', port: 0 }, loopProbe: false, observer });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.address.port;
  await udp(port, [query('web.default.svc.cluster.local', 'AAAA')], 1, '::1');
  await tcp(port, query('web.default.svc.cluster.local', 'A'), '::1');
  const e = await scrape();
  const S = `dns://[::1]:${port}`;
  t.equal(sampleValue(e, 'coredns_dns_requests_total', { server: S, zone: 'cluster.local.', proto: 'udp', family: '2', type: 'AAAA' }), 1);
  t.equal(sampleValue(e, 'coredns_dns_requests_total', { server: S, zone: 'cluster.local.', proto: 'tcp', family: '2', type: 'A' }), 1);
});

t.test('a throwing observer changes no answer and is logged', async (t) => {
  const upstream = await fakeUpstream();
  const warnings: string[] = [];
  const log = { info: () => undefined, warn: (_o: object, msg: string) => void warnings.push(msg) };
  const boom = (): never => {
    throw new Error('observer bug');
  };
  const throwing: DnsObserver = { query: boom, cacheHit: boom, cacheMiss: boom, forwardRequest: boom, forwardResponse: boom, forwardRejected: boom };
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: upstream.port }], loopProbe: false, observer: throwing, log });
  await server.start();
  t.teardown(async () => {
    await server.stop();
    await upstream.close();
  });
  const port = server.address.port;
  const [cluster] = await udp(port, [query('web.default.svc.cluster.local', 'A', { id: 1 })]);
  t.same(data(cluster!), ['10.96.0.20']);
  for (const id of [2, 3]) {
    const [fwd] = await udp(port, [query('www.example.test', 'A', { id })]);
    t.same([decode(fwd!).rcode, data(fwd!)], ['NOERROR', ['192.0.2.53']], `forwarded (${id === 2 ? 'upstream' : 'cache'}) answered despite the observer`);
  }
  t.ok(warnings.some((w) => /metrics observer failed/.test(w)), 'logged');
});

t.test('answers from the answer cache are observed as requests and responses, with rcode, type and sizes', async (t) => {
  const server = new DnsServer(index, { listen: { host: '127.0.0.1', port: 0 }, loopProbe: false, observer });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.address.port;
  const S = `dns://127.0.0.1:${port}`;
  const zone = 'cluster.local.';
  const aQ = [query('web.default.svc.cluster.local', 'A', { id: 1, edns: 1232 }), query('web.default.svc.cluster.local', 'A', { id: 2, edns: 1232 })];
  const aA: Buffer[] = [];
  for (const q of aQ) aA.push(...(await udp(port, [q])));
  const nxQ = [query('nope.default.svc.cluster.local', 'SRV', { id: 3 }), query('nope.default.svc.cluster.local', 'SRV', { id: 4 })];
  const nxA: Buffer[] = [];
  for (const q of nxQ) nxA.push(await tcp(port, q));
  t.equal(server.answerCacheStats.hits, 2, 'the second of each came from the answer cache');
  t.same(aA.map((b) => [decode(b).id, data(b)]), [[1, ['10.96.0.20']], [2, ['10.96.0.20']]]);
  t.same(nxA.map((b) => [decode(b).id, decode(b).rcode]), [[3, 'NXDOMAIN'], [4, 'NXDOMAIN']]);
  const e = await scrape();
  t.equal(sampleValue(e, 'coredns_dns_requests_total', { server: S, zone, proto: 'udp', family: '1', type: 'A' }), 2, 'both A queries counted');
  t.equal(sampleValue(e, 'coredns_dns_requests_total', { server: S, zone, proto: 'tcp', family: '1', type: 'SRV' }), 2, 'both SRV queries counted');
  t.equal(sampleValue(e, 'coredns_dns_responses_total', { server: S, zone, rcode: 'NOERROR' }), 2);
  t.equal(sampleValue(e, 'coredns_dns_responses_total', { server: S, zone, rcode: 'NXDOMAIN' }), 2, 'the cached NXDOMAIN with its rcode');
  t.same([sampleValue(e, 'coredns_dns_request_duration_seconds_count', { server: S, zone, type: 'A' }), sampleValue(e, 'coredns_dns_request_duration_seconds_count', { server: S, zone, type: 'SRV' })], [2, 2], 'one duration per response');
  const size = (metric: string, proto: string) => sampleValue(e, `${metric}_sum`, { server: S, zone, proto });
  t.equal(size('coredns_dns_request_size_bytes', 'udp'), sum(aQ));
  t.equal(size('coredns_dns_response_size_bytes', 'udp'), sum(aA), 'response bytes of the hit too');
  t.equal(size('coredns_dns_response_size_bytes', 'tcp'), sum(nxA));
  t.equal(server.stats.rcodes.NXDOMAIN, 2, 'server.stats counts hits too');
});

t.test('every observer method was called by a real query above (a call site taken out fails here)', async (t) => {
  for (const [method, n] of Object.entries(calls)) t.ok(n > 0, `${method}: ${n} calls`);
});
