// `podwire get` output: kubectl-style tables, AGE, PORT(S), ENDPOINTS and JSON / YAML.
import t from 'tap';
import YAML from 'yaml';
import type { Endpoints, KubeObject, Node, Pod, Service } from '../../src/api/objects.js';
import { UsageError } from '../../src/flags/flags.js';
import { formatEndpoints, formatObjects, formatTable, humanDuration, parseOutputFormat, readyEndpointCount, serviceExternalIp, servicePorts, tableFor } from '../../src/cli/output.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function svc(name: string, spec: Partial<Service['spec']>, namespace = 'default', status?: Service['status']): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, creationTimestamp: ago(300) }, spec: { type: 'ClusterIP', ...spec }, ...(status ? { status } : {}) };
}

function ep(name: string, subsets: Endpoints['subsets'], namespace = 'default'): Endpoints {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace, creationTimestamp: ago(45) }, subsets };
}

t.test('AGE follows kubectl: seconds, minutes, hours, days, years', async (t) => {
  const cases: Array<[number, string]> = [
    [-3, '<invalid>'],
    [-0.5, '0s'],
    [5, '5s'],
    [119, '119s'],
    [180, '3m'],
    [185, '3m5s'],
    [600, '10m'],
    [2 * 3600, '120m'],
    [3 * 3600 + 30 * 60, '3h30m'],
    [7 * 3600, '7h'],
    [30 * 3600, '30h'],
    [4 * 86400, '4d'],
    [4 * 86400 + 5 * 3600, '4d5h'],
    [100 * 86400, '100d'],
    [3 * 365 * 86400 + 10 * 86400, '3y10d'],
    [10 * 365 * 86400, '10y'],
  ];
  for (const [seconds, want] of cases) t.equal(humanDuration(seconds * 1000), want, `${seconds}s`);
  const table = tableFor('Pod', [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: {} } as Pod], { wide: false, allNamespaces: false, now: NOW });
  t.equal(table.rows[0]!.at(-1), '<unknown>', 'no creationTimestamp');
});

t.test('PORT(S) and EXTERNAL-IP as kubectl writes them', async (t) => {
  t.equal(servicePorts(svc('a', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] })), '80:30080/TCP,53/UDP');
  t.equal(servicePorts(svc('b', { ports: [{ port: 443 }] })), '443/TCP', 'protocol defaults to TCP');
  t.equal(servicePorts(svc('c', { clusterIP: 'None' })), '<none>');
  t.equal(serviceExternalIp(svc('d', {})), '<none>');
  t.equal(serviceExternalIp(svc('e', { externalIPs: ['198.51.100.1', '198.51.100.2'] })), '198.51.100.1,198.51.100.2');
  t.equal(serviceExternalIp(svc('f', { type: 'LoadBalancer' })), '<pending>');
  t.equal(serviceExternalIp(svc('g', { type: 'LoadBalancer' }, 'default', { loadBalancer: { ingress: [{ ip: '203.0.113.9' }, { hostname: 'lb.example' }] } })), '203.0.113.9,lb.example');
  t.equal(serviceExternalIp(svc('h', { type: 'ExternalName', externalName: 'db.example.com' })), 'db.example.com');
});

t.test('ENDPOINTS: three ip:port then "+ N more...", headless, IPv6, empty', async (t) => {
  const subsets = [{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], ports: [{ port: 80 }, { port: 443 }] }, { addresses: [{ ip: '10.0.0.3' }], notReadyAddresses: [{ ip: '10.0.0.9' }], ports: [{ port: 80 }] }];
  t.equal(formatEndpoints(subsets), '10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...');
  t.equal(formatEndpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }]), '10.0.0.1:80');
  t.equal(formatEndpoints([{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }] }]), '10.0.0.1,10.0.0.2', 'no ports: bare addresses');
  t.equal(formatEndpoints([{ addresses: [{ ip: 'fd00::1' }], ports: [{ port: 8080 }] }]), '[fd00::1]:8080');
  t.equal(formatEndpoints([]), '<none>');
  t.equal(formatEndpoints([{ notReadyAddresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }]), '<none>', 'not-ready addresses are not shown');
  t.equal(readyEndpointCount(ep('x', subsets)), 3, 'distinct ready IPs, not-ready excluded');
  t.equal(readyEndpointCount(undefined), 0);
});

