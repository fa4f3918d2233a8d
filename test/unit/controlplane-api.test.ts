// The control plane API through inject(): discovery, CRUD with resourceVersion concurrency, Status
// errors, allocation of podCIDRs / ClusterIPs / NodePorts, endpoints derived from pods.
import t from 'tap';
import { eventually, node, pod, service, testServer } from '../lib/controlplane.js';

t.test('discovery documents look like kube-apiserver', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const v = await s.call('GET', '/version', undefined, null);
  t.equal(v.statusCode, 200, '/version needs no token');
  t.match(v.json, { major: '1', minor: /^\d+$/, gitVersion: /^v1\.\d+\.0-podwire\./ });
  const api = await s.call('GET', '/api');
  t.same(api.json.versions, ['v1']);
  t.equal(api.json.kind, 'APIVersions');
  const v1 = await s.call('GET', '/api/v1');
  t.equal(v1.json.kind, 'APIResourceList');
  const byName = Object.fromEntries(v1.json.resources.map((r: { name: string }) => [r.name, r]));
  t.match(byName.services, { kind: 'Service', namespaced: true, shortNames: ['svc'] });
  t.match(byName.nodes, { kind: 'Node', namespaced: false });
  t.ok(byName.pods && byName.endpoints, 'pods and endpoints are served');
  t.same((await s.call('GET', '/apis')).json.groups, []);
  const missing = await s.call('GET', '/api/v1/namespaces/default/secrets');
  t.equal(missing.statusCode, 404);
  t.match(missing.json, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
});

t.test('services: ClusterIP and NodePorts allocated, kept on update, released on delete', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const created = await s.call('POST', '/api/v1/namespaces/default/services', service('web', { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'dns', port: 53, protocol: 'UDP' }] }));
  t.equal(created.statusCode, 201, created.body);
  const svc = created.json;
  t.match(svc.spec.clusterIP, /^10\.(9[6-9]|1[01]\d)\.\d+\.\d+$/, 'ClusterIP from 10.96.0.0/12');
  t.not(svc.spec.clusterIP, '10.96.0.1', 'the first address is reserved');
  t.same(svc.spec.clusterIPs, [svc.spec.clusterIP]);
  t.ok(svc.spec.ports.every((p: { nodePort: number }) => p.nodePort >= 30000 && p.nodePort <= 32767), 'nodePorts from the range');
  t.match(svc.metadata, { name: 'web', namespace: 'default', uid: /^[0-9a-f-]{36}$/, resourceVersion: /^\d+$/, creationTimestamp: /Z$/ });
  t.match(svc.spec, { type: 'NodePort', sessionAffinity: 'None', externalTrafficPolicy: 'Cluster' });
  t.equal(svc.spec.ports[1].targetPort, 53, 'targetPort defaults to port');

  const got = await s.call('GET', '/api/v1/namespaces/default/services/web');
  t.same(got.json, svc, 'GET returns what POST returned');

  // PUT without clusterIP/nodePorts keeps them; a stale resourceVersion is a 409.
  const body = { ...svc, metadata: { ...svc.metadata, labels: { tier: 'front' } }, spec: { ...svc.spec, clusterIP: '', clusterIPs: undefined, ports: svc.spec.ports.map(({ nodePort: _n, ...p }: { nodePort: number }) => p) } };
  const updated = await s.call('PUT', '/api/v1/namespaces/default/services/web', body);
  t.equal(updated.statusCode, 200, updated.body);
  t.equal(updated.json.spec.clusterIP, svc.spec.clusterIP, 'ClusterIP kept');
  t.same(updated.json.spec.ports.map((p: { nodePort: number }) => p.nodePort), svc.spec.ports.map((p: { nodePort: number }) => p.nodePort), 'nodePorts kept');
  t.ok(Number(updated.json.metadata.resourceVersion) > Number(svc.metadata.resourceVersion), 'resourceVersion grows');
  const stale = await s.call('PUT', '/api/v1/namespaces/default/services/web', body);
  t.equal(stale.statusCode, 409);
  t.match(stale.json, { kind: 'Status', reason: 'Conflict', message: /has been modified/ });
  const immutable = await s.call('PUT', '/api/v1/namespaces/default/services/web', { ...updated.json, spec: { ...updated.json.spec, clusterIP: '10.96.0.50' } });
  t.equal(immutable.statusCode, 400);
  t.match(immutable.json.details.causes, [{ field: 'spec.clusterIP', message: /immutable/ }]);

  // NodePort → ClusterIP drops the nodePorts; they and the IP are free again after delete.
  const toClusterIp = await s.call('PUT', '/api/v1/namespaces/default/services/web', { ...updated.json, spec: { ...updated.json.spec, type: 'ClusterIP', externalTrafficPolicy: undefined, ports: body.spec.ports } });
  t.equal(toClusterIp.statusCode, 200, toClusterIp.body);
  t.ok(toClusterIp.json.spec.ports.every((p: { nodePort?: number }) => p.nodePort === undefined), 'nodePorts removed');
  const freed = await s.call('POST', '/api/v1/namespaces/other/services', service('again', { type: 'NodePort', ports: [{ port: 1, nodePort: svc.spec.ports[0].nodePort }] }));
  t.equal(freed.statusCode, 201, 'a released nodePort can be requested again: ' + freed.body);
  const del = await s.call('DELETE', '/api/v1/namespaces/default/services/web');
  t.equal(del.statusCode, 200);
  t.equal(del.json.metadata.name, 'web', 'DELETE returns the deleted object');
  const reuse = await s.call('POST', '/api/v1/namespaces/default/services', service('reuse', { clusterIP: svc.spec.clusterIP }));
  t.equal(reuse.statusCode, 201, 'the released ClusterIP can be requested: ' + reuse.body);
  const taken = await s.call('POST', '/api/v1/namespaces/default/services', service('taken', { clusterIP: svc.spec.clusterIP }));
  t.equal(taken.statusCode, 400);
  t.match(taken.json.details.causes, [{ field: 'spec.clusterIP', message: /already allocated|taken|allocated/ }]);
  t.equal((await s.call('GET', '/api/v1/namespaces/default/services/taken')).statusCode, 404, 'nothing stored');
  const dup = await s.call('POST', '/api/v1/namespaces/default/services', service('reuse'));
  t.equal(dup.statusCode, 409);
  t.match(dup.json, { reason: 'AlreadyExists', details: { name: 'reuse', kind: 'services' } });
  const ext = await s.call('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'db.example.com' } });
  t.equal(ext.statusCode, 201, ext.body);
  t.equal(ext.json.spec.clusterIP, undefined, 'ExternalName services get no ClusterIP');
  const headless = await s.call('POST', '/api/v1/namespaces/default/services', service('hl', { clusterIP: 'None' }));
  t.equal(headless.json.spec.clusterIP, 'None');
});

