// The cluster DNS Service kube-system/kube-dns: made by the control plane at start (again when
// missing, e.g. a data dir of an older release), at the cluster config's clusterDNS, which no other
// Service gets; the cluster config that agents read carries clusterDNS and clusterDomain.
import t from 'tap';
import { testServer, service } from '../lib/controlplane.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { clusterDnsServiceBody } from '../../src/controlplane/api/cluster-dns.js';
import { CONFIG_KEY, SERVICE_IP_KEY } from '../../src/controlplane/api/allocations.js';

t.test('the Service as created (pure)', async (t) => {
  t.same(clusterDnsServiceBody({ clusterDNS: '10.96.0.10' }), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' } },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 }] },
  });
});

t.test('created at start at 10.96.0.10; the cluster config carries clusterDNS and clusterDomain', async (t) => {
  const s = await testServer({ clusterDnsService: true });
  t.teardown(() => s.close());
  const svc = await s.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns');
  t.equal(svc.statusCode, 200, svc.body);
  t.match(svc.json, { metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'] } });
  t.same(svc.json.spec.ports.map((p: { name: string; port: number; protocol: string }) => `${p.name} ${p.port}/${p.protocol}`), ['dns 53/UDP', 'dns-tcp 53/TCP']);
  t.equal(svc.json.spec.selector, undefined, 'no selector: the DNS server\'s endpoints come later');
  const config = await s.call('GET', '/api/v1/clusterconfig');
  t.match(config.json.spec, { clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' });
  // A node token reads it too (what the agent does at registration).
  const token = await s.nodeToken('n1');
  t.match((await s.call('GET', '/api/v1/clusterconfig', undefined, token)).json.spec, { clusterDNS: '10.96.0.10' });

  const take = await s.call('POST', '/api/v1/namespaces/default/services', service('thief', { clusterIP: '10.96.0.10' }));
  t.equal(take.statusCode, 400);
  t.match(take.json.details.causes, [{ field: 'spec.clusterIP', message: /reserved for the cluster DNS Service kube-system\/kube-dns/ }]);
  const created: string[] = [];
  for (let i = 0; i < 10; i++) created.push((await s.call('POST', '/api/v1/namespaces/default/services', service(`s${i}`))).json.spec.clusterIP);
  t.same(created, ['10.96.0.2', '10.96.0.3', '10.96.0.4', '10.96.0.5', '10.96.0.6', '10.96.0.7', '10.96.0.8', '10.96.0.9', '10.96.0.11', '10.96.0.12'], 'dynamic allocation passes over .10');

  // Deleted: its address stays reserved; the next start creates it again, at the same address.
  t.equal((await s.call('DELETE', '/api/v1/namespaces/kube-system/services/kube-dns')).statusCode, 200);
  t.notOk((await s.call('POST', '/api/v1/namespaces/default/services', service('after'))).json.spec.clusterIP === '10.96.0.10');
  const again = await testServer({ store: s.store, clusterDnsService: true });
  t.teardown(() => again.app.close());
  t.equal((await again.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.spec.clusterIP, '10.96.0.10', 'recreated at the next start');
  // Idempotent: another start changes nothing.
  const before = (await again.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.metadata.resourceVersion;
  const third = await testServer({ store: s.store, clusterDnsService: true });
  t.teardown(() => third.app.close());
  t.equal((await third.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.metadata.resourceVersion, before);
  t.same((await third.call('GET', '/api/v1/namespaces/kube-system/services')).json.items.map((x: { metadata: { name: string } }) => x.metadata.name), ['kube-dns']);
});

t.test('another service CIDR: the 10th address, or --cluster-dns', async (t) => {
  const s = await testServer({ clusterDnsService: true, clusterConfig: { serviceCIDR: '10.100.0.0/16', clusterDomain: 'corp.example' } });
  t.teardown(() => s.close());
  t.equal((await s.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.spec.clusterIP, '10.100.0.10');
  t.match((await s.call('GET', '/api/v1/clusterconfig')).json.spec, { serviceCIDR: '10.100.0.0/16', clusterDNS: '10.100.0.10', clusterDomain: 'corp.example' });
  const chosen = await testServer({ clusterDnsService: true, clusterConfig: { clusterDNS: '10.96.0.53' } });
  t.teardown(() => chosen.close());
  t.equal((await chosen.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.spec.clusterIP, '10.96.0.53');
});

t.test('PUT clusterconfig: clusterDNS cannot move under the Service, nor onto another Service\'s IP', async (t) => {
  const s = await testServer({ clusterDnsService: true });
  t.teardown(() => s.close());
  const web = (await s.call('POST', '/api/v1/namespaces/default/services', service('web'))).json.spec.clusterIP;
  const config = (await s.call('GET', '/api/v1/clusterconfig')).json;
  const put = (spec: Record<string, unknown>) => s.call('PUT', '/api/v1/clusterconfig', { ...config, metadata: { name: 'cluster' }, spec: { ...config.spec, ...spec } });
  const moved = await put({ clusterDNS: '10.96.0.53' });
  t.equal(moved.statusCode, 400);
  t.match(moved.json.details.causes, [{ field: 'spec.clusterDNS', message: /kube-system\/kube-dns has ClusterIP 10\.96\.0\.10, which cannot change; delete that Service first/ }]);
  t.equal((await put({ backend: 'host-gw' })).statusCode, 200, 'other changes are fine');
  t.equal((await put({ clusterDomain: 'Bad_Domain' })).statusCode, 400);
  t.equal((await s.call('DELETE', '/api/v1/namespaces/kube-system/services/kube-dns')).statusCode, 200);
  const onto = await put({ clusterDNS: web });
  t.equal(onto.statusCode, 400);
  t.match(onto.json.details.causes, [{ field: 'spec.clusterDNS', message: /already the ClusterIP of another Service/ }]);
  const ok = await put({ clusterDNS: '10.96.0.53' });
  t.equal(ok.statusCode, 200, ok.body);
  const restarted = await testServer({ store: s.store, clusterDnsService: true });
  t.teardown(() => restarted.app.close());
  t.equal((await restarted.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).json.spec.clusterIP, '10.96.0.53', 'recreated at the new address');
});

t.test('a data dir of an older release: config without clusterDNS; a Service already on .10 is reported, not fatal', async (t) => {
  const store = new MemoryStore();
  await store.create(CONFIG_KEY, { apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { name: 'cluster' }, spec: { clusterCIDR: '10.244.0.0/16', nodeMask: 24, serviceCIDR: '10.96.0.0/12', nodePortRange: '30000-32767', backend: 'vxlan', vni: 1, vxlanPort: 8472 } });
  const old = await testServer({ store });
  const held = await old.call('POST', '/api/v1/namespaces/default/services', service('legacy', { clusterIP: '10.96.0.10' }));
  // An older release had no reservation: write the allocation as it would have.
  t.equal(held.statusCode, 400, 'this release refuses it even without the Service');
  await old.app.close();
  const bits = await store.get<{ taken: string }>(SERVICE_IP_KEY);
  t.notOk(bits, 'nothing allocated yet');
  const { allocateServiceIp, emptyServiceIpState, parseServiceIpConfig } = await import('../../src/controlplane/alloc/service-ip.js');
  const layout = parseServiceIpConfig();
  await store.create(SERVICE_IP_KEY, allocateServiceIp(layout, emptyServiceIpState(layout), '10.96.0.10').state);
  await store.create('/services/default/legacy', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'legacy', namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }] } });
  const logs: string[] = [];
  const s = await testServer({ store, clusterDnsService: true, logger: { level: 'warn', stream: { write: (line: string) => void logs.push(line) } } as never });
  t.teardown(() => s.close());
  t.equal((await s.call('GET', '/readyz')).statusCode, 200, 'the control plane serves');
  t.equal((await s.call('GET', '/api/v1/namespaces/kube-system/services/kube-dns')).statusCode, 404);
  t.match(logs.join(''), /cannot create the cluster DNS Service kube-system\/kube-dns at 10\.96\.0\.10: .*already allocated.*free that address .* or set another spec\.clusterDNS/);
  t.match((await s.call('GET', '/api/v1/clusterconfig')).json.spec, { clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' }, 'the stored config gets the defaults');
});
