// Manifests for `podwire apply|delete -f`: YAML / JSON, multi-document, Lists, kinds, and the
// body apply PUTs onto a live object.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeObject } from '../../src/api/objects.js';
import { isSubset, kindForType, parseManifests, readManifests, updateBody } from '../../src/cli/manifests.js';

const K8S_YAML = `# exported from a Kubernetes cluster
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  uid: 1b2c
  resourceVersion: "99"
  managedFields: [{manager: kubectl}]
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
status:
  loadBalancer: {}
---
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.0.0.5}]
  ports: [{port: 5432}]
`;

t.test('multi-document YAML: kinds recognised, Kubernetes-only fields dropped, empty documents skipped', async (t) => {
  const ms = parseManifests(K8S_YAML, 'app.yaml');
  t.same(ms.map((m) => m.info.kind), ['Service', 'Pod', 'Endpoints']);
  t.same(ms[0]!.object, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  }, 'uid, resourceVersion, managedFields and service status are not sent');
  t.same(ms[1]!.object.metadata, { name: 'web-1', labels: { app: 'web' } });
  t.match(ms[1]!.object, { spec: { nodeName: 'n1' } });
  t.same((ms[2]!.object as unknown as { subsets: unknown }).subsets, [{ addresses: [{ ip: '10.0.0.5' }], ports: [{ port: 5432 }] }]);
  t.equal(ms[1]!.where, 'app.yaml document 3 (Pod web-1)', 'documents are counted as written, empty ones included');
});

t.test('JSON, kind List and typed lists; ClusterConfig under podwire.io/v1', async (t) => {
  const json = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', annotations: { 'podwire.io/backend': 'vxlan' } }, spec: {}, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] } },
      { apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { name: 'cluster' }, spec: { backend: 'host-gw' } },
    ],
  });
  const ms = parseManifests(json, 'all.json');
  t.same(ms.map((m) => `${m.info.kind}/${m.object.metadata.name}`), ['Node/n1', 'ClusterConfig/cluster']);
  t.match(ms[0]!.object, { status: { addresses: [{ address: '192.0.2.1' }] } }, 'node status is kept');
  t.equal(ms[1]!.where, 'all.json document 1 item 2 (ClusterConfig cluster)');
  const typed = parseManifests('apiVersion: v1\nkind: ServiceList\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 1}]}}\n', 'x');
  t.equal(typed[0]!.object.metadata.name, 'a');
});

t.test('bad documents: the error names the document, item and kind', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n', /^f\.yaml document 2 \(kind "Deployment"\): unsupported kind; podwire serves v1 Node, v1 Pod/],
    ['apiVersion: v2\nkind: Pod\nmetadata: {name: p}\n', /document 1 \(kind "Pod"\): apiVersion "v2" is not served; use v1/],
    ['apiVersion: v1\nkind: ClusterConfig\nmetadata: {name: cluster}\n', /apiVersion "v1" is not served; use podwire\.io\/v1/],
    ['kind: Service\nmetadata: {name: a}\n', /apiVersion null is not served/],
    ['apiVersion: v1\nkind: Service\nspec: {}\n', /document 1 \(kind "Service"\): metadata\.name is required/],
    ['metadata: {name: x}\n', /document 1 \(kind null\): unsupported kind/],
    ['apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n', /document 1 item 1 \(kind "Secret"\)/],
    ['apiVersion: v1\nkind: List\nitems: {}\n', /items must be a list/],
    ['- a\n- b\n', /document 1: expected an object/],
    ['apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\nb: [1\n', /^f\.yaml document 2: .*at line \d+, column \d+$/],
    ['a: 1\na: 2\n', /document 1: Map keys must be unique/],
    ['# nothing\n---\n', /^f\.yaml: no objects found/],
  ];
  for (const [text, re] of bad) t.throws(() => parseManifests(text, 'f.yaml'), re, text.split('\n')[1]);
});

