// The agent resyncs on a Node update only when something its network plan reads changed
// (src/agent/agent.ts networkView): not for the annotations agents publish about themselves (DNS
// and debug endpoints) or the NetworkUnavailable condition, which would make every agent resync.
import t from 'tap';
import { NODE_ANNOTATIONS, type Node } from '../../src/api/objects.js';
import { networkView } from '../../src/agent/agent.js';

const base = (): Node => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: 'n2', resourceVersion: '7', annotations: { [NODE_ANNOTATIONS.publicIp]: '192.0.2.12', [NODE_ANNOTATIONS.vtepMac]: '02:00:00:00:00:02', [NODE_ANNOTATIONS.backend]: 'vxlan' } },
  spec: { podCIDR: '10.244.2.0/24' },
  status: { addresses: [{ type: 'InternalIP', address: '192.0.2.12' }] },
}) as Node;

t.test('what does not change the plan gives the same view', async (t) => {
  const v = networkView(base());
  const same: Array<[string, (n: Node) => void]> = [
    ['DNS endpoint published', (n) => void (n.metadata.annotations![NODE_ANNOTATIONS.dnsEndpoint] = '10.244.2.1')],
    ['debug endpoint published', (n) => void (n.metadata.annotations![NODE_ANNOTATIONS.agentEndpoint] = 'https://192.0.2.12:10262')],
    ['a new resourceVersion', (n) => void (n.metadata.resourceVersion = '8')],
    ['the NetworkUnavailable condition', (n) => void (n.status!.conditions = [{ type: 'NetworkUnavailable', status: 'False' }] as never)],
    ['a label', (n) => void (n.metadata.labels = { zone: 'a' })],
  ];
  for (const [what, change] of same) {
    const n = base();
    change(n);
    t.equal(networkView(n), v, what);
  }
});

t.test('what the plan reads gives another view', async (t) => {
  const v = networkView(base());
  const differs: Array<[string, (n: Node) => void]> = [
    ['the public IP', (n) => void (n.metadata.annotations![NODE_ANNOTATIONS.publicIp] = '192.0.2.99')],
    ['the VTEP MAC', (n) => void (n.metadata.annotations![NODE_ANNOTATIONS.vtepMac] = '02:00:00:00:00:09')],
    ['the backend', (n) => void (n.metadata.annotations![NODE_ANNOTATIONS.backend] = 'host-gw')],
    ['the podCIDR', (n) => void (n.spec.podCIDR = '10.244.3.0/24')],
    ['the addresses', (n) => void (n.status!.addresses = [{ type: 'InternalIP', address: '192.0.2.13' }])],
    ['the public IP gone (falls back to InternalIP: same peer, but no annotation)', (n) => void (n.status!.addresses = [{ type: 'InternalIP', address: '192.0.2.50' }], delete n.metadata.annotations![NODE_ANNOTATIONS.publicIp])],
  ];
  for (const [what, change] of differs) {
    const n = base();
    change(n);
    t.not(networkView(n), v, what);
  }
});
