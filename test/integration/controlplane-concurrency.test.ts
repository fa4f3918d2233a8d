// Allocation under concurrency, against the real binary: 100 nodes registering at once with their
// own node tokens, and 100 NodePort services created at once, must get distinct podCIDRs,
// ClusterIPs and nodePorts — with SQLite, and with two control plane processes sharing one etcd
// (the HA set-up, where only etcd's compare-and-swap keeps the allocations apart).
import t, { type Test } from 'tap';
import fs from 'node:fs';
import { ApiClient } from '../../src/client/api-client.js';
import type { Node, Service } from '../../src/api/objects.js';
import { initDataDir, startControlPlane, type RunningControlPlane } from '../lib/controlplane-process.js';
import { haveEtcd, startEtcd } from '../lib/etcd.js';
import { node, service } from '../lib/controlplane.js';

const COUNT = 100;

async function burst(t: Test, servers: RunningControlPlane[]): Promise<void> {
  const admins = servers.map((s) => new ApiClient({ server: s.url, token: s.token, timeoutMs: 60_000 }));
  t.teardown(() => admins.forEach((c) => c.close()));
  const names = Array.from({ length: COUNT }, (_, i) => `node-${String(i).padStart(3, '0')}`);
  const tokens = await Promise.all(names.map((n, i) => admins[i % admins.length]!.request<{ token: string }>('POST', `/api/v1/nodes/${n}/token`).then((r) => r.token)));
  const nodeClients = names.map((_, i) => new ApiClient({ server: servers[i % servers.length]!.url, token: tokens[i], timeoutMs: 60_000 }));
  t.teardown(() => nodeClients.forEach((c) => c.close()));

  const registered = await Promise.all(names.map((n, i) => nodeClients[i]!.create<Node>({ plural: 'nodes' }, node(n))));
  const cidrs = registered.map((n) => n.spec.podCIDR);
  t.equal(new Set(cidrs).size, COUNT, `${COUNT} concurrent registrations: ${COUNT} distinct podCIDRs`);
  t.ok(cidrs.every((c) => /^10\.244\.\d+\.0\/24$/.test(c ?? '')), 'all from the cluster CIDR');

  // Re-registration (an agent restarting) under the same name keeps the podCIDR.
  const again = await Promise.all(registered.map((n, i) => nodeClients[i]!.update<Node>({ plural: 'nodes', name: n.metadata.name }, { ...n, metadata: { ...n.metadata, resourceVersion: undefined }, spec: {} })));
  t.same(again.map((n) => n.spec.podCIDR), cidrs, 'podCIDRs stable on re-registration');

  const services = await Promise.all(Array.from({ length: COUNT }, (_, i) => admins[i % admins.length]!.create<Service>({ plural: 'services', namespace: 'default' }, service(`svc-${i}`, { type: 'NodePort', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 443 }] }))));
  const ips = services.map((s) => s.spec.clusterIP);
  const ports = services.flatMap((s) => (s.spec.ports ?? []).map((p) => p.nodePort));
  t.equal(new Set(ips).size, COUNT, `${COUNT} concurrent services: distinct ClusterIPs`);
  t.equal(new Set(ports).size, 2 * COUNT, `${2 * COUNT} distinct nodePorts`);
  const stored = await admins[0]!.list<Service>({ plural: 'services', namespace: 'default' });
  t.equal(stored.items.length, COUNT, 'every service stored once');
}

t.test('SQLite: 100 concurrent registrations and services, no duplicate podCIDR / ClusterIP / nodePort', async (t) => {
  const cp = await startControlPlane();
  t.teardown(async () => {
    await cp.stop();
    fs.rmSync(cp.dir, { recursive: true, force: true });
  });
  await burst(t, [cp]);
});

t.test('etcd, two control planes on one etcd: the same, split across both instances', { skip: haveEtcd() ? false : 'etcd not installed' }, async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const dir = initDataDir();
  const args = ['--store', 'etcd', '--etcd-endpoints', etcd.url, '--etcd-prefix', '/pw-ha'];
  const a = await startControlPlane({ dir, args });
  const b = await startControlPlane({ dir, args });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await burst(t, [a, b]);
});
