// GET /v1/debug/peers (src/agent/debug/peers.ts) on a Fastify app with a stub agent and a stub
// netlink handle: 503 before registration; afterwards the peer diff of desiredNetwork() against
// what the handle lists (here: an empty kernel, so every entry is missing).
import t from 'tap';
import Fastify from 'fastify';
import type { Handle } from '../../src/netlink/handle.js';
import type { NetworkInput } from '../../src/agent/network/types.js';
import { registerPeerRoutes } from '../../src/agent/debug/peers.js';

const INPUT: NetworkInput = {
  nodeName: 'node1',
  underlay: { ifname: 'eth0', ifindex: 2, ip: '192.0.2.11', cidr: '192.0.2.11/24', mtu: 1500 },
  podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16', backend: 'vxlan', vni: 1, vxlanPort: 8472, vtepMac: '02:00:00:00:00:01',
  peers: [{ name: 'node2', podCidr: '10.244.2.0/24', publicIp: '192.0.2.12', vtepMac: '02:00:00:00:00:02' }],
};

const emptyKernel = {
  linkFind: () => undefined, addrList: () => [], routeList: () => [], neighList: () => [], fdbList: () => [],
} as unknown as Handle;

t.test('503 before registration, then every entry of an empty kernel missing', async (t) => {
  let input: NetworkInput | undefined;
  const app = Fastify();
  registerPeerRoutes(app, { nodeName: 'node1', agent: { networkInput: () => input }, handle: emptyKernel });
  t.teardown(() => app.close());
  const before = await app.inject({ method: 'GET', url: '/v1/debug/peers' });
  t.equal(before.statusCode, 503);
  t.match(before.json(), { code: 503, message: /node1 has not registered/ });
  input = INPUT;
  const after = await app.inject({ method: 'GET', url: '/v1/debug/peers' });
  t.equal(after.statusCode, 200);
  const body = after.json();
  t.equal(body.node, 'node1');
  t.equal(body.backend, 'vxlan');
  t.same(body.peers.map((p: { name: string; route: { status: string }; neighbour: { status: string }; fdb: { status: string } }) => [p.name, p.route.status, p.neighbour.status, p.fdb.status]), [['node2', 'missing', 'missing', 'missing']]);
  t.same(body.unreachable, []);
});
