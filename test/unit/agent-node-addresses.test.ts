// The service proxy follows this node's addresses: the agent's node informer hands its own Node
// to onSelf (src/agent/agent.ts), proxyNodeIps picks the addresses NodePorts answer on
// (node-object.ts), and ServiceProxy.setNodeIps makes the next sync a full one with them
// (src/proxy/changes.ts setNode). Against an in-process control plane on a unix socket, with a
// recording proxy backend and no kernel.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, type AgentLog } from '../../src/agent/agent.js';
import { proxyNodeIps } from '../../src/agent/node-object.js';
import { ServiceProxy } from '../../src/agent/service-proxy.js';
import { ApiClient } from '../../src/client/api-client.js';
import type { Node } from '../../src/api/objects.js';
import type { Handle } from '../../src/netlink/handle.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import type { ProxyInput } from '../../src/proxy/types.js';
import { ADMIN_TOKEN, eventually, node, service, testServer } from '../lib/controlplane.js';

const quiet: AgentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface SyncCall { nodeIPs: string[]; full: boolean; ports: number }

function recordingBackend(): ProxyBackend & { calls: SyncCall[] } {
  const calls: SyncCall[] = [];
  return {
    mode: 'nftables',
    calls,
    sync(input: ProxyInput, changed: ReadonlySet<string> | undefined) {
      calls.push({ nodeIPs: [...input.nodeIPs], full: changed === undefined, ports: input.ports.length });
      return { scope: changed === undefined ? 'full' : 'partial', bytes: 1, ms: 0 };
    },
    remove: () => undefined,
    intact: () => true,
  };
}

async function listeningServer(t: Test) {
  const server = await testServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-nodeaddr-'));
  const socketPath = path.join(dir, 'api.sock');
  await server.app.listen({ path: socketPath });
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const client = (token = ADMIN_TOKEN) => {
    const c = new ApiClient({ server: 'http://podwire', socketPath, token, timeoutMs: 5000 });
    t.teardown(() => c.close());
    return c;
  };
  return { server, dir, client };
}

t.test('proxyNodeIps: InternalIP then ExternalIP addresses of the Node, deduplicated; the fallback when it lists none', async (t) => {
  const n = (addresses: unknown[]): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: {}, status: { addresses } } as Node);
  t.same(proxyNodeIps(n([{ type: 'ExternalIP', address: '203.0.113.5' }, { type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '192.0.2.11' }]), ['192.0.2.11']), ['192.0.2.11', '203.0.113.5']);
  t.same(proxyNodeIps(n([{ type: 'InternalIP', address: '192.0.2.11' }, { type: 'ExternalIP', address: '192.0.2.11' }, { type: 'InternalIP', address: 'not-an-ip' }]), []), ['192.0.2.11'], 'duplicates and non-IPs left out');
  t.same(proxyNodeIps(n([{ type: 'Hostname', address: 'n1' }]), ['192.0.2.11']), ['192.0.2.11'], 'no IP address: the fallback');
  t.same(proxyNodeIps(undefined, ['192.0.2.11']), ['192.0.2.11'], 'no Node yet: the fallback');
});

t.test('service proxy: new node addresses make the next sync full, with them; the same addresses sync nothing', async (t) => {
  const { server, client } = await listeningServer(t);
  const backend = recordingBackend();
  const proxy = new ServiceProxy({ client: client(), backend, others: [], runner: { run: () => ({ code: 0, stdout: '', stderr: '' }) }, nodeName: 'n1', nodeIPs: ['192.0.2.11'], clusterCidrs: ['10.244.0.0/16'], log: quiet });
  t.teardown(() => proxy.stop());
  proxy.start();
  await eventually(async () => backend.calls.length >= 1, 'the first sync');
  await proxy.settled();
  t.same(backend.calls, [{ nodeIPs: ['192.0.2.11'], full: true, ports: 0 }], 'the first sync is full, with the start-up addresses');
  const created = await server.call('POST', '/api/v1/namespaces/default/services', service('web', { type: 'NodePort' }));
  t.equal(created.statusCode, 201, `service created${created.statusCode === 201 ? '' : `: ${created.body}`}`);
  await eventually(async () => backend.calls.length >= 2, 'the service synced');
  await proxy.settled();
  t.same(backend.calls[1], { nodeIPs: ['192.0.2.11'], full: false, ports: 1 }, 'a service change: a partial sync');
  proxy.setNodeIps(['192.0.2.11']);
  await new Promise((r) => setTimeout(r, 150));
  await proxy.settled();
  t.equal(backend.calls.length, 2, 'the same addresses: no sync');
  proxy.setNodeIps(['192.0.2.11', '192.0.2.77']);
  await eventually(async () => backend.calls.length >= 3, 'the sync after the address change');
  await proxy.settled();
  t.same(backend.calls[2], { nodeIPs: ['192.0.2.11', '192.0.2.77'], full: true, ports: 1 }, 'a full sync with the new addresses');
  proxy.setNodeIps(['192.0.2.77']);
  await eventually(async () => backend.calls.length >= 4, 'the sync after an address went');
  t.same(backend.calls[3], { nodeIPs: ['192.0.2.77'], full: true, ports: 1 }, 'an address removed: full again');
});

t.test('agent: its own Node, as listed and on every update, goes to onSelf; other Nodes do not', async (t) => {
  const { server, dir, client } = await listeningServer(t);
  const token = await server.nodeToken('n1');
  const seen: { name: string; ips: string[] }[] = [];
  // No kernel here: any netlink call fails the network sync (logged), which this test does not need.
  const noKernel = new Proxy({}, { get: () => () => { throw new Error('no kernel in this test'); } }) as Handle;
  const agent = new Agent({
    client: client(token), handle: noKernel, masq: { sync: () => undefined }, nodeName: 'n1', underlay: { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 1500 },
    vtepMac: '02:00:00:00:00:01', runDir: path.join(dir, 'run'), log: quiet, prepareNode: () => undefined, reconciler: { maxBackoffMs: 60_000 },
    onSelf: (n) => seen.push({ name: n.metadata.name, ips: proxyNodeIps(n, []) }),
  });
  t.teardown(() => agent.stop());
  await agent.start();
  await eventually(async () => seen.length >= 1, 'the listed own Node');
  t.same(seen, [{ name: 'n1', ips: ['192.0.2.11'] }], 'the registered Node, with its InternalIP');
  t.equal(agent.selfNode()?.metadata.name, 'n1', 'selfNode() is the cached own Node');
  t.equal((await server.call('POST', '/api/v1/nodes', node('n2'))).statusCode, 201, 'another Node created');
  const live = (await server.call('GET', '/api/v1/nodes/n1')).json as Node;
  live.status!.addresses = [...(live.status!.addresses ?? []), { type: 'ExternalIP', address: '192.0.2.77' }];
  const put = await server.call('PUT', '/api/v1/nodes/n1', live);
  t.equal(put.statusCode, 200, `Node updated${put.statusCode === 200 ? '' : `: ${put.body}`}`);
  await eventually(async () => seen.some((s) => s.ips.includes('192.0.2.77')), 'the updated own Node');
  t.ok(seen.every((s) => s.name === 'n1'), `only n1 (${seen.map((s) => s.name).join(' ')})`);
  t.same(seen.at(-1), { name: 'n1', ips: ['192.0.2.11', '192.0.2.77'] }, 'with the new ExternalIP');
});
