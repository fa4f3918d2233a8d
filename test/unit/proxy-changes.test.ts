import t from 'tap';
import type { EndpointSubset, Endpoints, Service, ServicePort } from '../../src/api/objects.js';
import { ProxyChangeTracker } from '../../src/proxy/changes.js';
import { buildProxyInput } from '../../src/proxy/model.js';

function service(name: string, ports: ServicePort[], spec: Partial<Service['spec']> = {}, ns = 'default'): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { clusterIP: '10.96.0.10', ports, ...spec } };
}

function endpoints(name: string, ips: string[], ports: EndpointSubset['ports'], notReady: string[] = [], ns = 'default'): Endpoints {
  const subset: EndpointSubset = { ports };
  if (ips.length) subset.addresses = ips.map((ip) => ({ ip, nodeName: ip.startsWith('10.244.1.') ? 'node-1' : 'node-2' }));
  if (notReady.length) subset.notReadyAddresses = notReady.map((ip) => ({ ip }));
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns }, subsets: [subset] };
}

const web = (spec: Partial<Service['spec']> = {}) => service('web', [{ name: 'http', port: 80 }, { name: 'https', port: 443 }], spec);
const dns = (spec: Partial<Service['spec']> = {}) => service('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }], { clusterIP: '10.96.0.53', ...spec }, 'kube-system');
const dnsPorts = [{ name: 'dns', port: 53, protocol: 'UDP' as const }, { name: 'dns-tcp', port: 53, protocol: 'TCP' as const }];
const node = { ips: ['192.168.0.1'], clusterCidrs: ['10.244.0.0/16'] };
const keys = (s: Set<string>): string[] => [...s].sort();

function seeded(): ProxyChangeTracker {
  const tracker = new ProxyChangeTracker('node-1', node);
  tracker.setService(web());
  tracker.setService(dns());
  tracker.setEndpoints(endpoints('web', ['10.244.1.2', '10.244.2.2'], [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }]));
  tracker.setEndpoints(endpoints('dns', ['10.244.1.5', '10.244.2.5'], dnsPorts, [], 'kube-system'));
  return tracker;
}

t.test('first sync is full; commit clears', async (t) => {
  const tracker = seeded();
  const first = tracker.pending();
  t.equal(first.full, true, 'nothing committed yet: full');
  t.same(keys(first.changedKeys), ['default/web:http/TCP', 'default/web:https/TCP', 'kube-system/dns:dns-tcp/TCP', 'kube-system/dns:dns/UDP']);
  tracker.commit();
  t.same(tracker.pending(), { changedKeys: new Set(), full: false });
  t.same(tracker.removedUdpEndpoints(), []);
});

t.test('a service change marks only its own keys', async (t) => {
  const tracker = seeded();
  tracker.commit();
  tracker.setService(web({ sessionAffinity: 'ClientIP' }));
  t.same(keys(tracker.pending().changedKeys), ['default/web:http/TCP', 'default/web:https/TCP']);
  tracker.commit();
  tracker.setService(service('web', [{ name: 'http', port: 80 }, { name: 'https', port: 8443 }], { sessionAffinity: 'ClientIP' }));
  t.same(keys(tracker.pending().changedKeys), ['default/web:https/TCP'], 'one port modified: the other port is untouched');
  tracker.commit();
  tracker.setService(service('web', [{ name: 'http', port: 80 }, { name: 'metrics', port: 9100 }], { sessionAffinity: 'ClientIP' }));
  t.same(keys(tracker.pending().changedKeys), ['default/web:https/TCP', 'default/web:metrics/TCP'], 'port removed and port added');
  tracker.commit();
  tracker.setService(service('web', [{ name: 'http', port: 80 }, { name: 'metrics', port: 9100 }], { sessionAffinity: 'ClientIP' }));
  t.same(tracker.pending().changedKeys, new Set(), 'an identical replay (resync) is no change');
});

