// kube-system/kube-dns's Endpoints from the nodes' DNS servers (src/controlplane/endpoints/node-dns.ts
// and the endpoints controller): each agent publishes podwire.io/dns-endpoint (its pod gateway)
// while it serves; the control plane keeps the Endpoints from them while kube-dns has no selector.
// A node may only publish an address of its own podCIDR; hand-written Endpoints are left alone.
import t from 'tap';
import { NODE_ANNOTATIONS, type Node, type Service } from '../../src/api/objects.js';
import { nodeDnsSubsets } from '../../src/controlplane/endpoints/node-dns.js';
import { nodeBody } from '../../src/agent/node-object.js';
import { vtepMacFor } from '../../src/agent/network/desired.js';
import { clusterDnsServiceBody } from '../../src/controlplane/api/cluster-dns.js';
import { eventually, node, testServer } from '../lib/controlplane.js';

const DNS = NODE_ANNOTATIONS.dnsEndpoint;
const MERGE = { 'content-type': 'application/merge-patch+json' };
const KUBE_DNS_EP = '/api/v1/namespaces/kube-system/endpoints/kube-dns';
const withDns = (name: string, ip?: string): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, ...(ip ? { annotations: { [DNS]: ip } } : {}) }, spec: {} }) as Node;

t.test('nodeDnsSubsets: one subset of the published addresses (sorted, deduplicated, bad ones ignored) × the Service ports', async (t) => {
  const svc = clusterDnsServiceBody({ clusterDNS: '10.96.0.10' });
  const subsets = nodeDnsSubsets(svc, [withDns('n3', '10.244.3.1'), withDns('n1', '10.244.10.1'), withDns('n2', '10.244.2.1'), withDns('n4'), withDns('n5', 'not-an-ip'), withDns('n6', '10.244.2.1')]);
  t.same(subsets, [{
    addresses: [{ ip: '10.244.2.1', nodeName: 'n2' }, { ip: '10.244.3.1', nodeName: 'n3' }, { ip: '10.244.10.1', nodeName: 'n1' }],
    ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }],
  }]);
  t.same(nodeDnsSubsets(svc, [withDns('n1')]), [], 'no node serving: no subset');
  const other: Service = { ...svc, spec: { ...svc.spec, ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] } };
  t.same(nodeDnsSubsets(other, [withDns('n1', '10.244.1.1')])[0]!.ports, [{ name: 'dns', port: 5353, protocol: 'UDP' }], 'a numeric targetPort is the endpoint port');
  t.same(JSON.stringify(nodeDnsSubsets(svc, [withDns('b', '10.244.2.1'), withDns('a', '10.244.1.1')])), JSON.stringify(nodeDnsSubsets(svc, [withDns('a', '10.244.1.1'), withDns('b', '10.244.2.1')])), 'order of the nodes does not matter');
});

t.test('the controller keeps kube-dns from the nodes: publish, withdraw, node deleted, selector, hand-written', async (t) => {
  const s = await testServer({ clusterDnsService: true });
  t.teardown(() => s.close());
  const n1 = await s.nodeToken('n1');
  const reg = await s.call('POST', '/api/v1/nodes', nodeBody({ nodeName: 'n1', underlay: { ip: '192.0.2.11', cidr: '192.0.2.11/24', ifname: 'eth0', ifindex: 2, mtu: 1500 }, vtepMac: vtepMacFor('n1'), backend: 'vxlan' }), n1);
  t.equal(reg.statusCode, 201, reg.body);
  const gw1 = (reg.json.spec.podCIDR as string).replace(/0\/24$/, '1');
  t.equal((await s.call('POST', '/api/v1/nodes', node('n2', { metadata: { name: 'n2', annotations: { [DNS]: '10.244.200.1' } }, spec: { podCIDR: '10.244.200.0/24' } }))).statusCode, 201);
  const ips = async () => ((await s.call('GET', KUBE_DNS_EP)).json?.subsets?.[0]?.addresses ?? []).map((a: { ip: string }) => a.ip);
  await eventually(async () => (await ips()).join() === '10.244.200.1' || undefined, 'n2 (admin-made with the annotation) is an endpoint');

  // Node restriction: only an address of the node's own podCIDR, and only a valid IP.
  const foreign = await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: '10.244.200.1' } } }, n1, MERGE);
  t.equal(foreign.statusCode, 403, 'another node\'s gateway is refused');
  t.match(foreign.json.message, /podwire\.io\/dns-endpoint 10\.244\.200\.1 is outside node "n1"'s podCIDR/);
  const outside = await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: '192.0.2.99' } } }, n1, MERGE);
  t.equal(outside.statusCode, 403, 'an underlay address is refused');
  const bad = await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: '10.244.0.01' } } }, n1, MERGE);
  t.equal(bad.statusCode, 400, `a malformed address is invalid (podwire's 400 for every bad input): ${bad.json?.message}`);
  t.same(await ips(), ['10.244.200.1'], 'nothing changed by the refused writes');

  const own = await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: gw1 } } }, n1, MERGE);
  t.equal(own.statusCode, 200, own.body);
  await eventually(async () => (await ips()).length === 2 || undefined, 'n1 joins');
  const ep = (await s.call('GET', KUBE_DNS_EP)).json;
  t.same(ep.subsets[0].ports, [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }]);
  t.same(ep.subsets[0].addresses.find((a: { ip: string }) => a.ip === gw1), { ip: gw1, nodeName: 'n1' });
  t.equal(ep.metadata.labels['endpoints.podwire.io/managed-by'], 'podwire-controlplane');

  t.equal((await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: null } } }, n1, MERGE)).statusCode, 200);
  await eventually(async () => (await ips()).join() === '10.244.200.1' || undefined, 'n1 withdrawn');
  t.equal((await s.call('DELETE', '/api/v1/nodes/n2')).statusCode, 200);
  await eventually(async () => ((await s.call('GET', KUBE_DNS_EP)).json?.subsets?.length === 0) || undefined, 'no node left: empty subsets');

  // A selector hands kube-dns to pods (a CoreDNS deployment): the nodes no longer count.
  t.equal((await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: gw1 } } }, n1, MERGE)).statusCode, 200);
  await eventually(async () => (await ips()).join() === gw1 || undefined, 'n1 back');
  t.equal((await s.call('PATCH', '/api/v1/namespaces/kube-system/services/kube-dns', { spec: { selector: { 'k8s-app': 'kube-dns' } } }, undefined, MERGE)).statusCode, 200);
  await eventually(async () => ((await s.call('GET', KUBE_DNS_EP)).json?.subsets?.length === 0) || undefined, 'selected pods (none) replace the nodes');

  // Without a selector again, Endpoints written by hand (no managed-by label) are left alone.
  t.equal((await s.call('PATCH', '/api/v1/namespaces/kube-system/services/kube-dns', { spec: { selector: null } }, undefined, MERGE)).statusCode, 200);
  await eventually(async () => (await ips()).join() === gw1 || undefined, 'the nodes again');
  t.equal((await s.call('DELETE', KUBE_DNS_EP)).statusCode, 200);
  const hand = await s.call('POST', '/api/v1/namespaces/kube-system/endpoints', { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kube-dns' }, subsets: [{ addresses: [{ ip: '10.244.0.53' }], ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }] });
  t.equal(hand.statusCode, 201, hand.body);
  t.equal((await s.call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { [DNS]: null } } }, n1, MERGE)).statusCode, 200);
  await new Promise((r) => setTimeout(r, 100));
  t.same(await ips(), ['10.244.0.53'], 'hand-written Endpoints kept');
});