t.test('nodes: podCIDR per node, stable on update, freed on delete, exhaustion is a clear 503', async (t) => {
  const s = await testServer({ clusterConfig: { clusterCIDR: '10.50.0.0/22', nodeMask: 24, serviceCIDR: '10.96.0.0/12', nodePortRange: '30000-32767', backend: 'vxlan', vni: 1, vxlanPort: 8472 } });
  t.teardown(() => s.close());
  const cidrs: string[] = [];
  for (const name of ['a', 'b', 'c', 'd']) {
    const r = await s.call('POST', '/api/v1/nodes', node(name));
    t.equal(r.statusCode, 201, r.body);
    t.same(r.json.spec.podCIDRs, [r.json.spec.podCIDR]);
    cidrs.push(r.json.spec.podCIDR);
  }
  t.same([...cidrs].sort(), ['10.50.0.0/24', '10.50.1.0/24', '10.50.2.0/24', '10.50.3.0/24']);
  const full = await s.call('POST', '/api/v1/nodes', node('e'));
  t.equal(full.statusCode, 503);
  t.match(full.json, { reason: 'ServiceUnavailable', message: /10\.50\.0\.0\/22.*no free subnet/ });
  const b = (await s.call('GET', '/api/v1/nodes/b')).json;
  const put = await s.call('PUT', '/api/v1/nodes/b', { ...b, metadata: { ...b.metadata, annotations: { 'podwire.io/public-ip': '192.168.1.2' } }, spec: {} });
  t.equal(put.json.spec.podCIDR, b.spec.podCIDR, 'an update without podCIDR keeps it');
  const change = await s.call('PUT', '/api/v1/nodes/b', { ...put.json, spec: { podCIDR: '10.50.3.0/24' } });
  t.equal(change.statusCode, 400);
  t.match(change.json.details.causes, [{ field: 'spec.podCIDR', message: /may not change/ }]);
  t.equal((await s.call('DELETE', '/api/v1/nodes/b')).statusCode, 200);
  const e = await s.call('POST', '/api/v1/nodes', node('e'));
  t.equal(e.json.spec.podCIDR, b.spec.podCIDR, 'the freed podCIDR goes to the next node');
  const ns = await s.call('POST', '/api/v1/nodes', { metadata: { name: 'x', namespace: 'default' }, spec: {} });
  t.equal(ns.statusCode, 400, 'nodes are cluster-scoped');
});

