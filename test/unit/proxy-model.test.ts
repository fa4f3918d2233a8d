import t from 'tap';
import type { EndpointSubset, Endpoints, Service, ServicePort } from '../../src/api/objects.js';
import { buildProxyInput, endpointsFor, proxyEndpointsView, proxyServiceView, servicePortsOf } from '../../src/proxy/model.js';
import type { EndpointInfo, ServicePortInfo } from '../../src/proxy/types.js';

function service(ports: ServicePort[], spec: Partial<Service['spec']> = {}, name = 'web', ns?: string): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, ...(ns ? { namespace: ns } : {}) },
    spec: { clusterIP: '10.96.0.10', ports, ...spec },
  };
}

function endpoints(subsets: EndpointSubset[], name = 'web', ns = 'default'): Endpoints {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns }, subsets };
}

const http: ServicePort = { name: 'http', port: 80, targetPort: 8080 };

const base: ServicePortInfo = {
  key: 'default/web:http/TCP',
  namespace: 'default',
  name: 'web',
  portName: 'http',
  protocol: 'TCP',
  type: 'ClusterIP',
  clusterIPs: ['10.96.0.10'],
  port: 80,
  externalIPs: [],
  loadBalancerIPs: [],
  externalPolicyLocal: false,
  internalPolicyLocal: false,
};

t.test('servicePortsOf: each service type', async (t) => {
  t.same(servicePortsOf(service([http])), [base], 'ClusterIP');
  t.same(servicePortsOf(service([{ ...http, nodePort: 30080 }], { type: 'NodePort' })), [{ ...base, type: 'NodePort', nodePort: 30080 }], 'NodePort');
  t.same(servicePortsOf(service([{ ...http, nodePort: 30080 }])), [base], 'a NodePort left on a ClusterIP service is ignored');
  t.same(servicePortsOf(service([http], { type: 'NodePort' })), [{ ...base, type: 'NodePort' }], 'NodePort not yet allocated: absent');
  const lb = service([{ ...http, nodePort: 30080 }], { type: 'LoadBalancer', loadBalancerIP: '192.0.2.9' });
  t.same(servicePortsOf(lb)[0].loadBalancerIPs, ['192.0.2.9'], 'LB: spec.loadBalancerIP when no status');
  lb.status = { loadBalancer: { ingress: [{ hostname: 'lb.example' }, { ip: '192.0.2.1' }, { ip: '2001:db8::1' }] } };
  t.same(servicePortsOf(lb), [{ ...base, type: 'LoadBalancer', nodePort: 30080, loadBalancerIPs: ['192.0.2.1', '2001:db8::1'] }], 'LB: status ingress IPs win, hostnames skipped');
  const stale = service([http], { loadBalancerIP: '192.0.2.9' });
  stale.status = { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } };
  t.same(servicePortsOf(stale)[0].loadBalancerIPs, [], 'LB addresses only for type LoadBalancer');
  t.same(servicePortsOf(service([http], { type: 'ExternalName', externalName: 'example.com', clusterIP: undefined })), [], 'ExternalName: none');
  t.same(servicePortsOf(service([http], { clusterIP: 'None' })), [], 'headless: none');
  t.same(servicePortsOf(service([http], { clusterIP: '' })), [], 'ClusterIP not allocated yet: none');
  t.same(servicePortsOf(service([http], { clusterIPs: ['10.96.0.10', 'fd00::10'] }))[0].clusterIPs, ['10.96.0.10', 'fd00::10'], 'dual-stack clusterIPs');
  t.same(servicePortsOf(service([], {})), [], 'no ports');
});