t.test('endpoints changes', async (t) => {
  const tracker = seeded();
  tracker.commit();
  tracker.setEndpoints(endpoints('web', ['10.244.1.2', '10.244.2.2', '10.244.2.3'], [{ name: 'http', port: 8080 }]));
  t.same(keys(tracker.pending().changedKeys), ['default/web:http/TCP', 'default/web:https/TCP'], 'endpoint added to http; https lost its port');
  tracker.commit();
  tracker.setEndpoints(endpoints('web', ['10.244.1.2', '10.244.2.2'], [{ name: 'http', port: 8080 }], ['10.244.2.9']));
  t.same(keys(tracker.pending().changedKeys), ['default/web:http/TCP'], 'an endpoint removed');
  tracker.commit();
  tracker.setEndpoints(endpoints('web', ['10.244.1.2', '10.244.2.2'], [{ name: 'http', port: 8080 }]));
  t.same(tracker.pending().changedKeys, new Set(), 'a not-ready address going away changes no rule');
  tracker.deleteEndpoints('default', 'web');
  t.same(keys(tracker.pending().changedKeys), ['default/web:http/TCP'], 'Endpoints deleted');
  t.same(tracker.input().ports.find((p) => p.svc.key === 'default/web:http/TCP')?.allEndpoints, [], 'no endpoints left');
  tracker.commit();
  tracker.setEndpoints(endpoints('orphan', ['10.244.1.9'], [{ port: 80 }]));
  t.same(tracker.pending().changedKeys, new Set(), 'Endpoints without a Service: no keys');
  tracker.setService(service('orphan', [{ port: 80 }], { clusterIP: '10.96.0.99' }));
  t.same(keys(tracker.pending().changedKeys), ['default/orphan:/TCP'], 'its Service arrives: the stored Endpoints are used');
  t.equal(tracker.input().ports.find((p) => p.svc.key === 'default/orphan:/TCP')?.allEndpoints.length, 1);
});

t.test('deleted service', async (t) => {
  const tracker = seeded();
  tracker.commit();
  tracker.deleteService('kube-system', 'dns');
  t.same(keys(tracker.pending().changedKeys), ['kube-system/dns:dns-tcp/TCP', 'kube-system/dns:dns/UDP']);
  t.same(tracker.input().ports.map((p) => p.svc.key), ['default/web:http/TCP', 'default/web:https/TCP']);
  tracker.deleteService('kube-system', 'nope');
  t.equal(tracker.pending().changedKeys.size, 2, 'deleting an unknown service changes nothing');
  tracker.setService(dns());
  t.same(tracker.pending().changedKeys, new Set(), 'deleted and re-added unchanged before a sync: nothing to do');
  tracker.setService(dns({ clusterIP: 'None' }));
  t.equal(tracker.pending().changedKeys.size, 2, 'turned headless: its ports go');
});

t.test('removed UDP endpoints and newly active UDP ports', async (t) => {
  const tracker = seeded();
  tracker.commit();
  tracker.setEndpoints(endpoints('dns', ['10.244.2.5'], dnsPorts, ['10.244.1.5'], 'kube-system'));
  t.same(tracker.removedUdpEndpoints(), [
    { key: 'kube-system/dns:dns/UDP', clusterIPs: ['10.96.0.53'], externalIPs: [], loadBalancerIPs: [], endpointIp: '10.244.1.5', endpointPort: 53 },
  ], 'went not ready: reported for the UDP port only, not the TCP one');
  tracker.commit();
  t.same(tracker.removedUdpEndpoints(), [], 'cleared by commit');
  tracker.setService(dns({ type: 'NodePort', ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] }));
  tracker.commit();
  tracker.deleteService('kube-system', 'dns');
  t.same(tracker.removedUdpEndpoints(), [
    { key: 'kube-system/dns:dns/UDP', clusterIPs: ['10.96.0.53'], nodePort: 30053, externalIPs: [], loadBalancerIPs: [], endpointIp: '10.244.2.5', endpointPort: 53 },
  ], 'service deleted: its endpoints reported with the committed addresses');
  tracker.setService(dns());
  tracker.commit();
  tracker.deleteEndpoints('kube-system', 'dns');
  tracker.commit();
  t.same(tracker.newlyActiveUdpKeys(), []);
  tracker.setEndpoints(endpoints('dns', ['10.244.2.7'], dnsPorts, [], 'kube-system'));
  t.same(tracker.newlyActiveUdpKeys(), ['kube-system/dns:dns/UDP'], 'from no endpoints to some');
  t.same(tracker.removedUdpEndpoints(), []);
});

