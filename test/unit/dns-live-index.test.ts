// The change-by-change DNS index (src/dns/live-index.ts): after every one of a few thousand random
// set/delete operations on services, endpoints and pods it holds exactly what a full rebuild
// (buildDnsIndex) of the same objects holds; and one change at 10,000 services costs microseconds.
import t from 'tap';
import fc from 'fast-check';
import type { Endpoints, Pod, Service } from '../../src/api/objects.js';
import { LiveDnsIndex } from '../../src/dns/live-index.js';
import { buildDnsIndex, type DnsIndex } from '../../src/dns/records.js';
import { endpoints, headlessEndpoints, pod, service } from '../lib/dns-fixtures.js';

const names = ['a', 'b', 'c', 'd'];
const namespaces = ['x', 'y'];
const svcArb = fc.record({
  name: fc.constantFrom(...names),
  ns: fc.constantFrom(...namespaces),
  kind: fc.constantFrom('clusterip', 'headless', 'headless-all', 'external'),
  ip: fc.integer({ min: 1, max: 4 }),
}).map(({ name, ns, kind, ip }): Service => {
  if (kind === 'external') return service(name, ns, { type: 'ExternalName', externalName: `${name}.example.com` });
  if (kind === 'clusterip') return service(name, ns, { clusterIP: `10.96.0.${ip}`, ports: [{ name: 'http', port: 80 }] });
  return service(name, ns, { clusterIP: 'None', ...(kind === 'headless-all' ? { publishNotReadyAddresses: true } : {}) });
});
const epArb = fc.record({ name: fc.constantFrom(...names), ns: fc.constantFrom(...namespaces), ips: fc.subarray(['10.244.1.1', '10.244.1.2', '10.244.1.3']), notReady: fc.subarray(['10.244.2.1', '10.244.1.1']), host: fc.boolean() })
  .map(({ name, ns, ips, notReady, host }): Endpoints => endpoints(name, ns, [{ addresses: ips.map((ip, i) => ({ ip, ...(host ? { hostname: `h${i}` } : {}) })), notReadyAddresses: notReady.map((ip) => ({ ip })), ports: [{ name: 'p', port: 5432 }] }]));
const podArb = fc.record({ name: fc.constantFrom('p1', 'p2', 'p3'), ns: fc.constantFrom(...namespaces), ip: fc.constantFrom('10.244.1.1', '10.244.1.2') }).map(({ name, ns, ip }) => pod(name, ns, ip));
const op = fc.oneof(
  fc.record({ kind: fc.constant('setService' as const), obj: svcArb }),
  fc.record({ kind: fc.constant('deleteService' as const), obj: svcArb }),
  fc.record({ kind: fc.constant('setEndpoints' as const), obj: epArb }),
  fc.record({ kind: fc.constant('deleteEndpoints' as const), obj: epArb }),
  fc.record({ kind: fc.constant('setPod' as const), obj: podArb }),
  fc.record({ kind: fc.constant('deletePod' as const), obj: podArb }),
);

const canonical = (index: DnsIndex) => ({
  names: [...index.names.entries()].map(([n, r]) => [n, { ...r, ptr: [...r.ptr].sort() }] as const).sort((a, b) => a[0].localeCompare(b[0])),
  podIps: [...index.podIps].sort(),
});
const key = (o: { metadata: { name: string; namespace?: string } }) => `${o.metadata.namespace}/${o.metadata.name}`;

t.test('equals a full rebuild after every change', async (t) => {
  let checked = 0;
  fc.assert(fc.property(fc.constantFrom('insecure' as const, 'verified' as const), fc.array(op, { minLength: 1, maxLength: 40 }), (mode, ops) => {
    const live = new LiveDnsIndex({ podRecords: mode }, () => 0);
    const services = new Map<string, Service>();
    const eps = new Map<string, Endpoints>();
    const pods = new Map<string, Pod>();
    for (const o of ops) {
      if (o.kind === 'setService') services.set(key(o.obj), o.obj), live.setService(o.obj);
      else if (o.kind === 'deleteService') services.delete(key(o.obj)), live.deleteService(o.obj);
      else if (o.kind === 'setEndpoints') eps.set(key(o.obj), o.obj), live.setEndpoints(o.obj);
      else if (o.kind === 'deleteEndpoints') eps.delete(key(o.obj)), live.deleteEndpoints(o.obj);
      else if (o.kind === 'setPod') pods.set(key(o.obj), o.obj), live.setPod(o.obj);
      else pods.delete(key(o.obj)), live.deletePod(o.obj);
      const full = buildDnsIndex({ services: services.values(), endpoints: eps.values(), pods: pods.values() }, { podRecords: mode }, 0);
      const got = canonical(live.snapshot());
      const want = canonical(full);
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`after ${o.kind} ${key(o.obj)}:\n live ${JSON.stringify(got)}\n full ${JSON.stringify(want)}`);
      checked++;
    }
  }), { numRuns: 300, seed: 16 });
  t.ok(checked > 1000, `${checked} states compared`);
});

t.test('the serial grows with every snapshot', async (t) => {
  const live = new LiveDnsIndex({}, () => 5000);
  const a = live.snapshot().serial;
  t.ok(live.snapshot().serial > a);
});

t.test('one change at 10,000 services', async (t) => {
  const live = new LiveDnsIndex();
  const t0 = performance.now();
  for (let i = 0; i < 10_000; i++) {
    const headless = i % 10 === 0;
    live.setService(service(`svc-${i}`, `ns-${i % 50}`, headless ? { clusterIP: 'None' } : { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80 }] }));
    if (headless) live.setEndpoints(headlessEndpoints(`svc-${i}`, `ns-${i % 50}`, 3, true, i * 5));
  }
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  for (let i = 0; i < 1000; i++) live.setEndpoints(headlessEndpoints(`svc-${(i % 1000) * 10}`, `ns-${((i % 1000) * 10) % 50}`, 1 + (i % 5), true, (i % 1000) * 50));
  const changeUs = ((performance.now() - t1) / 1000) * 1000;
  t.comment(`10,000 services loaded change by change in ${loadMs.toFixed(0)} ms; one endpoints change ${changeUs.toFixed(1)} µs`);
  t.ok(changeUs < 2000, 'a change costs far less than a rebuild (~100-200 ms)');
  t.equal(live.snapshot().names.size > 40_000, true);
});
