import t from 'tap';
import type { ContainerPort, EndpointPort, EndpointSubset, Pod, Service, ServicePort } from '../../src/api/objects.js';
import { deriveSubsets, servicesSelectingPod, subsetsEqual } from '../../src/controlplane/endpoints/derive.js';

interface PodOpts {
  ns?: string;
  labels?: Record<string, string>;
  ip?: string;
  node?: string;
  ready?: boolean;
  phase?: NonNullable<Pod['status']>['phase'];
  ports?: ContainerPort[];
  uid?: string | null;
}

function pod(name: string, o: PodOpts = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.ns ?? 'default', labels: o.labels ?? { app: 'web' }, ...(o.uid === null ? {} : { uid: o.uid ?? `uid-${name}` }) },
    spec: { ...(o.node ? { nodeName: o.node } : {}), containers: [{ name: 'c', ports: o.ports ?? [{ name: 'http', containerPort: 8080 }] }] },
    status: {
      phase: o.phase ?? 'Running',
      ...(o.ip === '' ? {} : { podIP: o.ip ?? '10.244.1.2' }),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

function service(ports: ServicePort[], spec: Partial<Service['spec']> = {}, ns = 'default', name = 'web'): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { selector: { app: 'web' }, ports, ...spec } };
}

const ref = (name: string, ns = 'default') => ({ kind: 'Pod' as const, namespace: ns, name, uid: `uid-${name}` });
const http: ServicePort = { name: 'http', port: 80, targetPort: 'http' };

t.test('services the controller does not manage; no pods', async (t) => {
  const pods = [pod('a')];
  t.equal(deriveSubsets(service([http], { type: 'ExternalName', externalName: 'example.com' }), pods), undefined, 'ExternalName');
  t.equal(deriveSubsets(service([http], { selector: undefined }), pods), undefined, 'no selector');
  t.equal(deriveSubsets(service([http], { selector: {} }), pods), undefined, 'empty selector');
  t.same(deriveSubsets(service([http]), []), [], 'no pods: an empty list');
  t.same(deriveSubsets(service([http]), [pod('x', { labels: { app: 'db' } })]), [], 'no matching pods');
});

t.test('which pods count, ready and not-ready, address shape', async (t) => {
  const pods = [
    pod('ready', { ip: '10.244.1.2', node: 'node-1' }),
    pod('starting', { ip: '10.244.2.3', node: 'node-2', ready: false }),
    pod('pending-no-ip', { ip: '' }),
    pod('other-ns', { ns: 'prod', ip: '10.244.1.9' }),
    pod('done', { ip: '10.244.1.10', phase: 'Succeeded' }),
    pod('crashed', { ip: '10.244.1.11', phase: 'Failed' }),
    pod('other-app', { ip: '10.244.1.12', labels: { app: 'db' } }),
    pod('no-uid-no-node', { ip: '10.244.1.3', uid: null, labels: { app: 'web', extra: 'x' } }),
  ];
  const port = { name: 'http', port: 8080, protocol: 'TCP' };
  t.same(deriveSubsets(service([http]), pods), [{
    addresses: [
      { ip: '10.244.1.2', nodeName: 'node-1', targetRef: ref('ready') },
      { ip: '10.244.1.3', targetRef: { kind: 'Pod', namespace: 'default', name: 'no-uid-no-node' } },
    ],
    notReadyAddresses: [{ ip: '10.244.2.3', nodeName: 'node-2', targetRef: ref('starting') }],
    ports: [port],
  }]);
  t.same(deriveSubsets(service([http], {}, 'prod'), pods), [{ addresses: [{ ip: '10.244.1.9', targetRef: ref('other-ns', 'prod') }], ports: [port] }], 'the service namespace only');
  const pendingNoCondition: Pod = { ...pod('p', { ip: '10.244.3.1' }), status: { podIP: '10.244.3.1' } };
  t.same(deriveSubsets(service([http]), [pendingNoCondition]), [{ notReadyAddresses: [{ ip: '10.244.3.1', targetRef: ref('p') }], ports: [port] }], 'no Ready condition: not ready');
  const notReadyOnly = deriveSubsets(service([http]), [pod('s', { ready: false })]) as EndpointSubset[];
  t.notOk('addresses' in notReadyOnly[0], 'empty address lists are omitted, as Kubernetes omits them');
});

