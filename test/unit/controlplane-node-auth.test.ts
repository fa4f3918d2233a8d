// What a node token may do (src/controlplane/api/auth.ts + node-restriction.ts): pod IPs only
// from its own podCIDR, reads of only its own Pods, its own Node without deleting it, choosing a
// podCIDR, unusable underlay addresses or another node's VTEP MAC. Admin tokens are not limited.
import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../src/client/api-client.js';
import type { WatchEventBody } from '../../src/api/objects.js';
import { nodeBody } from '../../src/agent/node-object.js';
import { vtepMacFor } from '../../src/agent/network/desired.js';
import { eventually, node, pod, service, testServer, type TestServer } from '../lib/controlplane.js';

/** An admin-made n2 (10.244.0.0/24, the first CIDR) and n1 registered with its own token (10.244.1.0/24). */
async function cluster(t: Test): Promise<{ s: TestServer; n1: string; as1: (m: string, url: string, body?: unknown, headers?: Record<string, string>) => ReturnType<TestServer['call']> }> {
  const s = await testServer();
  t.teardown(() => s.close());
  t.equal((await s.call('POST', '/api/v1/nodes', node('n2', { spec: { podCIDR: '10.244.9.0/24' } }))).statusCode, 201);
  const n1 = await s.nodeToken('n1');
  const as1 = (m: string, url: string, body?: unknown, headers?: Record<string, string>) => s.call(m, url, body, n1, headers);
  const reg = await as1('POST', '/api/v1/nodes', agentNode('n1', '192.0.2.11'));
  t.equal(reg.statusCode, 201, reg.body);
  t.equal(reg.json.spec.podCIDR, '10.244.0.0/24', 'n1 got its podCIDR from the allocator');
  return { s, n1, as1 };
}

const agentNode = (name: string, ip: string) => nodeBody({ nodeName: name, underlay: { ip, cidr: `${ip}/24`, ifname: 'eth0', ifindex: 2, mtu: 1500 }, vtepMac: vtepMacFor(name), backend: 'vxlan' });

const reasonOf = (r: { statusCode: number; json: any }) => [r.statusCode, r.json?.reason];

