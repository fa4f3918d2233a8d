// The DNS query handler (src/dns/handler.ts): every record type and rcode the server answers,
// case-insensitivity, EDNS0 sizes and truncation, FORMERR / NOTIMP / REFUSED / BADVERS, the
// forward decision, and the forwarded answer's assembly.
import t from 'tap';
import dnsPacket from 'dns-packet';
import { forwardedResponse, handleQuery, type HandlerResult } from '../../src/dns/handler.js';
import { buildDnsIndex } from '../../src/dns/records.js';
import { decode, endpoints, headlessEndpoints, query, service, type Decoded, type QueryOptions } from '../lib/dns-fixtures.js';

const index = buildDnsIndex({
  services: [
    service('web', 'default', { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00::20'], ports: [{ name: 'http', port: 80 }] }),
    service('db', 'data', { clusterIP: 'None' }),
    service('empty', 'data', { clusterIP: 'None' }),
    service('big', 'data', { clusterIP: 'None' }),
    service('ext', 'default', { type: 'ExternalName', externalName: 'example.com' }),
    service('alias', 'default', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    service('dangling', 'default', { type: 'ExternalName', externalName: 'gone.default.svc.cluster.local' }),
  ],
  endpoints: [
    endpoints('db', 'data', [{ addresses: [{ ip: '10.244.9.5', hostname: 'db-0' }], ports: [{ name: 'pg', port: 5432 }] }]),
    headlessEndpoints('big', 'data', 40),
  ],
});

function answer(name: string, type: Parameters<typeof query>[1], o: QueryOptions = {}, transport: 'udp' | 'tcp' = 'udp'): Decoded & { size: number } {
  const r = handleQuery(query(name, type, o), transport, index);
  if (r.kind !== 'answer') throw new Error(`expected an answer, got ${r.kind}`);
  return Object.assign(decode(r.bytes), { size: r.bytes.length });
}
const datas = (p: Decoded): unknown[] => (p.answers ?? []).map((a) => ('data' in a ? a.data : undefined));

t.test('A, AAAA, SRV with glue, PTR, TXT, CNAME, SOA, NS', async (t) => {
  const a = answer('web.default.svc.cluster.local', 'A');
  t.equal(a.rcode, 'NOERROR');
  t.ok(a.flag_aa && a.flag_qr && a.flag_ra && a.flag_rd, 'AA QR RA, RD echoed');
  t.same(datas(a), ['10.96.0.20']);
  t.equal(a.answers?.[0].type === 'A' && a.answers[0].ttl, 5, 'TTL 5 s');
  t.same(datas(answer('web.default.svc.cluster.local', 'AAAA')), ['fd00::20']);
  const srv = answer('_http._tcp.web.default.svc.cluster.local', 'SRV');
  t.same(datas(srv), [{ priority: 0, weight: 100, port: 80, target: 'web.default.svc.cluster.local' }]);
  t.same((srv.additionals ?? []).map((r) => r.type + ' ' + ('data' in r ? r.data : '')), ['A 10.96.0.20', 'AAAA fd00::20'], 'glue for the target');
  t.same(datas(answer('20.0.96.10.in-addr.arpa', 'PTR')), ['web.default.svc.cluster.local']);
  t.same(datas(answer('5.9.244.10.in-addr.arpa', 'PTR')), ['db-0.db.data.svc.cluster.local'], 'headless endpoint PTR');
  t.same(datas(answer('dns-version.cluster.local', 'TXT')), [[Buffer.from('1.1.0')]]);
  const soa = answer('cluster.local', 'SOA');
  t.equal(soa.answers?.[0].type, 'SOA');
  t.same(datas(answer('cluster.local', 'NS')), ['ns.dns.cluster.local']);
  t.same(datas(answer('db-0.db.data.svc.cluster.local', 'A')), ['10.244.9.5']);
  t.same(datas(answer('_pg._tcp.db.data.svc.cluster.local', 'SRV')).map((s) => (s as { target: string }).target), ['db-0.db.data.svc.cluster.local']);
  t.same(datas(answer('10-244-1-5.default.pod.cluster.local', 'A')), ['10.244.1.5'], 'pod record');
});

t.test('ExternalName: CNAME, chased inside the zone, forwarded outside it', async (t) => {
  t.same(datas(answer('ext.default.svc.cluster.local', 'CNAME')), ['example.com']);
  const inZone = answer('alias.default.svc.cluster.local', 'A');
  t.same((inZone.answers ?? []).map((r) => `${r.type} ${'data' in r ? r.data : ''}`), ['CNAME web.default.svc.cluster.local', 'A 10.96.0.20']);
  const dangling = answer('dangling.default.svc.cluster.local', 'A');
  t.same([dangling.rcode, datas(dangling), dangling.authorities?.[0]?.type], ['NXDOMAIN', ['gone.default.svc.cluster.local'], 'SOA'], 'a CNAME to a missing name in the zone: NXDOMAIN with the CNAME');
  const aliasTxt = answer('alias.default.svc.cluster.local', 'TXT');
  t.same([aliasTxt.rcode, datas(aliasTxt), aliasTxt.authorities?.[0]?.type], ['NOERROR', ['web.default.svc.cluster.local'], 'SOA'], 'a CNAME to a name without the type: NODATA with the CNAME and the SOA');
  const r = handleQuery(query('ext.default.svc.cluster.local', 'A'), 'udp', index);
  t.equal(r.kind, 'forward');
  if (r.kind !== 'forward') return;
  t.equal(r.request.question.name, 'example.com', 'the target is asked upstream');
  const bytes = forwardedResponse(r.request, { rcode: 'NOERROR', answers: [{ type: 'A', name: 'example.com', ttl: 60, data: '192.0.2.1' }], authorities: [], additionals: [] });
  const p = decode(bytes);
  t.equal(p.questions?.[0].name, 'ext.default.svc.cluster.local', "the client's question echoed");
  t.same(datas(p), ['example.com', '192.0.2.1'], 'CNAME then the upstream answer');
  const noRd = answer('ext.default.svc.cluster.local', 'A', { rd: false });
  t.same(datas(noRd), ['example.com'], 'no recursion desired: the CNAME alone');
});

t.test('case-insensitive, the question echoed as asked', async (t) => {
  const a = answer('WeB.DeFault.SVC.Cluster.Local.', 'A');
  t.same(datas(a), ['10.96.0.20']);
  t.equal(a.questions?.[0].name, 'WeB.DeFault.SVC.Cluster.Local');
  t.equal(a.answers?.[0].name, 'WeB.DeFault.SVC.Cluster.Local');
});

t.test('NXDOMAIN and NODATA carry the SOA', async (t) => {
  for (const [name, type, rcode, why] of [
    ['nope.default.svc.cluster.local', 'A', 'NXDOMAIN', 'unknown service'],
    ['empty.data.svc.cluster.local', 'A', 'NXDOMAIN', 'headless without ready endpoints'],
    ['x.y.z.cluster.local', 'A', 'NXDOMAIN', 'unknown name in the zone'],
    ['web.default.svc.cluster.local', 'TXT', 'NOERROR', 'exists without TXT'],
    ['web.default.svc.cluster.local', 'MX', 'NOERROR', 'exists without MX'],
    ['default.svc.cluster.local', 'A', 'NOERROR', 'empty non-terminal (namespace)'],
    ['10-244-1-5.default.pod.cluster.local', 'AAAA', 'NOERROR', 'v4 pod asked AAAA'],
  ] as const) {
    const p = answer(name, type);
    t.equal(p.rcode, rcode, why);
    t.equal(p.answers?.length, 0, `${why}: no answer`);
    t.equal(p.authorities?.[0]?.type, 'SOA', `${why}: SOA in authority`);
    const soa = p.authorities?.[0];
    if (soa?.type === 'SOA') t.same([soa.ttl, soa.data.minimum], [1, 1], `${why}: negative answers cacheable 1 s (SOA TTL and minimum), not the 5 s TTL`);
  }
});

t.test('UDP sizes: 512 without EDNS, the advertised size capped by ours, TC when it does not fit', async (t) => {
  const plain = answer('big.data.svc.cluster.local', 'A');
  t.ok(plain.flag_tc, '40 A records do not fit 512 bytes: TC');
  t.equal(plain.answers?.length, 0, 'truncated: no partial answer');
  t.ok(plain.size <= 512);
  const edns = answer('big.data.svc.cluster.local', 'A', { edns: 4096 });
  t.notOk(edns.flag_tc, 'EDNS 4096 → capped at 1232, which 40 A records fit');
  t.equal(edns.answers?.length, 40);
  t.ok(edns.size <= 1232 && edns.size > 512, `${edns.size} bytes`);
  t.equal(edns.additionals?.find((r) => r.type === 'OPT')?.type, 'OPT', 'OPT echoed');
  const small = answer('big.data.svc.cluster.local', 'A', { edns: 100 });
  t.ok(small.flag_tc && small.size <= 512, 'an advertised size below 512 counts as 512');
  t.ok(answer('_http._tcp.big.data.svc.cluster.local', 'SRV', { edns: 1232 }).flag_tc, 'SRV with 40 targets does not fit 1232: TC');
  const wide = handleQuery(query('_http._tcp.big.data.svc.cluster.local', 'SRV', { edns: 4096 }), 'udp', index, { maxUdpSize: 4096, forwarding: true });
  const srv = wide.kind === 'answer' ? decode(wide.bytes) : undefined;
  t.notOk(srv?.flag_tc, 'our size 4096: 40 SRV fit without their glue …');
  t.same([srv?.answers?.length, srv?.additionals?.filter((r) => r.type !== 'OPT').length], [40, 0], '… which is left out (no TC for glue)');
  const tcp = answer('_http._tcp.big.data.svc.cluster.local', 'SRV', {}, 'tcp');
  t.notOk(tcp.flag_tc);
  t.equal(tcp.answers?.length, 40, 'TCP: all of them');
  t.equal(tcp.additionals?.length, 40, 'TCP: glue too');
});

t.test('rcodes: FORMERR, NOTIMP, REFUSED, BADVERS; drops', async (t) => {
  const two = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'a.cluster.local', type: 'A' }, { name: 'b.cluster.local', type: 'A' }] });
  t.equal(decode((handleQuery(two, 'udp', index) as { bytes: Buffer }).bytes).rcode, 'FORMERR', 'two questions');
  const none = dnsPacket.encode({ type: 'query', id: 7, questions: [] });
  t.equal(decode((handleQuery(none, 'udp', index) as { bytes: Buffer }).bytes).rcode, 'FORMERR', 'no question');
  const cut = query('web.default.svc.cluster.local', 'A').subarray(0, 20);
  const formerr = decode((handleQuery(cut, 'udp', index) as { bytes: Buffer }).bytes);
  t.equal(formerr.rcode, 'FORMERR', 'cut short');
  t.equal(formerr.id, 4242, 'the id echoed');
  t.equal(answer('web.default.svc.cluster.local', 'A', { opcode: 2 }).rcode, 'NOTIMP', 'STATUS opcode');
  t.equal(answer('web.default.svc.cluster.local', 'A', { opcode: 5 }).rcode, 'NOTIMP', 'UPDATE opcode');
  t.equal(answer('cluster.local', 'AXFR', {}, 'tcp').rcode, 'REFUSED', 'AXFR');
  t.equal(answer('cluster.local', 'IXFR').rcode, 'REFUSED', 'IXFR');
  t.equal(answer('version.bind', 'TXT', { class: 'CH' }).rcode, 'REFUSED', 'CHAOS class');
  t.equal(answer('example.com', 'A', { rd: false }).rcode, 'REFUSED', 'outside the zone without RD');
  t.equal(handleQuery(query('example.com', 'A'), 'udp', index, { maxUdpSize: 1232, forwarding: false }).kind, 'answer', 'no upstreams: answered…');
  t.equal(decode((handleQuery(query('example.com', 'A'), 'udp', index, { maxUdpSize: 1232, forwarding: false }) as { bytes: Buffer }).bytes).rcode, 'REFUSED', '…REFUSED');
  const badvers = answer('web.default.svc.cluster.local', 'A', { edns: 1232, ednsVersion: 1 });
  t.equal(badvers.rcode, 'NOERROR', 'BADVERS: header rcode 0 …');
  t.equal((badvers.additionals?.find((r) => r.type === 'OPT') as { extendedRcode?: number })?.extendedRcode, 1, '… extended rcode 1 (16 = BADVERS)');
  const dotted = Buffer.concat([Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('a.b'), Buffer.from([7]), Buffer.from('cluster'), Buffer.from([5]), Buffer.from('local'), Buffer.from([0, 0, 1, 0, 1])]);
  t.equal(decode((handleQuery(dotted, 'udp', index) as { bytes: Buffer }).bytes).rcode, 'FORMERR', "a label with a '.' byte in it");
  t.equal(handleQuery(Buffer.alloc(11), 'udp', index).kind, 'drop', 'shorter than a header');
  const response = Buffer.from(query('web.default.svc.cluster.local', 'A'));
  response[2] |= 0x80;
  t.equal(handleQuery(response, 'udp', index).kind, 'drop', 'a response is never answered');
});

t.test('outside the zone with RD: a forward decision; SERVFAIL when it fails', async (t) => {
  const r: HandlerResult = handleQuery(query('Example.COM', 'AAAA', { edns: 1232, id: 99 }), 'udp', index);
  t.equal(r.kind, 'forward');
  if (r.kind !== 'forward') return;
  t.same([r.request.id, r.request.question.name, r.request.edns, r.request.limit], [99, 'Example.COM', true, 1232]);
  const failed = decode(forwardedResponse(r.request, undefined));
  t.equal(failed.rcode, 'SERVFAIL');
  t.equal(failed.id, 99);
  t.notOk(failed.flag_aa, 'not authoritative');
  const nx = decode(forwardedResponse(r.request, { rcode: 'NXDOMAIN', answers: [], authorities: [{ type: 'SOA', name: 'com', ttl: 900, data: { mname: 'a', rname: 'b', minimum: 900 } }], additionals: [] }));
  t.same([nx.rcode, nx.authorities?.[0].type], ['NXDOMAIN', 'SOA']);
});