t.test('resource type words: singular, plural, short names, kind', async (t) => {
  const words: Array<[string, string]> = [['no', 'Node'], ['nodes', 'Node'], ['po', 'Pod'], ['pod', 'Pod'], ['svc', 'Service'], ['Service', 'Service'], ['ep', 'Endpoints'], ['endpoints', 'Endpoints'], ['clusterconfig', 'ClusterConfig']];
  for (const [word, kind] of words) t.equal(kindForType(word)?.kind, kind, word);
  t.equal(kindForType('deployments'), undefined);
});

t.test('readManifests: "-" reads stdin, a missing file names the file', async (t) => {
  const ms = readManifests('-', () => '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}');
  t.equal(ms[0]!.where, 'stdin document 1 (Pod p)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-manifest-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'svc.yaml');
  fs.writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n');
  t.equal(readManifests(file)[0]!.object.metadata.name, 's');
  t.throws(() => readManifests(path.join(dir, 'nope.yaml')), /nope\.yaml: ENOENT/);
});

const liveService = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default', uid: 'u-1', resourceVersion: '7', creationTimestamp: '2024-01-01T00:00:00Z', labels: { app: 'web' } },
  spec: {
    type: 'NodePort',
    selector: { app: 'web' },
    clusterIP: '10.96.0.20',
    clusterIPs: ['10.96.0.20'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53, nodePort: 30053 }],
    sessionAffinity: 'None',
  },
} as unknown as KubeObject;

t.test('isSubset: only the fields the manifest sets are compared; lists item by item', async (t) => {
  const manifest = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', labels: { app: 'web' } }, spec: { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP' }] } };
  t.ok(isSubset(manifest, liveService), 'server defaults and allocations do not count as differences');
  t.notOk(isSubset({ ...manifest, spec: { ...manifest.spec, ports: [manifest.spec.ports[0]] } }, liveService), 'a removed port is a change');
  t.notOk(isSubset({ metadata: { labels: { app: 'api' } } }, liveService));
  t.notOk(isSubset({ spec: { selector: { app: 'web', tier: 'fe' } } }, liveService));
  t.ok(isSubset({ spec: { type: undefined } }, liveService), 'undefined means "not set"');
});

t.test('updateBody: live identity, allocations, status and agent annotations kept where the manifest is silent', async (t) => {
  const manifest = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 31000 }] } } as unknown as KubeObject;
  const body = updateBody(manifest, liveService) as unknown as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  t.same(body.metadata, { name: 'web', uid: 'u-1', resourceVersion: '7', creationTimestamp: '2024-01-01T00:00:00Z' }, 'labels the manifest drops are dropped');
  t.equal(body.spec.clusterIP, '10.96.0.20');
  t.same(body.spec.clusterIPs, ['10.96.0.20']);
  t.same(body.spec.ports, [{ name: 'http', port: 80, targetPort: 'http', nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 31000 }], 'a nodePort the manifest sets wins');

  const toClusterIp = updateBody({ ...manifest, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } } as KubeObject, liveService) as unknown as { spec: Record<string, unknown> };
  t.same(toClusterIp.spec, { type: 'ClusterIP', ports: [{ port: 80 }], clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'] }, 'no nodePorts for a ClusterIP service');
  const toExternal = updateBody({ ...manifest, spec: { type: 'ExternalName', externalName: 'db.example' } } as KubeObject, liveService) as unknown as { spec: Record<string, unknown> };
  t.same(toExternal.spec, { type: 'ExternalName', externalName: 'db.example' }, 'an ExternalName service gets no ClusterIP');

  const liveNode = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u-2', resourceVersion: '3', annotations: { 'podwire.io/public-ip': '192.0.2.1', 'podwire.io/vtep-mac': '02:00:00:00:00:01', 'note': 'old' } },
    spec: { podCIDR: '10.244.1.0/24' },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
  } as unknown as KubeObject;
  const node = updateBody({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', annotations: { 'podwire.io/public-ip': '192.0.2.9' } }, spec: {} } as unknown as KubeObject, liveNode) as unknown as Record<string, { annotations?: unknown }>;
  t.same(node.metadata!.annotations, { 'podwire.io/public-ip': '192.0.2.9', 'podwire.io/vtep-mac': '02:00:00:00:00:01' }, 'agent annotations kept, the manifest wins, others follow the manifest');
  t.same(node.status, { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] });
});