t.test('bad input: 400 naming each field, nothing stored', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const cases: [string, string, unknown, RegExp][] = [
    ['/api/v1/namespaces/default/services', 'port 0', service('p0', { ports: [{ port: 0 }] }), /spec\.ports\[0\]\.port/],
    ['/api/v1/namespaces/default/services', 'bad protocol', service('proto', { ports: [{ port: 80, protocol: 'ICMP' }] }), /spec\.ports\[0\]\.protocol/],
    ['/api/v1/namespaces/default/services', 'uppercase name', service('Web'), /metadata\.name/],
    ['/api/v1/namespaces/default/services', 'bad clusterIP', service('ip', { clusterIP: '10.96.0.300' }), /spec\.clusterIP/],
    ['/api/v1/namespaces/default/services', 'no metadata', { spec: {} }, /metadata/],
    ['/api/v1/namespaces/default/services', 'clusterIP outside the CIDR', service('out', { clusterIP: '192.168.0.10' }), /spec\.clusterIP/],
    ['/api/v1/namespaces/default/services', 'nodePort outside the range', service('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] }), /spec\.ports/],
    ['/api/v1/nodes', 'bad podCIDR', node('n1', { spec: { podCIDR: '10.244.0.0/33' } }), /spec\.podCIDR/],
    ['/api/v1/namespaces/default/pods', 'bad pod IP', pod('p', 'n1', '10.0.0.999', {}), /status\.podIP/],
    ['/api/v1/namespaces/default/endpoints', 'loopback endpoint', { metadata: { name: 'e' }, subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ port: 80 }] }] }, /subsets\[0\]\.addresses\[0\]\.ip/],
  ];
  const before = await s.store.revision();
  for (const [url, what, body, field] of cases) {
    const r = await s.call('POST', url, body);
    t.equal(r.statusCode, 400, `${what}: 400`);
    t.equal(r.json?.kind, 'Status', `${what}: a Status body`);
    t.match(r.json?.message ?? '', field, `${what}: names the field (${r.json?.message})`);
  }
  const notJson = await s.call('POST', '/api/v1/namespaces/default/services', '{"metadata":');
  t.equal(notJson.statusCode, 400, 'malformed JSON is a 400');
  t.equal(notJson.json.kind, 'Status');
  const wrongKind = await s.call('POST', '/api/v1/namespaces/default/services', { ...service('k'), kind: 'Pod' });
  t.equal(wrongKind.statusCode, 400, 'a Pod body sent to services is refused');
  const wrongNs = await s.call('POST', '/api/v1/namespaces/default/services', service('k', {}, { namespace: 'other' }));
  t.match(wrongNs.json.message, /does not match the namespace/);
  const badSelector = await s.call('GET', '/api/v1/pods?labelSelector=a%20in%20(b');
  t.equal(badSelector.statusCode, 400, 'a malformed label selector is a 400');
  t.equal(await s.store.revision(), before, 'no bad request changed the store');
});

t.test('endpoints follow ready pods matched by the selector; selector-less services keep hand-written ones', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  await s.call('POST', '/api/v1/namespaces/default/services', service('web', { ports: [{ name: 'http', port: 80, targetPort: 'http' }] }));
  for (const [name, ip, ready] of [['web-1', '10.244.1.5', true], ['web-2', '10.244.2.5', true], ['web-3', '10.244.2.6', false]] as const) {
    const r = await s.call('POST', '/api/v1/namespaces/default/pods', pod(name, name === 'web-1' ? 'node-a' : 'node-b', ip, { app: 'web' }, ready));
    t.equal(r.statusCode, 201, r.body);
  }
  await s.call('POST', '/api/v1/namespaces/default/pods', pod('other', 'node-a', '10.244.1.9', { app: 'db' }));
  const ep = await eventually(async () => {
    const r = await s.call('GET', '/api/v1/namespaces/default/endpoints/web');
    // All three pods are in once both ready ones and the unready one show (the controller may have
    // synced in between the creates).
    return r.json?.subsets?.[0]?.addresses?.length === 2 && r.json.subsets[0].notReadyAddresses?.length === 1 ? r.json : undefined;
  }, 'endpoints of web');
  t.same(ep.subsets[0].addresses.map((a: { ip: string; nodeName: string }) => [a.ip, a.nodeName]), [['10.244.1.5', 'node-a'], ['10.244.2.5', 'node-b']]);
  t.same(ep.subsets[0].notReadyAddresses.map((a: { ip: string }) => a.ip), ['10.244.2.6']);
  t.same(ep.subsets[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }], 'named targetPort resolved against the pods');
  t.match(ep.subsets[0].addresses[0].targetRef, { kind: 'Pod', namespace: 'default', name: 'web-1' });
  await s.call('DELETE', '/api/v1/namespaces/default/pods/web-1');
  await eventually(async () => (await s.call('GET', '/api/v1/namespaces/default/endpoints/web')).json?.subsets?.[0]?.addresses?.length === 1, 'a deleted pod leaves the endpoints');
  await s.call('DELETE', '/api/v1/namespaces/default/services/web');
  await eventually(async () => (await s.call('GET', '/api/v1/namespaces/default/endpoints/web')).statusCode === 404, 'endpoints go with their service');

  await s.call('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'manual' }, spec: { ports: [{ port: 5432 }] } });
  const manual = { metadata: { name: 'manual' }, subsets: [{ addresses: [{ ip: '192.168.10.5' }], ports: [{ port: 5432 }] }] };
  t.equal((await s.call('POST', '/api/v1/namespaces/default/endpoints', manual)).statusCode, 201);
  await s.call('POST', '/api/v1/namespaces/default/pods', pod('p9', 'node-a', '10.244.1.10', {}));
  await new Promise((r) => setTimeout(r, 100));
  const kept = await s.call('GET', '/api/v1/namespaces/default/endpoints/manual');
  t.same(kept.json.subsets[0].addresses, [{ ip: '192.168.10.5' }], 'the controller leaves selector-less endpoints alone');
});