t.test('servicePortsOf: policies, affinity, external IPs', async (t) => {
  const one = (spec: Partial<Service['spec']>): ServicePortInfo => servicePortsOf(service([http], spec))[0];
  t.same(one({ sessionAffinity: 'ClientIP' }).sessionAffinity, { timeoutSeconds: 10800 }, 'ClientIP default timeout');
  t.same(one({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }).sessionAffinity, { timeoutSeconds: 60 });
  t.notOk('sessionAffinity' in one({ sessionAffinity: 'None', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), 'None: absent');
  t.equal(one({ externalTrafficPolicy: 'Local' }).externalPolicyLocal, false, 'Local on a ClusterIP service without external IPs means nothing');
  t.equal(one({ externalTrafficPolicy: 'Local', type: 'NodePort' }).externalPolicyLocal, true, 'NodePort');
  t.equal(one({ externalTrafficPolicy: 'Local', type: 'LoadBalancer' }).externalPolicyLocal, true, 'LoadBalancer');
  const ext = one({ externalTrafficPolicy: 'Local', externalIPs: ['198.51.100.7'] });
  t.same([ext.externalPolicyLocal, ext.externalIPs], [true, ['198.51.100.7']], 'external IPs');
  t.equal(one({ internalTrafficPolicy: 'Local' }).internalPolicyLocal, true);
  t.equal(one({ internalTrafficPolicy: 'Cluster' }).internalPolicyLocal, false);
});

t.test('servicePortsOf: named and unnamed ports, keys', async (t) => {
  t.same(servicePortsOf(service([{ port: 53, protocol: 'UDP' }], {}, 'dns', 'kube-system')).map((p) => [p.key, p.portName, p.protocol]),
    [['kube-system/dns:/UDP', '', 'UDP']], 'unnamed port');
  const multi = service([{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }, { name: 'dns', port: 54, protocol: 'UDP' }], {}, 'dns');
  t.same(servicePortsOf(multi).map((p) => [p.key, p.port]), [['default/dns:dns/UDP', 53], ['default/dns:dns-tcp/TCP', 53]], 'spec order; a repeated name+protocol keeps the first');
});

const sub = (addresses: [string, string?][], notReady: [string, string?][], ports: EndpointSubset['ports']): EndpointSubset => ({
  ...(addresses.length ? { addresses: addresses.map(([ip, nodeName]) => ({ ip, ...(nodeName ? { nodeName } : {}) })) } : {}),
  ...(notReady.length ? { notReadyAddresses: notReady.map(([ip, nodeName]) => ({ ip, ...(nodeName ? { nodeName } : {}) })) } : {}),
  ports,
});

const ep = (ip: string, port: number, o: Partial<EndpointInfo> = {}): EndpointInfo => ({
  ip, port, ...(o.nodeName ? { nodeName: o.nodeName } : {}), isLocal: o.isLocal ?? false, ready: o.ready ?? true, serving: o.serving ?? o.ready ?? true, terminating: false,
});

t.test('endpointsFor: match by port name and protocol; ready, not ready; local', async (t) => {
  const eps = endpoints([
    sub([['10.244.1.2', 'node-1'], ['10.244.2.2', 'node-2']], [['10.244.1.3', 'node-1']], [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }]),
    sub([['10.244.3.2']], [], [{ name: 'http', port: 9090, protocol: 'UDP' }, { name: 'metrics', port: 9100 }]),
  ]);
  t.same(endpointsFor(base, eps, 'node-1'), [
    ep('10.244.1.2', 8080, { nodeName: 'node-1', isLocal: true }),
    ep('10.244.1.3', 8080, { nodeName: 'node-1', isLocal: true, ready: false }),
    ep('10.244.2.2', 8080, { nodeName: 'node-2' }),
  ], 'http/TCP only: not the UDP port of the same name');
  t.same(endpointsFor({ ...base, protocol: 'UDP' }, eps, 'node-9').map((e) => [e.ip, e.port]), [['10.244.3.2', 9090]], 'http/UDP');
  t.same(endpointsFor({ ...base, portName: 'metrics' }, eps, 'node-1'), [ep('10.244.3.2', 9100)], 'protocol defaults to TCP; no nodeName: remote');
  t.same(endpointsFor({ ...base, portName: 'nope' }, eps, 'node-1'), [], 'no such port');
  t.same(endpointsFor(base, undefined, 'node-1'), [], 'no Endpoints object');
  t.same(endpointsFor(base, endpoints([sub([['10.244.1.2']], [], undefined)]), 'node-1'), [], 'port-less subset');
  const noNode = endpoints([sub([['10.244.1.2']], [], [{ name: 'http', port: 8080 }])]);
  t.equal(endpointsFor(base, noNode, '')[0].isLocal, false, 'an address without nodeName is not local, even for an unnamed node');
  const unnamed = endpoints([sub([['10.244.1.2']], [], [{ port: 5353, protocol: 'UDP' }])], 'dns');
  t.same(endpointsFor({ ...base, name: 'dns', portName: '', protocol: 'UDP' }, unnamed, 'n').map((e) => e.port), [5353], 'unnamed ports match unnamed');
});

t.test('endpointsFor: deduplicated and sorted by IP then port', async (t) => {
  const eps = endpoints([
    sub([['10.244.0.10'], ['fd00::9'], ['10.244.0.9']], [['10.244.0.2']], [{ name: 'http', port: 8080 }]),
    sub([['10.244.0.2'], ['10.244.0.9']], [['10.244.0.10']], [{ name: 'http', port: 8080 }]),
    sub([['10.244.0.9']], [], [{ name: 'http', port: 80 }]),
  ]);
  t.same(endpointsFor(base, eps, 'n').map((e) => [e.ip, e.port, e.ready]), [
    ['10.244.0.2', 8080, true], ['10.244.0.9', 80, true], ['10.244.0.9', 8080, true], ['10.244.0.10', 8080, true], ['fd00::9', 8080, true],
  ], 'ready wins over not ready; numeric IP order; IPv4 before IPv6');
});

