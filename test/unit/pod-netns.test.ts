// Which netns is this node's pod (src/agent/debug/pod-netns.ts): eth0's veth peer must be a veth
// of the node's netns pointing back at it, with the netns id the node gives the pod's netns. On a
// machine running several labs the same ifindexes (and pod IPs) repeat from netns to netns. And
// an IP outside this node's podCIDR is never taken, whatever netns holds it (findPodNetns, with
// the netns check faked and a temporary directory for /run/netns).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bridgePodCidr, findPodNetns, inPodCidr, isNodesPod, noPodMessage } from '../../src/agent/debug/pod-netns.js';
import type { Handle } from '../../src/netlink/handle.js';

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

t.test('findPodNetns: only IPs in this node\'s podCIDR, hint first, then the netns in name order', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-netns-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  for (const n of ['pw-b-node2-p0', 'pw-a-node1-p0', 'pw-c-node2-p1']) fs.writeFileSync(path.join(runDir, n), '');
  const asked: string[] = [];
  const holders = new Set([path.join(runDir, 'pw-a-node1-p0'), path.join(runDir, 'pw-c-node2-p1')]);
  const holds = (p: string) => (asked.push(path.basename(p)), holders.has(p));
  const node = {} as Handle;
  const find = (ip: string, podCidr: string, hint?: string) => (asked.length = 0, findPodNetns({ ip, podCidr, node, runDir, holds, ...(hint ? { hint } : {}) }));

  t.equal(find('10.244.0.5', '10.244.1.0/24'), undefined, 'another node\'s pod IP: not found');
  t.same(asked, [], 'and no netns is even looked at');
  t.equal(find('10.244.1.5', '10.244.1.0/24'), path.join(runDir, 'pw-a-node1-p0'), 'the first holder in name order');
  t.same(asked, ['pw-a-node1-p0']);
  t.equal(find('10.244.1.5', '10.244.1.0/24', path.join(runDir, 'pw-c-node2-p1')), path.join(runDir, 'pw-c-node2-p1'), 'a hint that checks out wins');
  t.equal(find('10.244.1.5', '10.244.1.0/24', path.join(runDir, 'pw-b-node2-p0')), path.join(runDir, 'pw-a-node1-p0'), 'a stale hint: the scan');
  t.same(asked, ['pw-b-node2-p0', 'pw-a-node1-p0'], 'the stale hint is not asked twice');
  t.equal(find('10.244.1.5', 'not a cidr'), undefined, 'a podCIDR that does not parse takes nothing');
});

t.test('inPodCidr, bridgePodCidr, noPodMessage', async (t) => {
  t.ok(inPodCidr('10.244.1.200', '10.244.1.0/24'));
  t.notOk(inPodCidr('10.244.2.1', '10.244.1.0/24'));
  const handle = (addrs: string[], bridge = true) => ({
    linkFind: (name: string) => (bridge && name === 'cni0' ? { index: 4 } : undefined),
    addrList: () => addrs.map((cidr) => ({ cidr })),
  }) as unknown as Handle;
  t.equal(bridgePodCidr(handle(['10.244.1.1/24'])), '10.244.1.0/24', 'the subnet on cni0');
  t.equal(bridgePodCidr(handle([])), undefined, 'cni0 without an address');
  t.equal(bridgePodCidr(handle(['10.244.1.1/24'], false)), undefined, 'no cni0: no pods here');
  t.equal(findPodNetns({ ip: '10.244.1.5', node: handle([], false), runDir: '/nonexistent', holds: () => true }), undefined, 'no podCIDR known and no bridge: nothing');
  t.match(noPodMessage('node2', '10.244.0.5', '10.244.1.0/24'), /^no pod with IP 10\.244\.0\.5 on node node2: 10\.244\.0\.5 is not in its podCIDR 10\.244\.1\.0\/24; is the pod on another node\?$/);
  t.match(noPodMessage('node2', '10.244.1.9', '10.244.1.0/24', '/run/netns/x'), /no netns here has it on eth0, not even \/run\/netns\/x/);
});