t.test('merge patch (kubectl label / patch --type merge) and delete preconditions', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  await s.call('POST', '/api/v1/namespaces/default/pods', pod('p', 'node-a', '10.244.1.2', { app: 'x' }));
  const patched = await s.call('PATCH', '/api/v1/namespaces/default/pods/p', { metadata: { labels: { app: null, tier: 'db' } } }, undefined, { 'content-type': 'application/strategic-merge-patch+json' });
  t.equal(patched.statusCode, 200, patched.body);
  t.same(patched.json.metadata.labels, { tier: 'db' });
  const directive = await s.call('PATCH', '/api/v1/namespaces/default/pods/p', { spec: { $patch: 'replace' } }, undefined, { 'content-type': 'application/strategic-merge-patch+json' });
  t.equal(directive.statusCode, 415, 'strategic directives are refused, not misapplied');
  const jsonPatch = await s.call('PATCH', '/api/v1/namespaces/default/pods/p', '[]', undefined, { 'content-type': 'application/json-patch+json' });
  t.equal(jsonPatch.statusCode, 415);
  const badPatch = await s.call('PATCH', '/api/v1/namespaces/default/pods/p', { status: { podIP: 'nope' } }, undefined, { 'content-type': 'application/merge-patch+json' });
  t.equal(badPatch.statusCode, 400, 'a patch that makes the object invalid is refused');
  const pre = await s.call('DELETE', '/api/v1/namespaces/default/pods/p', { preconditions: { resourceVersion: '1' } });
  t.equal(pre.statusCode, 409, 'delete precondition on resourceVersion');
  t.equal((await s.call('DELETE', '/api/v1/namespaces/default/pods/p', { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' })).statusCode, 200, 'kubectl-style DeleteOptions body');
  t.equal((await s.call('DELETE', '/api/v1/namespaces/default/pods/p')).statusCode, 404);
});

t.test('kubectl-style Table responses (Accept as=Table): lists, gets and watch rows', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  await s.call('POST', '/api/v1/namespaces/default/services', service('web', { type: 'NodePort' }, { labels: { app: 'web' } }));
  const accept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
  const table = (await s.call('GET', '/api/v1/namespaces/default/services', undefined, undefined, { accept })).json;
  t.match(table, { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: /^\d+$/ } });
  t.same(table.columnDefinitions.map((c: { name: string; priority: number }) => `${c.name}/${c.priority}`), ['NAME/0', 'TYPE/0', 'CLUSTER-IP/0', 'EXTERNAL-IP/0', 'PORT(S)/0', 'AGE/0', 'SELECTOR/1']);
  t.match(table.rows[0], { cells: ['web', 'NodePort', /^10\./, '<none>', /^80:3\d{4}\/TCP$/, /s$/, 'app=web'], object: { kind: 'PartialObjectMetadata', metadata: { name: 'web', labels: { app: 'web' } } } });
  const one = (await s.call('GET', '/api/v1/namespaces/default/services/web?includeObject=Object', undefined, undefined, { accept })).json;
  t.equal(one.rows.length, 1);
  t.equal(one.rows[0].object.kind, 'Service', 'includeObject=Object keeps the whole object');
  const plain = (await s.call('GET', '/api/v1/namespaces/default/services')).json;
  t.equal(plain.kind, 'ServiceList', 'without the Accept header: a plain list');
});