t.test('port resolution', async (t) => {
  const tcp = (name: string | undefined, port: number, protocol: EndpointPort['protocol'] = 'TCP'): EndpointPort => (name ? { name, port, protocol } : { port, protocol });
  const cases: Array<[string, ServicePort[], Pod[], EndpointSubset[]]> = [
    ['numeric targetPort', [{ name: 'http', port: 80, targetPort: 9376 }], [pod('a')], [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('http', 9376)] }]],
    ['absent targetPort: the port', [{ port: 80 }], [pod('a')], [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp(undefined, 80)] }]],
    ['digits-only targetPort string', [{ port: 80, targetPort: '8081' }], [pod('a')], [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp(undefined, 8081)] }]],
    ['UDP port', [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' }], [pod('a', { ports: [{ name: 'dns', containerPort: 5353, protocol: 'UDP' }] })],
      [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('dns', 5353, 'UDP')] }]],
    ['named targetPort, different numbers per pod → two subsets', [http],
      [pod('a', { ip: '10.244.1.2' }), pod('b', { ip: '10.244.1.3', ports: [{ name: 'http', containerPort: 9090 }] })],
      [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('http', 8080)] }, { addresses: [{ ip: '10.244.1.3', targetRef: ref('b') }], ports: [tcp('http', 9090)] }]],
    ['named port missing on a pod: skipped for that port only',
      [http, { name: 'metrics', port: 9100 }],
      [pod('a', { ip: '10.244.1.2' }), pod('b', { ip: '10.244.1.3', ports: [{ name: 'admin', containerPort: 8080 }] })],
      // RepackSubsets groups ports served by the same addresses: metrics by both, http by a only.
      [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('http', 8080)] }, { addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }, { ip: '10.244.1.3', targetRef: ref('b') }], ports: [tcp('metrics', 9100)] }]],
    ['named port with another protocol does not resolve', [http], [pod('a', { ports: [{ name: 'http', containerPort: 8080, protocol: 'UDP' }] })], []],
    ['named port found in the second container, protocol matched', [{ name: 'q', port: 53, protocol: 'UDP', targetPort: 'dns' }],
      [{ ...pod('a'), spec: { containers: [{ name: 'x', ports: [{ name: 'dns', containerPort: 53 }] }, { name: 'y', ports: [{ name: 'dns', containerPort: 1053, protocol: 'UDP' }] }] } }],
      [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('q', 1053, 'UDP')] }]],
    ['ports sorted by name then port', [{ name: 'z', port: 1 }, { name: 'a', port: 3, targetPort: 30 }, { name: 'a2', port: 2 }, { name: 'b', port: 2 }], [pod('a')],
      [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], ports: [tcp('a', 30), tcp('a2', 2), tcp('b', 2), tcp('z', 1)] }]],
    ['no ports, not headless: nothing', [], [pod('a')], []],
  ];
  for (const [name, ports, pods, want] of cases) t.same(deriveSubsets(service(ports), pods), want, name);
  t.same(deriveSubsets(service([], { clusterIP: 'None' }), [pod('a'), pod('b', { ip: '10.244.1.1', ready: false })]),
    [{ addresses: [{ ip: '10.244.1.2', targetRef: ref('a') }], notReadyAddresses: [{ ip: '10.244.1.1', targetRef: ref('b') }] }], 'headless without ports: port-less addresses');
});

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

t.test('determinism and ordering', async (t) => {
  const pods = [
    pod('p9', { ip: '10.244.0.9' }), pod('p10', { ip: '10.244.0.10' }), pod('p100', { ip: '10.244.0.100', ready: false }),
    pod('p2', { ip: '9.1.1.1' }), pod('v6a', { ip: 'fd00::10' }), pod('v6b', { ip: 'fd00::9' }), pod('v6c', { ip: 'fd00::1:0' }),
    pod('alt', { ip: '10.244.0.50', ports: [{ name: 'http', containerPort: 9090 }] }), pod('alt2', { ip: '10.244.0.5', ports: [{ name: 'http', containerPort: 9090 }] }),
  ];
  const svc = service([{ name: 'metrics', port: 9100 }, http]);
  const want = JSON.stringify(deriveSubsets(svc, pods));
  for (let seed = 1; seed <= 20; seed++) t.equal(JSON.stringify(deriveSubsets(svc, shuffled(pods, seed))), want, `shuffle ${seed}`);
  const shuffledPorts = service([http, { name: 'metrics', port: 9100 }]);
  t.equal(JSON.stringify(deriveSubsets(shuffledPorts, pods)), want, 'service port order does not matter');
  const subsets = deriveSubsets(svc, pods) as EndpointSubset[];
  t.same(subsets.map((s) => s.ports?.map((p) => `${p.name}:${p.port}`)), [['http:8080'], ['http:9090'], ['metrics:9100']]);
  t.same(subsets[0].addresses?.map((a) => a.ip), ['9.1.1.1', '10.244.0.9', '10.244.0.10', 'fd00::9', 'fd00::10', 'fd00::1:0'], 'IPv4 numerically, then IPv6 numerically');
  t.same(subsets[0].notReadyAddresses?.map((a) => a.ip), ['10.244.0.100']);
  t.same(subsets[1].addresses?.map((a) => a.ip), ['10.244.0.5', '10.244.0.50']);
  t.equal(subsets[2].addresses?.length, 8);
  const dup = deriveSubsets(svc, [...pods, ...pods]);
  t.equal(JSON.stringify(dup), want, 'a pod listed twice appears once');
});