t.test('item 4: a node token may report only pod IPs from its own podCIDR', async (t) => {
  const { s, as1 } = await cluster(t);
  t.equal((await s.call('POST', '/api/v1/namespaces/default/services', service('web'))).statusCode, 201);
  const pods = '/api/v1/namespaces/default/pods';

  const foreign = await as1('POST', pods, pod('stolen', 'n1', '10.244.9.9', { app: 'web' }));
  t.same(reasonOf(foreign), [403, 'Forbidden'], `another node's pod IP: ${foreign.body}`);
  t.match(foreign.json.message, /pod IP 10\.244\.9\.9 .*outside node "n1"'s podCIDR 10\.244\.0\.0\/24/);
  const clusterIp = await as1('POST', pods, pod('svcip', 'n1', '10.96.0.1', { app: 'web' }, false));
  t.same(reasonOf(clusterIp), [403, 'Forbidden'], 'a ClusterIP as pod IP');
  t.match(clusterIp.json.message, /10\.96\.0\.1/);
  const second = await as1('POST', pods, { ...(pod('dual', 'n1', '10.244.0.7', { app: 'web' }) as any), status: { phase: 'Running', podIP: '10.244.0.7', podIPs: [{ ip: '10.244.0.7' }, { ip: 'fd00::7' }] } });
  t.same(reasonOf(second), [403, 'Forbidden'], 'every podIPs entry is checked');
  t.match(second.json.message, /fd00::7/);

  const mine = await as1('POST', pods, pod('mine', 'n1', '10.244.0.5', { app: 'web' }));
  t.equal(mine.statusCode, 201, mine.body);
  const ep = await eventually(async () => (await s.call('GET', '/api/v1/namespaces/default/endpoints/web')).json?.subsets?.[0], 'endpoints for the own pod');
  t.same(ep.addresses.map((a: { ip: string }) => a.ip), ['10.244.0.5'], 'only the pod from the own podCIDR is an endpoint');
  t.notOk(ep.notReadyAddresses, 'nothing not-ready either');

  // Updates are checked too: PUT and merge patch.
  const put = await as1('PUT', `${pods}/mine`, { ...mine.json, status: { ...mine.json.status, podIP: '10.244.9.9', podIPs: [{ ip: '10.244.9.9' }] } });
  t.same(reasonOf(put), [403, 'Forbidden'], 'PUT to a foreign IP');
  const patch = await as1('PATCH', `${pods}/mine`, { status: { podIP: '10.96.0.1', podIPs: [{ ip: '10.96.0.1' }] } }, { 'content-type': 'application/merge-patch+json' });
  t.same(reasonOf(patch), [403, 'Forbidden'], 'PATCH to a foreign IP');
  t.equal((await s.call('GET', `${pods}/mine`)).json.status.podIP, '10.244.0.5', 'the stored pod is unchanged');
  t.equal((await as1('PATCH', `${pods}/mine`, { metadata: { labels: { app: 'web', v: '2' } } }, { 'content-type': 'application/merge-patch+json' })).statusCode, 200, 'other changes to an own pod still work');
  t.equal((await as1('POST', pods, pod('pending', 'n1', undefined, { app: 'web' }, false))).statusCode, 201, 'a pod without an IP yet is fine');

  // Admins are not limited.
  t.equal((await s.call('POST', pods, pod('by-admin', 'n1', '10.244.9.10', { app: 'web' }))).statusCode, 201, 'an admin may write any pod IP');
});

t.test('a node without a Node object (no podCIDR) cannot report pod IPs at all', async (t) => {
  const s = await testServer();
  t.teardown(() => s.close());
  const tok = await s.nodeToken('ghost');
  const r = await s.call('POST', '/api/v1/namespaces/default/pods', pod('p', 'ghost', '10.244.0.5', {}), tok);
  t.same(reasonOf(r), [403, 'Forbidden'], r.body);
  t.match(r.json.message, /no podCIDR \(register the Node first\)/);
});

t.test('a node token reads only the Pods bound to it', async (t) => {
  const { s, as1 } = await cluster(t);
  const pods = '/api/v1/namespaces/default/pods';
  t.equal((await s.call('POST', pods, pod('theirs', 'n2', '10.244.9.5', {}))).statusCode, 201);
  t.equal((await as1('POST', pods, pod('mine', 'n1', '10.244.0.5', {}))).statusCode, 201);

  t.same(reasonOf(await as1('GET', `${pods}/theirs`)), [403, 'Forbidden'], "GET of another node's pod");
  t.equal((await as1('GET', `${pods}/mine`)).statusCode, 200, 'GET of its own pod');
  t.equal((await as1('GET', `${pods}/missing`)).statusCode, 404, 'GET of a missing pod: 404');
  for (const url of [pods, '/api/v1/pods', `${pods}?fieldSelector=spec.nodeName%3Dn2`, `${pods}?fieldSelector=spec.nodeName!%3Dn1`, `/api/v1/pods?watch=1&timeoutSeconds=1`]) {
    const r = await as1('GET', url);
    t.same(reasonOf(r), [403, 'Forbidden'], `GET ${url}`);
    t.match(r.json.message, /fieldSelector=spec\.nodeName=n1/);
  }
  const own = await as1('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3Dn1`);
  t.equal(own.statusCode, 200, own.body);
  t.same(own.json.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['mine'], 'the list holds only its own pods');
  t.equal((await s.call('GET', pods)).json.items.length, 2, 'admins list everything');

  // A watch with the selector works (over HTTP: a watch stream is not an inject() response).
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const client = new ApiClient({ server: `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`, token: (await s.nodeToken('n1')) });
  t.teardown(() => client.close());
  const events: WatchEventBody[] = [];
  const stream = await client.watch({ plural: 'pods' }, { fieldSelector: 'spec.nodeName=n1' }, (ev) => events.push(ev));
  t.teardown(() => stream.close());
  await s.call('POST', pods, pod('theirs-2', 'n2', '10.244.9.6', {}));
  await s.call('POST', pods, pod('mine-2', 'n1', '10.244.0.6', {}));
  await eventually(async () => events.length >= 2, 'watch events');
  t.same(events.map((e) => (e.object as { metadata: { name: string } }).metadata.name), ['mine', 'mine-2'], 'only its own pods, also on the watch');
});

t.test('a node token writes its own Node, but may not delete it, pick a podCIDR, use unusable addresses or another VTEP MAC', async (t) => {
  const { s, as1 } = await cluster(t);
  const self = '/api/v1/nodes/n1';
  const live = (await as1('GET', self)).json;
  const put = (mutate: (n: any) => void) => {
    const body = structuredClone(live);
    delete body.metadata.resourceVersion;
    mutate(body);
    return as1('PUT', self, body);
  };

  const move = await put((n) => (n.spec = { podCIDR: '10.244.5.0/24', podCIDRs: ['10.244.5.0/24'] }));
  t.same(reasonOf(move), [403, 'Forbidden'], 'a node may not change its podCIDR');
  t.match(move.json.message, /may not choose or change its podCIDR \(it is 10\.244\.0\.0\/24\)/);
  const s3 = await s.nodeToken('n3');
  const pick = await s.call('POST', '/api/v1/nodes', node('n3', { spec: { podCIDR: '10.244.7.0/24' } }), s3);
  t.same(reasonOf(pick), [403, 'Forbidden'], 'a registering node may not pick a podCIDR');
  t.equal((await s.call('POST', '/api/v1/nodes', node('n3', { spec: {} }), s3)).statusCode, 201, 'an empty podCIDR is allocated');

  for (const [what, ip] of [['loopback', '127.0.0.1'], ['unspecified', '0.0.0.0'], ['multicast', '224.0.0.5'], ['broadcast', '255.255.255.255'], ['link-local', '169.254.1.1'], ['a pod IP', '10.244.9.9'], ['a ClusterIP', '10.96.0.10'], ['IPv6 loopback', '::1'], ['IPv4-mapped loopback', '::ffff:127.0.0.1'], ['IPv4-mapped pod IP', '::ffff:10.244.9.9']]) {
    const r = await put((n) => (n.status.addresses = [{ type: 'InternalIP', address: ip }]));
    t.same(reasonOf(r), [403, 'Forbidden'], `InternalIP ${ip} (${what}): ${r.json?.message}`);
  }
  const annotated = await put((n) => (n.metadata.annotations['podwire.io/public-ip'] = '10.244.9.1'));
  t.same(reasonOf(annotated), [403, 'Forbidden'], 'the public-ip annotation is checked too');
  t.match(annotated.json.message, /annotation podwire\.io\/public-ip 10\.244\.9\.1 is inside the cluster CIDR/);

  t.equal((await s.call('PATCH', '/api/v1/nodes/n2', { metadata: { annotations: { 'podwire.io/vtep-mac': vtepMacFor('n2') } } }, undefined, { 'content-type': 'application/merge-patch+json' })).statusCode, 200);
  const mac = await put((n) => (n.metadata.annotations['podwire.io/vtep-mac'] = vtepMacFor('n2').toUpperCase()));
  t.same(reasonOf(mac), [403, 'Forbidden'], "another node's VTEP MAC");
  t.match(mac.json.message, /is node "n2"'s VTEP MAC/);

  // What the agent writes keeps working: re-registration and the readiness condition.
  const again = await put((n) => Object.assign(n, agentNode('n1', '192.0.2.11'), { spec: n.spec }));
  t.equal(again.statusCode, 200, again.body);
  t.equal((await put((n) => (n.status.addresses = [{ type: 'InternalIP', address: '2001:db8::11' }, { type: 'Hostname', address: 'n1' }]))).statusCode, 200, 'an IPv6 underlay address is fine');
  t.equal((await s.call('PUT', '/api/v1/nodes/n2', { ...node('n2'), status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] } })).statusCode, 200, 'admins are not limited');

  const del = await as1('DELETE', self);
  t.same(reasonOf(del), [403, 'Forbidden'], 'a node may not delete its own Node');
  t.match(del.json.message, /may not delete Node objects, not even its own/);
  t.equal((await s.call('GET', self)).statusCode, 200, 'n1 still exists');
});
