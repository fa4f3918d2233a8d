// The CNI plugin registers pods with the control plane (config section controlPlane): ADD writes
// the Pod (name, namespace, labels from CNI_ARGS; IP from the result; this node) so a Service
// selects it, DEL removes it. A refused or unreachable control plane fails the ADD and leaves
// nothing behind; DEL cleans the node first and fails only the unregistration.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { withNetns } from '../../src/netns/netns.js';
import { buildServer } from '../../src/controlplane/api/server.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { freshNetns, SKIP_NOT_ROOT } from '../lib/netns.js';
import { describe, invokePlugin, makePluginDir, netConf, PODWIRE, podNetns, reservations, tempDir, veths } from '../lib/cni.js';
import { ADMIN_TOKEN, eventually, service } from '../lib/controlplane.js';

t.test('ADD registers the pod, a Service selects it, DEL unregisters it; failures leave nothing', { skip: SKIP_NOT_ROOT }, async (t) => {
  const host = freshNetns(t, 'node');
  const store = new MemoryStore();
  const app = buildServer({ store, adminTokens: [ADMIN_TOKEN] });
  await app.ready();
  // The plugin runs in the node netns: the API must listen there (its loopback), not in ours.
  withNetns(host, () => app.server.listen(0));
  await new Promise((r) => (app.server.listening ? r(undefined) : app.server.once('listening', r)));
  const port = (app.server.address() as AddressInfo).port;
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  const call = async (method: string, url: string, body?: unknown) => {
    const r = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });
    return { statusCode: r.statusCode, json: r.body ? JSON.parse(r.body) : undefined };
  };
  const dir = tempDir(t, 'register');
  const tokenFile = path.join(dir, 'node-a.token');
  fs.writeFileSync(tokenFile, (await call('POST', '/api/v1/nodes/node-a/token')).json.token, { mode: 0o600 });
  t.equal((await call('POST', '/api/v1/namespaces/shop/services', service('web'))).statusCode, 201);
  // The node's podCIDR is the IPAM subnet (netConf's 10.244.1.0/24): pod IPs must come from it.
  t.equal((await call('POST', '/api/v1/nodes', { metadata: { name: 'node-a' }, spec: { podCIDR: '10.244.1.0/24' } })).statusCode, 201);

  const bin = makePluginDir(t);
  const dataDir = path.join(dir, 'ipam');
  const conf = { ...netConf(PODWIRE, { dataDir }), controlPlane: { server: `http://127.0.0.1:${port}`, tokenFile, nodeName: 'node-a' } };
  const pod = podNetns(t, 'web1');
  const args = 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;PODWIRE_LABELS=app:web,tier:front';
  const invoke = (command: string, config: object, extra: Partial<Parameters<typeof invokePlugin>[0]> = {}) =>
    invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command, config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0', args, ...extra });

  const add = await invoke('ADD', conf);
  if (!t.equal(add.exitCode, 0, `ADD ${describe(add)}`)) return;
  const ip = add.result.ips[0].address.split('/')[0];
  const registered = (await call('GET', '/api/v1/namespaces/shop/pods/web-1')).json;
  t.match(registered, { metadata: { namespace: 'shop', name: 'web-1', labels: { app: 'web', tier: 'front' }, annotations: { 'podwire.io/container-id': pod.containerId } }, spec: { nodeName: 'node-a' }, status: { podIP: ip, phase: 'Running' } });
  const ep = await eventually(async () => (await call('GET', '/api/v1/namespaces/shop/endpoints/web')).json?.subsets?.[0]?.addresses?.[0], 'the service selects the pod');
  t.same([ep.ip, ep.nodeName], [ip, 'node-a'], 'endpoint = the pod IP on node-a');

  const del = await invoke('DEL', conf);
  t.equal(del.exitCode, 0, `DEL ${describe(del)}`);
  t.equal((await call('GET', '/api/v1/namespaces/shop/pods/web-1')).statusCode, 404, 'DEL removed the Pod');
  await eventually(async () => (await call('GET', '/api/v1/namespaces/shop/endpoints/web')).json?.subsets?.length === 0, 'the endpoints emptied');
  t.equal((await invoke('DEL', conf)).exitCode, 0, 'a second DEL succeeds');

  // The pod's name now belongs to a pod on another node (node-a's token cannot even read it): DEL leaves it alone.
  t.equal((await invoke('ADD', conf)).exitCode, 0, 'ADD again');
  t.equal((await call('DELETE', '/api/v1/namespaces/shop/pods/web-1')).statusCode, 200);
  const elsewhere = { metadata: { name: 'web-1', namespace: 'shop' }, spec: { nodeName: 'node-b' }, status: { phase: 'Running', podIP: '10.244.0.9', podIPs: [{ ip: '10.244.0.9' }] } };
  t.equal((await call('POST', '/api/v1/namespaces/shop/pods', elsewhere)).statusCode, 201);
  const delMoved = await invoke('DEL', conf);
  t.equal(delMoved.exitCode, 0, `DEL of a pod rebound to another node succeeds: ${describe(delMoved)}`);
  t.equal((await call('GET', '/api/v1/namespaces/shop/pods/web-1')).json?.spec?.nodeName, 'node-b', "and leaves the other node's Pod");
  t.equal((await call('DELETE', '/api/v1/namespaces/shop/pods/web-1')).statusCode, 200);

  // A token of another node: the control plane refuses the Pod, so the ADD fails and is undone.
  const otherToken = path.join(dir, 'node-b.token');
  fs.writeFileSync(otherToken, (await call('POST', '/api/v1/nodes/node-b/token')).json.token, { mode: 0o600 });
  const refused = await invoke('ADD', { ...conf, controlPlane: { ...conf.controlPlane, tokenFile: otherToken } });
  t.equal(refused.error?.code, 105, `a refused registration fails the ADD: ${describe(refused)}`);
  t.match(refused.error?.msg ?? '', /Forbidden/);
  t.same(veths(host), [], 'no veth left');
  t.same(reservations(dataDir), [], 'no IP left reserved');

  const badLabels = await invoke('ADD', conf, { args: 'K8S_POD_NAME=x;PODWIRE_LABELS=app' });
  t.equal(badLabels.error?.code, 4, 'malformed PODWIRE_LABELS: invalid environment');
  t.same(veths(host), [], 'nothing touched for bad labels');

  // Control plane down: ADD fails cleanly; DEL cleans the node and reports the unregistration.
  const up = await invoke('ADD', conf);
  t.equal(up.exitCode, 0, describe(up));
  app.server.close();
  app.server.closeAllConnections();
  const delDown = await invoke('DEL', conf);
  t.equal(delDown.error?.code, 105, `DEL with the control plane down: ${describe(delDown)}`);
  t.same(veths(host), [], 'but the node is cleaned');
  t.same(reservations(dataDir), [], 'and the IP released');
  const addDown = await invoke('ADD', conf);
  t.equal(addDown.error?.code, 105, 'ADD with the control plane down fails');
  t.match(addDown.error?.details ?? '', /unreachable/);
  t.same(veths(host), [], 'and leaves no veth');
  t.same(reservations(dataDir), [], 'and no reservation');
});