t.test('buildProxyInput: sorted, deterministic, topology applied', async (t) => {
  const services = [
    service([http, { name: 'admin', port: 81 }], { internalTrafficPolicy: 'Local' }),
    service([{ port: 53, protocol: 'UDP' }], {}, 'dns', 'kube-system'),
    service([http], { clusterIP: 'None' }, 'headless'),
  ];
  const eps = [
    endpoints([sub([['10.244.1.2', 'node-1'], ['10.244.2.2', 'node-2']], [], [{ name: 'http', port: 8080, protocol: 'TCP' }])]),
    endpoints([sub([['10.244.2.5', 'node-2']], [], [{ port: 53, protocol: 'UDP' }])], 'dns', 'kube-system'),
    endpoints([sub([['10.244.9.9']], [], [{ name: 'http', port: 80 }])], 'orphan'),
  ];
  const node = { name: 'node-1', ips: ['192.168.0.1'], clusterCidrs: ['10.244.0.0/16'] };
  const input = buildProxyInput(services, eps, node);
  t.same(input.ports.map((p) => p.svc.key), ['default/web:admin/TCP', 'default/web:http/TCP', 'kube-system/dns:/UDP']);
  t.same([input.nodeName, input.nodeIPs, input.clusterCidrs], ['node-1', ['192.168.0.1'], ['10.244.0.0/16']]);
  const web = input.ports[1];
  t.same([web.allEndpoints.length, web.internalEndpoints.map((e) => e.ip), web.externalEndpoints.length], [2, ['10.244.1.2'], 2], 'internal Local');
  t.same(input.ports[0].allEndpoints, [], 'admin: no endpoints');
  const want = JSON.stringify(input);
  t.equal(JSON.stringify(buildProxyInput([...services].reverse(), [...eps].reverse(), node)), want, 'input order does not matter');
  node.ips.push('192.168.0.2');
  t.same(input.nodeIPs, ['192.168.0.1'], 'node arrays copied');
});

t.test('proxyServiceView / proxyEndpointsView: what the informer keeps gives the same model, without the rest', async (t) => {
  const meta = { uid: 'u-1', resourceVersion: '42', creationTimestamp: '2026-01-01T00:00:00Z', labels: { app: 'web' }, annotations: { note: 'x'.repeat(100) } };
  const rich: Service[] = [
    service([http, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }], {
      type: 'LoadBalancer', selector: { app: 'web' }, clusterIPs: ['10.96.0.10'], externalIPs: ['192.0.2.7'], loadBalancerIP: '192.0.2.9',
      sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local',
    }),
    { ...service([{ ...http, nodePort: 30080 }], { type: 'NodePort' }, 'np', 'shop'), status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } },
    service([http], { type: 'LoadBalancer' }, 'lb'),
  ];
  for (const svc of rich) {
    svc.status ??= { loadBalancer: { ingress: [{ ip: '192.0.2.11', hostname: 'lb.example' }] } };
    Object.assign(svc.metadata, meta);
    const view = proxyServiceView(svc);
    t.same(servicePortsOf(view), servicePortsOf(svc), `${svc.metadata.name}: same ports`);
    t.same(view.metadata, { name: svc.metadata.name, ...(svc.metadata.namespace ? { namespace: svc.metadata.namespace } : {}), resourceVersion: '42' }, `${svc.metadata.name}: metadata cut`);
    t.notOk('selector' in view.spec, `${svc.metadata.name}: no selector`);
  }
  const ports = [{ name: 'http', port: 8080, protocol: 'TCP' as const }];
  const eps = endpoints([
    sub([['10.244.1.2', 'node-1'], ['10.244.2.2']], [['10.244.1.3', 'node-1']], ports),
    { addresses: [{ ip: '10.244.3.3', nodeName: 'node-3', hostname: 'h', targetRef: { kind: 'Pod', namespace: 'default', name: 'p', uid: 'u' } }], ports },
  ]);
  Object.assign(eps.metadata, meta);
  const view = proxyEndpointsView(eps);
  t.same(endpointsFor(servicePortsOf(rich[0])[0], view, 'node-1'), endpointsFor(servicePortsOf(rich[0])[0], eps, 'node-1'), 'same endpoints');
  t.same(view.subsets![1].addresses, [{ ip: '10.244.3.3', nodeName: 'node-3' }], 'no targetRef or hostname');
  t.same(view.metadata, { name: 'web', namespace: 'default', resourceVersion: '42' });
  t.same(proxyEndpointsView(endpoints(undefined as unknown as EndpointSubset[])).subsets, undefined, 'no subsets stays none');
});
