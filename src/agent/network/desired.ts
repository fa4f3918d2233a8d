// desiredNetwork(): what this node's kernel should hold, computed from the node, its peers and the
// cluster backend. Pure, deterministic (peers sorted by name), and total: a peer that cannot be
// reached is listed in `unreachable` with the reason instead of throwing, so one bad Node object
// never stops the agent from wiring every other peer.
import { createHash } from 'node:crypto';
import { formatIp, parseCidr, parseIp, parseMac } from '../../netlink/ip.js';
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

interface Net {
  family: 4 | 6;
  bits: number;
  network: bigint;
  prefixLen: number;
}

function toBig(bytes: Buffer): bigint {
  return BigInt('0x' + (bytes.toString('hex') || '0'));
}

function fromBig(value: bigint, family: 4 | 6): string {
  const hex = value.toString(16).padStart(family === 4 ? 8 : 32, '0');
  return formatIp(Buffer.from(hex, 'hex'));
}

function parseNet(cidr: string): Net {
  const c = parseCidr(cidr);
  const bits = c.addr.family === 4 ? 32 : 128;
  const hostMask = (1n << BigInt(bits - c.prefixLen)) - 1n;
  return { family: c.addr.family, bits, network: toBig(c.addr.bytes) & ~hostMask, prefixLen: c.prefixLen };
}

function netContains(net: Net, ip: string): boolean {
  const a = parseIp(ip);
  if (a.family !== net.family) return false;
  const shift = BigInt(net.bits - net.prefixLen);
  return toBig(a.bytes) >> shift === net.network >> shift;
}

function netsOverlap(a: Net, b: Net): boolean {
  if (a.family !== b.family) return false;
  const shift = BigInt(a.bits - Math.min(a.prefixLen, b.prefixLen));
  return a.network >> shift === b.network >> shift;
}

/** The network address of a CIDR: 10.244.2.0/24 → 10.244.2.0 (the peer's VTEP address, as flannel). */
export function networkOf(cidr: string): string {
  const n = parseNet(cidr);
  return fromBig(n.network, n.family);
}

/** First host of a podCIDR, the pods' gateway on cni0: 10.244.1.0/24 → 10.244.1.1. */
export function gatewayOf(podCidr: string): string {
  const n = parseNet(podCidr);
  if (n.prefixLen >= n.bits - 1) throw new Error(`podCIDR ${podCidr} has no room for a gateway and pods`);
  return fromBig(n.network + 1n, n.family);
}

/** Whether an address lies inside a CIDR (same family and prefix). */
export function cidrContains(cidr: string, ip: string): boolean {
  return netContains(parseNet(cidr), ip);
}

type PeerVerdict = { mode: PeerMode } | { why: string };

interface Context {
  input: NetworkInput;
  ownPod: Net;
  underlayNet: Net;
  claimedCidrs: { name: string; net: Net }[];
  claimedMacs: Map<string, string>;
}

function checkPeer(ctx: Context, peer: PeerNode): PeerVerdict {
  const { input } = ctx;
  if (peer.name === input.nodeName) return { why: 'this node' };
  if (!peer.podCidr) return { why: 'no podCIDR yet' };
  if (!peer.publicIp) return { why: 'no public IP (annotation podwire.io/public-ip)' };
  let pod: Net;
  try {
    pod = parseNet(peer.podCidr);
    parseIp(peer.publicIp);
  } catch (err) {
    return { why: (err as Error).message };
  }
  if (pod.family !== 4) return { why: `podCIDR ${peer.podCidr}: only IPv4 is supported` };
  if (netsOverlap(pod, ctx.ownPod)) return { why: `podCIDR ${peer.podCidr} overlaps this node's ${input.podCidr}` };
  const clash = ctx.claimedCidrs.find((c) => netsOverlap(c.net, pod));
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
      mtu: input.underlay.mtu - VXLAN_OVERHEAD, mac: input.vtepMac.toLowerCase(), addressCidr: `${networkOf(input.podCidr)}/32`,
    };
  }
  return desired;
}

function addPeer(desired: DesiredNetwork, input: NetworkInput, peer: PeerNode, mode: PeerMode): void {
  desired.peerModes[peer.name] = mode;
  const dst = `${networkOf(peer.podCidr)}/${parseCidr(peer.podCidr).prefixLen}`;
  if (mode === 'host-gw') {
    desired.routes.push({ dst, gateway: peer.publicIp, ifname: input.underlay.ifname, onlink: false });
    return;
  }
  const vtepIp = networkOf(peer.podCidr);
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