t.test('subsetsEqual', async (t) => {
  const a = { ip: '10.0.0.1', targetRef: ref('a') };
  const b = { ip: '10.0.0.2', targetRef: ref('b') };
  const p80 = { name: 'http', port: 80, protocol: 'TCP' as const };
  const p81 = { name: 'alt', port: 81 };
  const cases: Array<[string, EndpointSubset[] | undefined, EndpointSubset[] | undefined, boolean]> = [
    ['both empty', [], undefined, true],
    ['identical', [{ addresses: [a, b], ports: [p80] }], [{ addresses: [a, b], ports: [p80] }], true],
    ['order of addresses and ports', [{ addresses: [a, b], ports: [p80, p81] }], [{ ports: [p81, p80], addresses: [b, a] }], true],
    ['default protocol', [{ addresses: [a], ports: [{ name: 'http', port: 80 }] }], [{ addresses: [a], ports: [p80] }], true],
    ['grouped differently', [{ addresses: [a, b], ports: [p80, p81] }], [{ addresses: [a, b], ports: [p80] }, { addresses: [b, a], ports: [p81] }], true],
    ['empty lists vs absent', [{ addresses: [a], notReadyAddresses: [], ports: [p80] }], [{ addresses: [a], ports: [p80] }], true],
    ['readiness differs', [{ addresses: [a], ports: [p80] }], [{ notReadyAddresses: [a], ports: [p80] }], false],
    ['port number differs', [{ addresses: [a], ports: [p80] }], [{ addresses: [a], ports: [{ ...p80, port: 8080 }] }], false],
    ['protocol differs', [{ addresses: [a], ports: [p80] }], [{ addresses: [a], ports: [{ ...p80, protocol: 'UDP' }] }], false],
    ['address missing', [{ addresses: [a, b], ports: [p80] }], [{ addresses: [a], ports: [p80] }], false],
    ['nodeName differs', [{ addresses: [a], ports: [p80] }], [{ addresses: [{ ...a, nodeName: 'n1' }], ports: [p80] }], false],
    ['something vs nothing', [{ addresses: [a], ports: [p80] }], [], false],
  ];
  for (const [name, x, y, want] of cases) {
    t.equal(subsetsEqual(x, y), want, name);
    t.equal(subsetsEqual(y, x), want, `${name} (swapped)`);
  }
  const derived = deriveSubsets(service([http]), [pod('b', { ip: '10.0.0.2' }), pod('a', { ip: '10.0.0.1' })]);
  t.ok(subsetsEqual(derived, [{ ports: [{ name: 'http', port: 8080 }], addresses: [{ ip: '10.0.0.2', targetRef: ref('b') }, { ip: '10.0.0.1', targetRef: ref('a') }] }]), 'derived vs hand-written');
});

t.test('servicesSelectingPod', async (t) => {
  const web = service([http], {}, 'default', 'web');
  const webProd = service([http], {}, 'prod', 'web');
  const front = service([http], { selector: { app: 'web', tier: 'front' } }, 'default', 'front');
  const manual = service([http], { selector: undefined }, 'default', 'manual');
  const empty = service([http], { selector: {} }, 'default', 'empty');
  const external = service([], { type: 'ExternalName', externalName: 'example.com' }, 'default', 'ext');
  const db = service([http], { selector: { app: 'db' } }, 'default', 'db');
  const all = [web, webProd, front, manual, empty, external, db];
  const names = (ss: Service[]) => ss.map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
  t.same(names(servicesSelectingPod(all, pod('a'))), ['default/web']);
  t.same(names(servicesSelectingPod(all, pod('a', { labels: { app: 'web', tier: 'front' } }))), ['default/web', 'default/front']);
  t.same(names(servicesSelectingPod(all, pod('a', { ns: 'prod' }))), ['prod/web']);
  t.same(names(servicesSelectingPod(all, pod('a', { labels: {} }))), []);
  t.same(servicesSelectingPod([], pod('a')), []);
});