t.test('services table: columns, ENDPOINTS count from the matching Endpoints, -A and wide', async (t) => {
  const web = svc('web', { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], selector: { app: 'web' }, ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] });
  const other = svc('web', { clusterIP: '10.96.0.11', ports: [{ port: 80 }] }, 'prod');
  const endpoints = [ep('web', [{ addresses: [{ ip: '10.244.1.2' }, { ip: '10.244.2.2' }], ports: [{ port: 8080 }] }])];
  const text = formatTable(tableFor('Service', [web], { wide: false, allNamespaces: false, now: NOW, endpoints }));
  t.equal(
    text,
    [
      'NAME      TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        ENDPOINTS   AGE',
      'web       NodePort   10.96.0.10   <none>        80:30080/TCP   2           5m',
    ].join('\n'),
  );
  const all = tableFor('Service', [web, other], { wide: true, allNamespaces: true, now: NOW, endpoints });
  t.same(all.headers, ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'ENDPOINTS', 'AGE', 'SELECTOR']);
  t.same(all.rows[1], ['prod', 'web', 'ClusterIP', '10.96.0.11', '<none>', '80/TCP', '0', '5m', '<none>'], 'the endpoints of default/web do not count for prod/web');
  t.equal(all.rows[0]!.at(-1), 'app=web');
});

t.test('nodes, pods and endpoints tables', async (t) => {
  const n1: Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', creationTimestamp: ago(4 * 86400), annotations: { 'podwire.io/public-ip': '192.0.2.11', 'podwire.io/backend': 'vxlan', 'podwire.io/vtep-mac': '02:00:00:00:00:01' } },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.21' }] },
  };
  const n2: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n2', annotations: { 'podwire.io/public-ip': '192.0.2.12' } }, spec: {} };
  const nodes = tableFor('Node', [n1, n2], { wide: true, allNamespaces: true, now: NOW });
  t.same(nodes.headers, ['NAME', 'PODCIDR', 'INTERNAL-IP', 'BACKEND', 'AGE', 'VTEP-MAC'], 'no NAMESPACE column for nodes even with -A');
  t.same(nodes.rows, [
    ['n1', '10.244.1.0/24', '192.0.2.21', 'vxlan', '4d', '02:00:00:00:00:01'],
    ['n2', '<none>', '192.0.2.12', '<none>', '<unknown>', '<none>'],
  ], 'InternalIP wins over the public-ip annotation');

  const pod = (name: string, ready: boolean, ip?: string): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web', tier: 'fe' }, creationTimestamp: ago(7200) },
    spec: { nodeName: 'n1', containers: [{ name: 'a' }, { name: 'b' }] },
    status: { phase: ip ? 'Running' : 'Pending', ...(ip ? { podIP: ip } : {}), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  const pods = tableFor('Pod', [pod('web-1', true, '10.244.1.5'), pod('web-2', false)], { wide: true, allNamespaces: true, now: NOW });
  t.same(pods.headers, ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'IP', 'NODE', 'AGE', 'LABELS']);
  t.same(pods.rows, [
    ['default', 'web-1', '2/2', 'Running', '10.244.1.5', 'n1', '120m', 'app=web,tier=fe'],
    ['default', 'web-2', '0/2', 'Pending', '<none>', 'n1', '120m', 'app=web,tier=fe'],
  ]);

  const eps = tableFor('Endpoints', [ep('web', [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }])], { wide: false, allNamespaces: false, now: NOW });
  t.same(eps, { headers: ['NAME', 'ENDPOINTS', 'AGE'], rows: [['web', '10.0.0.1:80', '45s']] });
});

t.test('formatTable pads like kubectl: at least 10 wide, 3 spaces, last column unpadded', async (t) => {
  t.equal(formatTable({ headers: ['A', 'LONG-HEADER-X', 'C'], rows: [['x', 'y', 'z']] }), 'A         LONG-HEADER-X   C\nx         y               z');
  t.equal(formatTable({ headers: ['NAME'], rows: [] }), 'NAME');
});

t.test('-o json / -o yaml: the object for one by name, a List otherwise', async (t) => {
  const a = svc('a', { ports: [{ port: 80 }] });
  const b = svc('b', { ports: [{ port: 81 }] });
  const one = JSON.parse(formatObjects([a], 'json', true));
  t.same(one, a);
  t.match(formatObjects([a], 'json', true), /^\{\n {4}"apiVersion"/, 'indented by 4 as kubectl');
  const list = YAML.parse(formatObjects([a, b], 'yaml', false)) as { kind: string; items: KubeObject[] };
  t.equal(list.kind, 'List');
  t.same(list.items.map((i) => i.metadata.name), ['a', 'b']);
  t.same(JSON.parse(formatObjects([a], 'json', false)).items, [a], 'a listing with one item is still a List');
  t.same(JSON.parse(formatObjects([], 'json', false)).items, []);
  t.equal(parseOutputFormat(undefined), 'table');
  t.equal(parseOutputFormat('wide'), 'wide');
  t.throws(() => parseOutputFormat('xml'), UsageError);
});
