// desiredNetwork(): what this node's kernel should hold, computed from the node, its peers and the
// cluster backend. Pure, deterministic (peers sorted by name), and total: a peer that cannot be
// reached is listed in `unreachable` with the reason instead of throwing, so one bad Node object
// never stops the agent from wiring every other peer.
import { createHash } from 'node:crypto';
import { cidrContains, cidrOverlaps, networkOf, nthAddress, parseCidr, type Cidr } from '../../net/cidr.js';
import { bitsOf, formatIp, parseIp } from '../../net/ip.js';
import { parseMac } from '../../net/mac.js';
import {
  BRIDGE_NAME, VXLAN_NAME, VXLAN_OVERHEAD,
  type DesiredNetwork, type DesiredRoute, type NetworkInput, type PeerMode, type PeerNode,
} from './types.js';

/**
 * A stable VTEP MAC for a node: peers pin it in their neighbour and FDB tables, so it must survive
 * agent restarts and device recreation. Locally administered (bit 1) and unicast (bit 0 clear).
 */
export function vtepMacFor(nodeName: string): string {
  const digest = createHash('sha256').update(`podwire-vtep:${nodeName}`).digest();
  const bytes = digest.subarray(0, 6);
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The network of a CIDR text (host bits cleared): what peers and this node are compared by. */
const parseNet = (cidr: string): Cidr => networkOf(parseCidr(cidr));

const netContains = (net: Cidr, ip: string): boolean => cidrContains(net, parseIp(ip));

/** The network address of a CIDR: 10.244.2.0/24 → 10.244.2.0 (the peer's VTEP address, as flannel). */
function networkAddress(cidr: string): string {
  return formatIp(parseNet(cidr).addr.bytes);
}

/** First host of a podCIDR, the pods' gateway on cni0: 10.244.1.0/24 → 10.244.1.1. */
export function gatewayOf(podCidr: string): string {
  const n = parseNet(podCidr);
  if (n.prefixLen >= bitsOf(n.addr.family) - 1) throw new Error(`podCIDR ${podCidr} has no room for a gateway and pods`);
  return formatIp(nthAddress(n, 1).bytes);
}

type PeerVerdict = { mode: PeerMode } | { why: string };

interface Context {
  input: NetworkInput;
  ownPod: Cidr;
  underlayNet: Cidr;
  claimedCidrs: { name: string; net: Cidr }[];
  claimedMacs: Map<string, string>;
}

function checkPeer(ctx: Context, peer: PeerNode): PeerVerdict {
  const { input } = ctx;
  if (peer.name === input.nodeName) return { why: 'this node' };
  if (!peer.podCidr) return { why: 'no podCIDR yet' };
  if (!peer.publicIp) return { why: 'no public IP (annotation podwire.io/public-ip)' };
  let pod: Cidr;
  try {
    pod = parseNet(peer.podCidr);
    parseIp(peer.publicIp);
  } catch (err) {
    return { why: (err as Error).message };
  }
  if (pod.addr.family !== 4) return { why: `podCIDR ${peer.podCidr}: only IPv4 is supported` };
  if (cidrOverlaps(pod, ctx.ownPod)) return { why: `podCIDR ${peer.podCidr} overlaps this node's ${input.podCidr}` };
  const clash = ctx.claimedCidrs.find((c) => cidrOverlaps(c.net, pod));
  if (clash) return { why: `podCIDR ${peer.podCidr} overlaps ${clash.name}'s` };
  if (peer.publicIp === input.underlay.ip) return { why: `public IP ${peer.publicIp} is this node's` };
  const onLink = netContains(ctx.underlayNet, peer.publicIp);
  if (input.backend === 'host-gw') {
    return onLink ? { mode: 'host-gw' } : { why: `host-gw: ${peer.publicIp} is outside the underlay subnet ${input.underlay.cidr}` };
  }
  if (input.backend === 'auto' && onLink) return { mode: 'host-gw' };
  return checkVtepMac(ctx, peer);
}

function checkVtepMac(ctx: Context, peer: PeerNode): PeerVerdict {
  if (!peer.vtepMac) return { why: 'vxlan: no VTEP MAC (annotation podwire.io/vtep-mac)' };
  try {
    parseMac(peer.vtepMac);
  } catch (err) {
    return { why: (err as Error).message };
  }
  const mac = peer.vtepMac.toLowerCase();
  const owner = mac === ctx.input.vtepMac.toLowerCase() ? 'this node' : ctx.claimedMacs.get(mac);
  if (owner) return { why: `vxlan: VTEP MAC ${mac} is already ${owner}'s` };
  return { mode: 'vxlan' };
}

function emptyDesired(input: NetworkInput, withVxlan: boolean): DesiredNetwork {
  const pod = parseCidr(input.podCidr);
  const podMtu = withVxlan ? input.underlay.mtu - VXLAN_OVERHEAD : input.underlay.mtu;
  const desired: DesiredNetwork = {
    bridge: { name: BRIDGE_NAME, gatewayCidr: `${gatewayOf(input.podCidr)}/${pod.prefixLen}`, mtu: podMtu },
    routes: [], neighs: [], fdb: [], peerModes: {}, podMtu, clusterCidr: input.clusterCidr, unreachable: [],
  };
  if (withVxlan) {
    desired.vxlan = {
      name: VXLAN_NAME, vni: input.vni, port: input.vxlanPort, local: input.underlay.ip, devIfname: input.underlay.ifname,
      mtu: input.underlay.mtu - VXLAN_OVERHEAD, mac: input.vtepMac.toLowerCase(), addressCidr: `${networkAddress(input.podCidr)}/32`,
    };
  }
  return desired;
}

function addPeer(desired: DesiredNetwork, input: NetworkInput, peer: PeerNode, mode: PeerMode): void {
  desired.peerModes[peer.name] = mode;
  const dst = `${networkAddress(peer.podCidr)}/${parseCidr(peer.podCidr).prefixLen}`;
  if (mode === 'host-gw') {
    desired.routes.push({ dst, gateway: peer.publicIp, ifname: input.underlay.ifname, onlink: false });
    return;
  }
  const vtepIp = networkAddress(peer.podCidr);
  const mac = peer.vtepMac!.toLowerCase();
  const route: DesiredRoute = { dst, gateway: vtepIp, ifname: VXLAN_NAME, onlink: true };
  desired.routes.push(route);
  desired.neighs.push({ ifname: VXLAN_NAME, ip: vtepIp, mac });
  desired.fdb.push({ ifname: VXLAN_NAME, mac, dst: peer.publicIp });
}

export function desiredNetwork(input: NetworkInput): DesiredNetwork {
  // 'auto' keeps the device even when every peer is direct: a peer joining from another subnet
  // must not force an MTU change on cni0 and on every running pod.
  const desired = emptyDesired(input, input.backend !== 'host-gw');
  const ctx: Context = {
    input, ownPod: parseNet(input.podCidr), underlayNet: parseNet(input.underlay.cidr), claimedCidrs: [], claimedMacs: new Map(),
  };
  const peers = [...input.peers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const peer of peers) {
    const verdict = checkPeer(ctx, peer);
    if ('why' in verdict) {
      desired.unreachable.push({ name: peer.name, why: verdict.why });
      continue;
    }
    ctx.claimedCidrs.push({ name: peer.name, net: parseNet(peer.podCidr) });
    if (verdict.mode === 'vxlan') ctx.claimedMacs.set(peer.vtepMac!.toLowerCase(), peer.name);
    addPeer(desired, input, peer, verdict.mode);
  }
  return desired;
}
