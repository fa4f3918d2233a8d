// Which netns is this node's pod (src/agent/debug/pod-netns.ts): eth0's veth peer must be a veth
// of the node's netns pointing back at it, with the netns id the node gives the pod's netns. On a
// machine running several labs the same ifindexes (and pod IPs) repeat from netns to netns.
import t from 'tap';
import { isNodesPod } from '../../src/agent/debug/pod-netns.js';

const nodeLinks = [
  { index: 1, kind: undefined, linkIndex: undefined, linkNetnsId: undefined },
  { index: 7, kind: 'veth', linkIndex: 2, linkNetnsId: 3 },
  { index: 8, kind: 'veth', linkIndex: 2, linkNetnsId: 4 },
];

t.test('isNodesPod', async (t) => {
  t.ok(isNodesPod({ index: 2, peerIndex: 7, holdsIp: true }, nodeLinks, 3), 'peer 7 is a veth here, back to eth0 #2, in the netns with id 3');
  t.notOk(isNodesPod({ index: 2, peerIndex: 7, holdsIp: true }, nodeLinks, 4), 'same ifindexes, but the peer of #7 lives in another netns (another lab\'s pod)');
  t.notOk(isNodesPod({ index: 2, peerIndex: 7, holdsIp: true }, nodeLinks, undefined), 'the node gives that netns no id: no link here has its peer there');
  t.notOk(isNodesPod({ index: 2, peerIndex: 7, holdsIp: false }, nodeLinks, 3), 'eth0 must hold the IP');
  t.notOk(isNodesPod({ index: 3, peerIndex: 7, holdsIp: true }, nodeLinks, 3), 'the peer must point back at this eth0');
  t.notOk(isNodesPod({ index: 2, holdsIp: true }, nodeLinks, 3), 'eth0 without a peer (not a veth)');
  t.notOk(isNodesPod({ index: 2, peerIndex: 1, holdsIp: true }, nodeLinks, 3), 'the peer index is no veth here');
});
