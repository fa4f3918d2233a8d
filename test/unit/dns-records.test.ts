// The DNS record index (src/dns/records.ts): every record kind of the Kubernetes DNS
// specification 1.1.0 as built from services, endpoints and pods, and its cost at 10,000 services.
import t from 'tap';
import { handleQuery } from '../../src/dns/handler.js';
import { buildDnsIndex, lookupName } from '../../src/dns/records.js';
import { endpoints, headlessEndpoints, pod, query, service } from '../lib/dns-fixtures.js';

const zone = 'cluster.local';
const web = service('web', 'default', { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00::20'], ports: [{ name: 'http', port: 80 }, { port: 81 }, { name: 'dns', port: 53, protocol: 'UDP' }] });

t.test('ClusterIP service: A, AAAA, SRV for named ports only, PTR', async (t) => {
  const index = buildDnsIndex({ services: [web], endpoints: [] });
  const r = lookupName(index, `web.default.svc.${zone}`);
  t.same(r?.a, ['10.96.0.20']);
  t.same(r?.aaaa, ['fd00::20']);
  t.same(lookupName(index, `_http._tcp.web.default.svc.${zone}`)?.srv, [{ priority: 0, weight: 100, port: 80, target: `web.default.svc.${zone}` }]);
  t.same(lookupName(index, `_dns._udp.web.default.svc.${zone}`)?.srv.map((s) => s.port), [53]);
  t.notOk([...index.names.keys()].some((n) => n.includes('81')), 'no SRV for the unnamed port');
  t.same(lookupName(index, '20.0.96.10.in-addr.arpa')?.ptr, [`web.default.svc.${zone}`]);
  t.same(lookupName(index, `0.2.0.0.${'0.'.repeat(24)}0.0.d.f.ip6.arpa`)?.ptr, [`web.default.svc.${zone}`]);
  t.same(lookupName(index, `default.svc.${zone}`), { a: [], aaaa: [], srv: [], ptr: [], txt: [] }, 'the namespace exists, empty');
  t.same(lookupName(index, `_tcp.web.default.svc.${zone}`)?.a, [], 'empty non-terminal of the SRV name');
  t.equal(lookupName(index, `nope.default.svc.${zone}`), undefined);
  t.same(lookupName(index, `dns-version.${zone}`)?.txt, ['1.1.0']);
});

t.test('a service without an allocated ClusterIP has no records', async (t) => {
  const index = buildDnsIndex({ services: [service('new', 'default', { clusterIP: '' })], endpoints: [] });
  t.equal(lookupName(index, `new.default.svc.${zone}`), undefined);
});

t.test('headless: ready endpoints, hostnames, generated names, SRV per endpoint × named port, PTR', async (t) => {
  const svc = service('db', 'data', { clusterIP: 'None' });
  const ep = endpoints('db', 'data', [{
    addresses: [{ ip: '10.244.1.5', hostname: 'db-0' }, { ip: '10.244.2.6' }, { ip: '10.244.2.7', hostname: 'Not_A_Label' }],
    notReadyAddresses: [{ ip: '10.244.3.9', hostname: 'db-9' }],
    ports: [{ name: 'pg', port: 5432 }, { port: 9000 }],
  }]);
  const index = buildDnsIndex({ services: [svc], endpoints: [ep] });
  const base = `db.data.svc.${zone}`;
  t.same(lookupName(index, base)?.a, ['10.244.1.5', '10.244.2.6', '10.244.2.7'], 'ready only');
  t.same(lookupName(index, `db-0.${base}`)?.a, ['10.244.1.5']);
  t.same(lookupName(index, `10-244-2-6.${base}`)?.a, ['10.244.2.6'], 'no hostname: the dashed IP');
  t.same(lookupName(index, `10-244-2-7.${base}`)?.a, ['10.244.2.7'], 'an invalid hostname: the dashed IP');
  t.equal(lookupName(index, `db-9.${base}`), undefined, 'not ready: no record');
  t.same(lookupName(index, `_pg._tcp.${base}`)?.srv.map((s) => [s.target, s.port, s.weight]), [[`db-0.${base}`, 5432, 33], [`10-244-2-6.${base}`, 5432, 33], [`10-244-2-7.${base}`, 5432, 33]]);
  t.same(lookupName(index, '5.1.244.10.in-addr.arpa')?.ptr, [`db-0.${base}`]);
  const all = buildDnsIndex({ services: [service('db', 'data', { clusterIP: 'None', publishNotReadyAddresses: true })], endpoints: [ep] });
  t.same(lookupName(all, `db-9.${base}`)?.a, ['10.244.3.9'], 'publishNotReadyAddresses: not-ready ones too');
});

t.test('headless without ready endpoints does not exist (NXDOMAIN)', async (t) => {
  const svc = service('db', 'data', { clusterIP: 'None' });
  t.equal(lookupName(buildDnsIndex({ services: [svc], endpoints: [] }), `db.data.svc.${zone}`), undefined, 'no Endpoints');
  const notReady = endpoints('db', 'data', [{ notReadyAddresses: [{ ip: '10.244.3.9' }], ports: [{ port: 1 }] }]);
  t.equal(lookupName(buildDnsIndex({ services: [svc], endpoints: [notReady] }), `db.data.svc.${zone}`), undefined, 'only not-ready ones');
});

t.test('ExternalName is a CNAME', async (t) => {
  const index = buildDnsIndex({ services: [service('ext', 'default', { type: 'ExternalName', externalName: 'Example.COM.' })], endpoints: [] });
  t.equal(lookupName(index, `ext.default.svc.${zone}`)?.cname, 'example.com');
});

t.test('pod records by mode', async (t) => {
  const pods = [pod('p', 'default', '10.244.1.5'), pod('q', 'default', 'fd00::5')];
  const name = `10-244-1-5.default.pod.${zone}`;
  const insecure = buildDnsIndex({ services: [], endpoints: [], pods });
  t.same(lookupName(insecure, name)?.a, ['10.244.1.5'], 'insecure (default)');
  t.same(lookupName(insecure, `10-0-0-1.any.pod.${zone}`)?.a, ['10.0.0.1'], 'insecure: any address');
  t.same(lookupName(insecure, `fd00--5.default.pod.${zone}`)?.aaaa, ['fd00::5'], 'IPv6 dashes');
  t.equal(lookupName(insecure, `10-0-0-999.default.pod.${zone}`), undefined, 'not an address');
  t.equal(lookupName(insecure, `010-0-0-1.default.pod.${zone}`), undefined, 'leading zeros are not guessed');
  const verified = buildDnsIndex({ services: [], endpoints: [], pods }, { podRecords: 'verified' });
  t.same(lookupName(verified, name)?.a, ['10.244.1.5'], 'verified: a pod has it');
  t.equal(lookupName(verified, `10-244-1-5.other.pod.${zone}`), undefined, 'verified: not in that namespace');
  t.equal(lookupName(verified, `10-0-0-1.default.pod.${zone}`), undefined, 'verified: no such pod');
  const disabled = buildDnsIndex({ services: [], endpoints: [], pods }, { podRecords: 'disabled' });
  t.equal(lookupName(disabled, name), undefined, 'disabled');
});

t.test('zone and TTL options', async (t) => {
  const index = buildDnsIndex({ services: [web], endpoints: [] }, { zone: 'Corp.Example.', ttl: 30 });
  t.equal(index.zone, 'corp.example');
  t.equal(index.ttl, 30);
  t.ok(lookupName(index, 'web.default.svc.corp.example'));
});

t.test('10,000 services: build time and lookup cost', async (t) => {
  const services = [];
  const eps = [];
  for (let i = 0; i < 10_000; i++) {
    const headless = i % 10 === 0;
    services.push(service(`svc-${i}`, `ns-${i % 50}`, headless ? { clusterIP: 'None' } : { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80 }] }));
    if (headless) eps.push(headlessEndpoints(`svc-${i}`, `ns-${i % 50}`, 3, true, i * 5));
  }
  const t0 = performance.now();
  const index = buildDnsIndex({ services, endpoints: eps });
  const buildMs = performance.now() - t0;
  const t1 = performance.now();
  let found = 0;
  for (let i = 0; i < 100_000; i++) if (lookupName(index, `svc-${i % 10_000}.ns-${i % 10_000 % 50}.svc.${zone}`)) found++;
  const perLookupUs = ((performance.now() - t1) / 100_000) * 1000;
  t.equal(found, 100_000);
  const queries = Array.from({ length: 1000 }, (_, i) => query(`svc-${i * 7 + 1}.ns-${(i * 7 + 1) % 50}.svc.${zone}`, 'A'));
  const t2 = performance.now();
  let answered = 0;
  for (let i = 0; i < 20_000; i++) if (handleQuery(queries[i % 1000], 'udp', index).kind === 'answer') answered++;
  const perQueryUs = ((performance.now() - t2) / 20_000) * 1000;
  t.equal(answered, 20_000);
  t.comment(`10,000 services (1,000 headless × 3 endpoints): build ${buildMs.toFixed(1)} ms, ${index.names.size} names; lookup ${perLookupUs.toFixed(2)} µs; whole query (decode, lookup, encode) ${perQueryUs.toFixed(1)} µs`);
  t.ok(buildMs < 2000, `build in ${buildMs.toFixed(0)} ms (bound 2 s on a shared machine)`);
});
