// NodePorts follow the node's addresses (nftables mode, which answers NodePorts on the Node's
// InternalIP/ExternalIP addresses only, the set svc-nodeport-ips): in a 1-node lab cluster the
// node gets a second underlay address, the Node an ExternalIP for it, and the NodePort then
// answers there from outside; once the Node drops it, it no longer does. The agent's node
// informer hands its own Node to the service proxy (ServiceProxy.setNodeIps), whose next sync is
// a full one. The extra address lives on the node's eth0 inside the lab's pw- netns.
import t from 'tap';
import { agentStatus, createEchoService, waitFor, type ClusterNode } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import type { Node } from '../../src/api/objects.js';
import { NODEPORT_IPS_SET } from '../../src/proxy/nft/render.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { inNetns, probe } from '../lib/proxy-e2e.js';

const EXTRA_IP = '192.0.2.77';

function nodePortIps(n: ClusterNode): string[] {
  const out = JSON.parse(inNetns(n.netns, 'nft', ['-j', 'list', 'set', 'inet', 'podwire', NODEPORT_IPS_SET])) as { nftables: { set?: { elem?: string[] } }[] };
  return out.nftables.flatMap((o) => o.set?.elem ?? []).sort();
}

type ProxyStatus = { proxy?: { lastSync?: { at: string; scope: string; error?: string } } };

t.test('nftables proxy: NodePorts follow the addresses of the node\'s Node', { skip: SKIP_NOT_ROOT, timeout: 120_000 }, async (t) => {
  const c = await withCluster(t, { nodes: 1, backend: 'vxlan', podsPerNode: 1 });
  const n1 = c.nodes[0]!;
  const svc = await createEchoService(c);
  const nodePort = svc.spec.ports![0]!.nodePort!;
  const pod = c.pods[0]!;
  await waitFor('NodePort answers on the underlay address from outside', async () => (await probe(c, c.outside.netns, [`${n1.underlayIp}:${nodePort}`]))[0]!.ok, 20_000);
  t.same(nodePortIps(n1), [n1.underlayIp], 'the NodePort addresses: the Node\'s InternalIP');
  inNetns(n1.netns, 'ip', ['addr', 'add', `${EXTRA_IP}/24`, 'dev', 'eth0']);
  const before = (await probe(c, c.outside.netns, [`${EXTRA_IP}:${nodePort}`]))[0]!;
  t.notOk(before.ok, `a node address the Node does not list: no NodePort there (${before.error})`);

  const setAddresses = async (extra: boolean) => {
    const live = await c.admin.get<Node>({ plural: 'nodes', name: n1.name });
    const kept = (live.status?.addresses ?? []).filter((a) => a.type !== 'ExternalIP');
    live.status = { ...(live.status ?? {}), addresses: [...kept, ...(extra ? [{ type: 'ExternalIP' as const, address: EXTRA_IP }] : [])] };
    await c.admin.update<Node>({ plural: 'nodes', name: n1.name }, live);
  };
  const lastSyncAt = async () => ((await agentStatus(n1)) as ProxyStatus).proxy?.lastSync?.at ?? '';

  const at0 = await lastSyncAt();
  await setAddresses(true);
  await waitFor(`${EXTRA_IP} in ${NODEPORT_IPS_SET}`, () => nodePortIps(n1).includes(EXTRA_IP), 15_000);
  t.same(nodePortIps(n1), [n1.underlayIp, EXTRA_IP].sort(), 'the NodePort addresses: InternalIP and ExternalIP');
  const st = ((await agentStatus(n1)) as ProxyStatus).proxy?.lastSync;
  t.ok(st && st.at > at0 && st.scope === 'full' && !st.error, `a full sync followed the change (${JSON.stringify(st)})`);
  const there = (await probe(c, c.outside.netns, [`${EXTRA_IP}:${nodePort}`]))[0]!;
  t.ok(there.ok && there.name === pod.name, `the NodePort answers on the new address from outside (${JSON.stringify(there)})`);

  await setAddresses(false);
  await waitFor(`${EXTRA_IP} gone from ${NODEPORT_IPS_SET}`, () => !nodePortIps(n1).includes(EXTRA_IP), 15_000);
  t.same(nodePortIps(n1), [n1.underlayIp], 'the ExternalIP removed: only the InternalIP again');
  const after = (await probe(c, c.outside.netns, [`${EXTRA_IP}:${nodePort}`]))[0]!;
  t.notOk(after.ok, `and the NodePort no longer answers there (${after.error})`);
  const still = (await probe(c, c.outside.netns, [`${n1.underlayIp}:${nodePort}`]))[0]!;
  t.ok(still.ok, 'while it still does on the InternalIP');
});