t.test('node addresses: a change means full', async (t) => {
  const tracker = seeded();
  tracker.commit();
  t.equal(tracker.setNode({ ips: ['192.168.0.1'], clusterCidrs: ['10.244.0.0/16'] }), false, 'same addresses: setNode says unchanged');
  t.equal(tracker.pending().full, false, 'same addresses');
  t.equal(tracker.setNode({ ips: ['192.168.0.1', '192.168.0.2'], clusterCidrs: ['10.244.0.0/16'] }), true, 'setNode says changed');
  t.same(tracker.pending(), { changedKeys: new Set(), full: true }, 'node IP added');
  t.same(tracker.input().nodeIPs, ['192.168.0.1', '192.168.0.2']);
  tracker.commit();
  tracker.setNode({ ips: ['192.168.0.1', '192.168.0.2'], clusterCidrs: ['10.244.0.0/15'] });
  t.equal(tracker.stats().full, true, 'cluster CIDR changed');
});

t.test('input() equals buildProxyInput over the same objects', async (t) => {
  const tracker = seeded();
  tracker.setService(service('local', [{ port: 80 }], { clusterIP: '10.96.0.7', internalTrafficPolicy: 'Local' }));
  tracker.setEndpoints(endpoints('local', ['10.244.1.7', '10.244.2.7'], [{ port: 80 }]));
  const want = buildProxyInput(
    [service('local', [{ port: 80 }], { clusterIP: '10.96.0.7', internalTrafficPolicy: 'Local' }), dns(), web()],
    [endpoints('local', ['10.244.1.7', '10.244.2.7'], [{ port: 80 }]), endpoints('web', ['10.244.1.2', '10.244.2.2'], [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }]),
      endpoints('dns', ['10.244.1.5', '10.244.2.5'], dnsPorts, [], 'kube-system')],
    { name: 'node-1', ...node },
  );
  t.same(tracker.input(), want);
});

t.test('10,000 services, then one change: one key, one service port computed', async (t) => {
  const tracker = new ProxyChangeTracker('node-1', node);
  for (let i = 0; i < 10_000; i++) {
    const name = `svc-${i}`;
    tracker.setService(service(name, [{ name: 'http', port: 80 }], { clusterIP: `10.96.${i >> 8}.${i & 255}` }));
    tracker.setEndpoints(endpoints(name, [`10.244.${(i >> 8) & 1 ? 1 : 2}.${i & 255}`], [{ name: 'http', port: 8080 }]));
  }
  t.equal(tracker.pending().changedKeys.size, 10_000);
  tracker.commit();
  tracker.setEndpoints(endpoints('svc-4242', ['10.244.1.1', '10.244.2.2'], [{ name: 'http', port: 8080 }]));
  const pending = tracker.pending();
  t.same(keys(pending.changedKeys), ['default/svc-4242:http/TCP']);
  t.equal(pending.full, false);
  const stats = tracker.stats();
  t.same({ touched: stats.touchedKeys, computed: stats.portsComputed }, { touched: 1, computed: 1 }, 'the update did work for one key only');
  t.same({ services: stats.services, endpoints: stats.endpoints, ports: stats.servicePorts }, { services: 10_000, endpoints: 10_000, ports: 10_000 });
  t.equal(tracker.input().ports.length, 10_000);
});
